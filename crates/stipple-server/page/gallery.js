// The Gallery view: pages of `/api/images` (newest first) appended as the end of the list
// scrolls into view, searched by prompt and filtered by model; and the picture dialog, which
// shows a picture large with its recipe and offers reuse, download and delete.

import { get, imageBlob, imagePath, apiKey, request, showImage } from "./api.js";
import { applyRecipe, applySeed, parseRecipe, thumb, useAsInit } from "./create.js";

const $ = (id) => document.getElementById(id);
const PAGE = 40;

const state = {
  nextBefore: null,
  exhausted: false,
  loading: false,
  generation: 0, // bumped on every reset, so a page asked for before it is dropped
  samplers: {}, // name → display name
  schedules: {},
  record: null, // the picture in the dialog
};

export function initGallery() {
  let debounce;
  $("gallery-search").addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(reset, 250);
  });
  $("gallery-model").addEventListener("change", reset);
  new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) loadMore();
  }).observe($("gallery-more"));

  $("picture-reuse").addEventListener("click", () => {
    applyRecipe(state.record);
    $("picture").close();
    $("tab-create").click();
  });
  $("picture-seed").addEventListener("click", () => {
    applySeed(state.record.seed);
    $("picture").close();
    $("tab-create").click();
  });
  $("picture-init").addEventListener("click", async () => {
    const id = state.record.id;
    $("picture").close();
    await useAsInit(id).catch((e) => ($("job-status").textContent = `Could not load picture ${id}: ${e.message}`));
  });
  $("picture-delete").addEventListener("click", deletePicture);
  $("picture").addEventListener("close", () => {
    const a = $("picture-download");
    if (a.href.startsWith("blob:")) URL.revokeObjectURL(a.href);
  });
}

export function setGalleryCatalog({ samplers, schedules }) {
  for (const s of samplers) state.samplers[s.name] = s.display_name;
  for (const s of schedules) state.schedules[s.name] = s.display_name;
}

export function setGalleryModels({ models }) {
  const select = $("gallery-model");
  const chosen = select.value;
  select.replaceChildren(new Option("All models", ""), ...models.map((m) => new Option(m.name, m.name)));
  select.value = models.some((m) => m.name === chosen) ? chosen : "";
}

/** Starts the list again from the newest picture (filters changed, or the view was opened). */
export function reset() {
  state.generation++;
  state.nextBefore = null;
  state.exhausted = false;
  state.loading = false;
  $("gallery-grid").replaceChildren();
  $("gallery-status").textContent = "";
  loadMore();
}

async function loadMore() {
  if (state.loading || state.exhausted || $("view-gallery").hidden) return;
  state.loading = true;
  const generation = state.generation;
  const q = new URLSearchParams({ limit: PAGE });
  const prompt = $("gallery-search").value.trim();
  if (prompt) q.set("prompt", prompt);
  if ($("gallery-model").value) q.set("model", $("gallery-model").value);
  if (state.nextBefore !== null) q.set("before", state.nextBefore);
  let page;
  try {
    page = await get(`/api/images?${q}`);
  } catch (e) {
    if (generation === state.generation) {
      $("gallery-status").textContent = `Could not load the gallery: ${e.message}`;
      state.loading = false;
    }
    return;
  }
  if (generation !== state.generation) return;
  const grid = $("gallery-grid");
  grid.append(...page.records.map((r) => thumb(r.id, r.prompt || `Picture ${r.id}`)));
  state.nextBefore = page.next_before ?? null;
  state.exhausted = state.nextBefore === null;
  state.loading = false;
  const n = grid.children.length;
  $("gallery-status").textContent = n === 0 ? "No pictures yet." : `${n} picture${n === 1 ? "" : "s"}${state.exhausted ? "" : ", more below"}.`;
  // The observer fires on changes only: if the end is still in view, fetch the next page now.
  if (!state.exhausted && $("gallery-more").getBoundingClientRect().top < innerHeight + 200) loadMore();
}

/** Opens a gallery record large with its recipe. */
export async function openPicture(record) {
  state.record = record;
  const recipe = parseRecipe(record);
  const c = recipe.conditioning || {};
  $("picture-title").textContent = record.prompt || `Picture ${record.id}`;
  $("picture-error").textContent = "";
  const del = $("picture-delete");
  del.textContent = "Delete";
  del.dataset.armed = "";
  const rows = [
    ["Prompt", record.prompt],
    ["Negative prompt", record.negative_prompt],
    ["Class", c.class],
    ["Model", record.model_name],
    ["Sampler", state.samplers[recipe.sampler ?? record.sampler] ?? record.sampler],
    ["Schedule", state.schedules[recipe.schedule] ?? recipe.schedule],
    ["Steps", recipe.steps ?? record.steps],
    ["Guidance scale", c.guidance_scale ?? record.guidance],
    ["Seed", record.seed],
    ["Size", `${record.width} × ${record.height}`],
    ["Init image", recipe.init_image ? `yes, strength ${c.strength}` : null],
    ["Mask", recipe.mask ? (c.mask_blur ? `yes (inpainted, blurred by ${c.mask_blur} px)` : "yes (inpainted)") : null],
    ["Made", new Date(record.created_ms).toLocaleString()],
    ["Software", recipe.software],
  ];
  const dl = $("picture-recipe");
  dl.replaceChildren();
  for (const [name, value] of rows) {
    if (value === undefined || value === null || value === "") continue;
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = value;
    dd.dataset.name = name;
    dl.append(dt, dd);
  }
  const a = $("picture-download");
  a.download = `stipple-${record.id}.png`;
  a.href = imagePath(record.id);
  if (!$("picture").open) $("picture").showModal();
  try {
    await showImage($("picture-image"), record.id);
    // With a key the plain URL would be refused: download the fetched file instead.
    if (apiKey()) a.href = URL.createObjectURL(await imageBlob(record.id));
  } catch (e) {
    $("picture-error").textContent = `Could not load the picture: ${e.message}`;
  }
}

/** Deletes the picture in the dialog: the first click asks, the second deletes. */
async function deletePicture() {
  const del = $("picture-delete");
  if (!del.dataset.armed) {
    del.dataset.armed = "yes";
    del.textContent = "Really delete?";
    return;
  }
  const id = state.record.id;
  try {
    await request("DELETE", `/api/images/${id}`);
  } catch (e) {
    $("picture-error").textContent = `Could not delete: ${e.message}`;
    return;
  }
  for (const t of document.querySelectorAll(`.thumb[data-id="${id}"]`)) t.remove();
  $("picture").close();
}
