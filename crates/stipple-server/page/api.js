// Talking to Stipple's own API (/api): JSON requests with the key when one is set, errors
// as ApiError (with the request field at fault), a job's server-sent events read from a
// fetch() stream (EventSource cannot send the Authorization header), and images fetched as
// object URLs when a key is needed.

const KEY_STORAGE = "stipple.apiKey";

/** The API key the page sends (empty: none), kept in this browser's localStorage. */
export function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

export function setApiKey(key) {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

function headers(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

/** An error answer of the API: `detail` says what was expected, `field` names the control. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body.detail || body.error || `HTTP ${status}`);
    this.status = status;
    this.field = body.field || null;
  }
}

async function errorOf(response) {
  let body;
  try {
    body = await response.json();
  } catch {
    body = { detail: `${response.status} ${response.statusText}` };
  }
  return new ApiError(response.status, body);
}

/** `method path` with an optional JSON body; the parsed JSON answer (null for 204). */
export async function request(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  if (!response.ok) throw await errorOf(response);
  return response.status === 204 ? null : response.json();
}

export const get = (path) => request("GET", path);

/**
 * Follows a job's events until it ends: `on(name, data)` for each event (`queued`,
 * `started`, `progress`, `done`, `failed`, `cancelled`, `timed_out`). Resolves with the
 * last event's name. The stream is plain text/event-stream: blocks of `event:`/`data:`
 * lines separated by a blank line; lines starting with `:` are keep-alive comments.
 */
export async function followEvents(path, on, signal) {
  const response = await fetch(path, { headers: headers({ Accept: "text/event-stream" }), signal });
  if (!response.ok) throw await errorOf(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let last = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const key = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (key === "event") name = text;
        else if (key === "data") data.push(text);
      }
      if (data.length === 0) continue;
      last = name;
      on(name, JSON.parse(data.join("\n")));
    }
  }
  return last;
}

/**
 * Follows a job's events to its end (see `followEvents`), telling `status` when the stream
 * closed before a final event or broke; `noun` names the job in those messages.
 */
export async function followJob(path, on, status, noun) {
  try {
    const last = await followEvents(path, on);
    if (!["done", "failed", "cancelled", "timed_out"].includes(last)) status(`The server closed the ${noun}'s events before it ended.`);
  } catch (e) {
    status(`Lost the ${noun}'s events: ${e.message}`);
  }
}

/** The URL of a stored image's PNG. */
export const imagePath = (id) => `/api/images/${id}.png`;

/**
 * Shows gallery image `id` in `img`: a plain URL without a key; with one, the PNG is
 * fetched with the key and shown as an object URL (an <img> cannot send headers).
 */
export async function showImage(img, id) {
  if (!apiKey()) {
    img.src = imagePath(id);
    return;
  }
  const response = await fetch(imagePath(id), { headers: headers() });
  if (!response.ok) throw await errorOf(response);
  const url = URL.createObjectURL(await response.blob());
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.src = url;
}

/** `GET path` as a Blob, with the key when one is set. */
export async function blob(path) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) throw await errorOf(response);
  return response.blob();
}

/** The PNG of image `id` as a Blob (for downloads and for reuse as an init image). */
export const imageBlob = (id) => blob(imagePath(id));

/** POSTs a file's bytes as the body (`type` its media type); the parsed JSON answer. */
export async function upload(path, file, type) {
  const response = await fetch(path, { method: "POST", headers: headers({ "Content-Type": type }), body: file });
  if (!response.ok) throw await errorOf(response);
  return response.json();
}

/**
 * Makes link `a` download `path` as `name`: a plain URL without a key; with one, the file is
 * fetched with the key on click and handed over as an object URL.
 */
export function downloadLink(a, path, name) {
  a.href = path;
  a.download = name;
  a.onclick = apiKey()
    ? async (e) => {
        e.preventDefault();
        const url = URL.createObjectURL(await blob(path));
        const temp = Object.assign(document.createElement("a"), { href: url, download: name });
        temp.click();
        setTimeout(() => URL.revokeObjectURL(url), 1000);
      }
    : null;
}
