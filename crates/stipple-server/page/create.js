// The Create view: the form, one generation job at a time (Generate becomes Cancel while it
// runs), its live preview (x̂₀, or x_t on a toggle) and progress from the job's events, a
// scrubber over the previews received and then over the trajectory the server recorded
// (downloadable as GIF or APNG), the finished pictures, and for a prompt what each of its
// words painted.

import { downloadLink, followJob, get, imageBlob, request, showImage } from "./api.js";
import { initAttention, showAttention } from "./attention.js";
import { clearErrors, numberOf, showError, textOf } from "./form.js";
import { Mask } from "./mask.js";
import { SAMPLER_HELP, SCHEDULE_HELP } from "./names.js";

const $ = (id) => document.getElementById(id);

const state = {
  job: null, // the running job's id
  lastSeed: null,
  frames: [], // previews received, then the server's trajectory: { step, steps, sigma, src (x̂₀), srcX (x_t) }
  trajectory: false, // whether `frames` is the server's trajectory (x_t entering each step, 0-based)
  init: null, // the init image as a data URL
  mask: null,
  openPicture: null,
};

export function initCreate({ openPicture }) {
  state.openPicture = openPicture;
  state.mask = new Mask($("mask-canvas"));
  $("create-form").addEventListener("submit", (e) => {
    e.preventDefault();
    if (state.job) cancel();
    else generate();
  });
  $("sampler").addEventListener("change", showHelp);
  $("schedule").addEventListener("change", showHelp);
  $("seed-dice").addEventListener("click", () => ($("seed").value = randomSeed()));
  $("seed-last").addEventListener("click", () => {
    if (state.lastSeed !== null) $("seed").value = state.lastSeed;
  });
  $("strength").addEventListener("input", () => ($("strength-value").value = $("strength").value));
  $("init-file").addEventListener("change", () => {
    const file = $("init-file").files[0];
    if (file) readFile(file).then(setInit);
  });
  const drop = $("init-drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const file = [...e.dataTransfer.files].find((f) => f.type.startsWith("image/"));
    if (file) readFile(file).then(setInit);
  });
  $("init-preview").addEventListener("load", () => {
    const img = $("init-preview");
    state.mask.reset(img.naturalWidth, img.naturalHeight);
    state.mask.setBrush(Number($("brush").value));
  });
  $("init-remove").addEventListener("click", () => setInit(null));
  $("inpaint").addEventListener("change", () => {
    const on = $("inpaint").checked;
    state.mask.setEnabled(on);
    // Inpainting repaints the masked pixels from pure noise by default.
    $("strength").value = on ? 1 : 0.8;
    $("strength-value").value = $("strength").value;
  });
  $("brush").addEventListener("input", () => state.mask.setBrush(Number($("brush").value)));
  $("mask-invert").addEventListener("click", () => state.mask.invert());
  $("mask-clear").addEventListener("click", () => state.mask.clear());
  $("scrubber").addEventListener("input", () => showFrame(Number($("scrubber").value)));
  $("show-xt").addEventListener("change", () => showFrame(Number($("scrubber").value)));
  initAttention();
}

/** Fills the model picker, keeping the chosen model when it is still there. */
export function setModels({ current, models }) {
  const select = $("model");
  const chosen = select.value || current;
  select.replaceChildren(...models.map((m) => new Option(`${m.name} (${m.source.replaceAll("_", " ")})`, m.name)));
  select.value = models.some((m) => m.name === chosen) ? chosen : current;
}

/** Fills the sampler and schedule menus from `/api/samplers`. */
export function setCatalog({ samplers, schedules }) {
  const [sampler, schedule] = [$("sampler").value || "dpmpp_2m", $("schedule").value];
  $("sampler").replaceChildren(...samplers.map((s) => new Option(s.display_name, s.name)));
  $("sampler").value = sampler;
  $("schedule").replaceChildren(new Option("Sampler's default", ""), ...schedules.map((s) => new Option(s.display_name, s.name)));
  $("schedule").value = schedule;
  showHelp();
}

function showHelp() {
  $("sampler-help").textContent = SAMPLER_HELP[$("sampler").value] || "";
  $("schedule-help").textContent = $("schedule").value ? SCHEDULE_HELP[$("schedule").value] || "" : "The schedule this sampler is usually run with.";
}

function randomSeed() {
  return Math.floor(Math.random() * 2 ** 32);
}

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

/** Sets (a data URL) or removes (null) the init image; a new picture gets an empty mask. */
export function setInit(dataUrl) {
  state.init = dataUrl;
  $("init-panel").hidden = !dataUrl;
  if (dataUrl) $("init-preview").src = dataUrl;
  else {
    $("init-file").value = "";
    $("inpaint").checked = false;
    state.mask.setEnabled(false);
  }
}

/** Uses stored picture `id` as the init image. */
export async function useAsInit(id) {
  setInit(await readFile(await imageBlob(id)));
  $("tab-create").click();
}

/** The request body from the form (empty fields: the server's defaults). */
function body() {
  const seed = numberOf($("seed")) ?? randomSeed();
  const b = {
    kind: "generate",
    prompt: textOf($("prompt")),
    negative_prompt: textOf($("negative-prompt")),
    class: textOf($("class")),
    model: $("model").value || undefined,
    sampler: $("sampler").value || undefined,
    schedule: $("schedule").value || undefined,
    steps: numberOf($("steps")),
    guidance_scale: numberOf($("guidance-scale")),
    seed,
    count: numberOf($("count")),
    batch_size: numberOf($("batch-size")),
    preview_every: 1,
    trajectory: true,
  };
  // A prompt's words get their attention maps (models without prompts refuse a prompt).
  b.attention = b.prompt !== undefined;
  if (state.init) {
    b.init_image = state.init;
    b.strength = Number($("strength").value);
    if ($("inpaint").checked) {
      b.mask = state.mask.toDataUrl();
      b.mask_blur = numberOf($("mask-blur"));
    }
  }
  return b;
}

function setRunning(running) {
  const button = $("generate");
  button.textContent = running ? "Cancel" : "Generate";
  button.classList.toggle("danger", running);
  button.classList.toggle("primary", !running);
  document.body.classList.toggle("generating", running);
}

function status(text) {
  $("job-status").textContent = text;
}

/** Submits the form as a generation job and follows it to its end. */
export async function generate() {
  if (state.job) return;
  const form = $("create-form");
  clearErrors(form);
  if ($("inpaint").checked && state.mask.painted() === 0) {
    showError(form, "mask", "paint the part of the picture to repaint first");
    return;
  }
  const b = body();
  setRunning(true);
  status("Submitting…");
  let job;
  try {
    job = await request("POST", "/api/jobs", b);
  } catch (e) {
    setRunning(false);
    status("Not started.");
    showError(form, e.field, e.message);
    return;
  }
  state.job = job.id;
  state.frames = [];
  state.trajectory = false;
  $("scrubber-panel").hidden = true;
  $("trajectory-downloads").hidden = true;
  showAttention(null);
  $("progress").value = 0;
  $("progress-text").textContent = "";
  status(queued(job.position));
  try {
    await followJob(job.events, (name, data) => onEvent(form, b, name, data), status, "job");
  } finally {
    state.job = null;
    setRunning(false);
  }
}

function queued(position) {
  if (position === null || position === undefined) return "Starting…";
  return position === 0 ? "Queued: next to run." : `Queued: ${position} job${position === 1 ? "" : "s"} ahead.`;
}

function onEvent(form, b, name, data) {
  switch (name) {
    case "queued":
      status(queued(data.position));
      break;
    case "started":
      status(`Sampling with seed ${b.seed}…`);
      break;
    case "progress":
      if (data.kind === "sampling") progress(data);
      break;
    case "done":
      finished(data, b);
      break;
    case "failed":
      status("Failed.");
      showError(form, data.field, data.detail);
      break;
    case "cancelled":
      status("Cancelled.");
      break;
    case "timed_out":
      status("Stopped: the job ran past the server's time limit.");
      break;
  }
}

function progress({ step, steps, sigma, eta_seconds, preview, preview_x }) {
  $("progress").value = step / steps;
  $("progress-text").textContent = `step ${step}/${steps} · σ ${sigma.toPrecision(3)} · ${formatEta(eta_seconds)}`;
  if (preview) {
    const srcX = preview_x ? `data:image/png;base64,${preview_x}` : null;
    state.frames.push({ step, steps, sigma, src: `data:image/png;base64,${preview}`, srcX });
    showFrame(state.frames.length - 1);
  }
}

function formatEta(seconds) {
  if (!Number.isFinite(seconds)) return "";
  return seconds < 60 ? `${seconds.toFixed(1)} s left` : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s left`;
}

function showFrame(i) {
  const f = state.frames[i];
  if (!f) return;
  const img = $("preview");
  const noisy = $("show-xt").checked && Boolean(f.srcX);
  img.dataset.shows = noisy ? "x_t" : "x0";
  img.src = noisy ? f.srcX : f.src;
  img.hidden = false;
  const sigma = f.sigma.toPrecision(3);
  $("preview-caption").textContent = state.trajectory
    ? noisy
      ? `Noisy picture x_t entering step ${f.step + 1} of ${f.steps} (σ ${sigma})`
      : `Predicted picture x̂₀ at step ${f.step + 1} of ${f.steps} (σ ${sigma})`
    : noisy
      ? `Noisy picture x_t after step ${f.step} of ${f.steps}`
      : `Predicted picture x̂₀ after step ${f.step} of ${f.steps} (σ ${sigma})`;
  $("scrubber").value = i;
  $("scrubber-value").value = `${state.trajectory ? f.step + 1 : f.step}/${f.steps}`;
}

/** Replaces the live previews by the trajectory the server recorded for job `id`. */
async function loadTrajectory(id) {
  let frames;
  try {
    frames = (await get(`/api/jobs/${id}/trajectory`)).frames;
  } catch {
    return; // forgotten or not kept: the live previews stay
  }
  if (!frames.length) return;
  const png = (b64) => `data:image/png;base64,${b64}`;
  state.frames = frames.map((f) => ({ step: f.step, steps: f.steps, sigma: f.sigma, src: png(f.x0), srcX: png(f.x) }));
  state.trajectory = true;
  $("scrubber").max = frames.length - 1;
  $("scrubber-panel").hidden = false;
  downloadLink($("trajectory-gif"), `/api/jobs/${id}/trajectory.gif`, `stipple-job-${id}.gif`);
  downloadLink($("trajectory-apng"), `/api/jobs/${id}/trajectory.apng`, `stipple-job-${id}.png`);
  $("trajectory-downloads").hidden = false;
  showFrame(frames.length - 1);
}

function finished({ ids, seeds }, b) {
  const job = state.job;
  state.lastSeed = seeds[0];
  $("seed-last").disabled = false;
  $("progress").value = 1;
  status(`Done: ${ids.length} picture${ids.length === 1 ? "" : "s"}, seed${seeds.length === 1 ? "" : "s"} ${seeds[0]}${seeds.length > 1 ? `–${seeds[seeds.length - 1]}` : ""}.`);
  if (state.frames.length > 1) {
    $("scrubber").max = state.frames.length - 1;
    $("scrubber-panel").hidden = false;
  }
  const results = $("results");
  results.replaceChildren(...ids.map((id, i) => thumb(id, `Picture ${id}, seed ${seeds[i]}`)));
  if (b.trajectory) loadTrajectory(job);
  if (b.attention) showAttention(ids);
}

/** A button showing stored picture `id` that opens it large. */
export function thumb(id, label) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "thumb";
  button.dataset.id = id;
  button.setAttribute("aria-label", label);
  button.title = label;
  const img = document.createElement("img");
  img.className = "pixelated";
  img.alt = "";
  button.append(img);
  showImage(img, id).catch((e) => (button.title = `Could not load: ${e.message}`));
  button.addEventListener("click", async () => state.openPicture(await get(`/api/images/${id}`)));
  return button;
}

/** Cancels the running generation (it stops at its next step). */
export async function cancel() {
  if (!state.job) return;
  status("Cancelling…");
  try {
    await request("POST", `/api/jobs/${state.job}/cancel`);
  } catch (e) {
    status(`Could not cancel: ${e.message}`);
  }
}

export const isRunning = () => state.job !== null;

/** Fills the form with the settings of a stored picture. */
export function applyRecipe(record) {
  const recipe = parseRecipe(record);
  const c = recipe.conditioning || {};
  $("prompt").value = (c.prompts && c.prompts[0]) ?? record.prompt ?? "";
  $("negative-prompt").value = c.negative_prompt ?? record.negative_prompt ?? "";
  $("class").value = c.class ?? "";
  const model = $("model");
  if (![...model.options].some((o) => o.value === record.model_name)) model.append(new Option(record.model_name, record.model_name));
  model.value = record.model_name;
  $("sampler").value = recipe.sampler ?? record.sampler;
  $("schedule").value = recipe.schedule ?? "";
  $("steps").value = recipe.steps ?? record.steps;
  $("guidance-scale").value = c.guidance_scale ?? record.guidance;
  $("seed").value = recipe.seed ?? record.seed;
  showHelp();
}

export function applySeed(seed) {
  $("seed").value = seed;
}

/** The recipe of a gallery record (an empty one if it does not parse). */
export function parseRecipe(record) {
  try {
    return JSON.parse(record.recipe_json) || {};
  } catch {
    return {};
  }
}
