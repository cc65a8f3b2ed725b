// The studio page's entry: problems shown (and kept in `window.stippleErrors`), the API key
// field, the tabs, keyboard shortcuts, and the catalogue (models, samplers) the views share.

import { apiKey, get, setApiKey } from "./api.js";
import { cancel, generate, initCreate, isRunning, setCatalog, setModels } from "./create.js";
import { initGallery, openPicture, reset as resetGallery, setGalleryCatalog, setGalleryModels } from "./gallery.js";
import { initTrain } from "./train.js";

const $ = (id) => document.getElementById(id);

// Uncaught errors and console errors are bugs of this page: show them, and keep them where
// the browser tests read them.
window.stippleErrors = [];
function problem(text) {
  window.stippleErrors.push(text);
  const box = $("problems");
  box.textContent = `Something went wrong: ${text}`;
  box.hidden = false;
}
window.addEventListener("error", (e) => problem(e.message || String(e.error)));
window.addEventListener("unhandledrejection", (e) => problem(String(e.reason && e.reason.message ? e.reason.message : e.reason)));
const consoleError = console.error.bind(console);
console.error = (...args) => {
  problem(args.map(String).join(" "));
  consoleError(...args);
};

const TABS = ["create", "gallery", "train"];

function show(name) {
  for (const t of TABS) {
    const selected = t === name;
    $(`tab-${t}`).setAttribute("aria-selected", String(selected));
    $(`tab-${t}`).tabIndex = selected ? 0 : -1;
    $(`view-${t}`).hidden = !selected;
  }
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  if (name === "gallery") resetGallery();
}

function initTabs() {
  TABS.forEach((t, i) => {
    const tab = $(`tab-${t}`);
    tab.addEventListener("click", () => show(t));
    // Arrow keys move between tabs, as in the WAI-ARIA tabs pattern.
    tab.addEventListener("keydown", (e) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
      if (!step) return;
      const next = $(`tab-${TABS[(i + step + TABS.length) % TABS.length]}`);
      next.focus();
      next.click();
    });
  });
  const wanted = location.hash.slice(1);
  show(TABS.includes(wanted) ? wanted : "create");
}

function initKeys() {
  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && !$("view-create").hidden) {
      e.preventDefault();
      if (!isRunning()) generate();
    } else if (e.key === "Escape" && isRunning() && !$("picture").open) {
      e.preventDefault();
      cancel();
    }
  });
}

function initKey() {
  const input = $("api-key");
  input.value = apiKey();
  input.addEventListener("change", () => {
    setApiKey(input.value.trim());
    loadCatalog();
  });
}

async function loadModels() {
  const models = await get("/api/models");
  setModels(models);
  setGalleryModels(models);
}

/** Models, samplers and schedules; a refusal (no key yet) is shown in the status line. */
async function loadCatalog() {
  try {
    const samplers = await get("/api/samplers");
    setCatalog(samplers);
    setGalleryCatalog(samplers);
    await loadModels();
    $("job-status").textContent = "Ready.";
  } catch (e) {
    $("job-status").textContent = e.status === 401 ? "This server needs its API key: enter it under “API key” above." : `Could not reach the server: ${e.message}`;
    if (e.status === 401) $("api-key").closest("details").open = true;
  }
}

initCreate({ openPicture });
initGallery();
initTrain();
initKey();
initKeys();
document.addEventListener("models-changed", async (e) => {
  try {
    await loadModels();
    $("job-status").textContent = `Model ${e.detail.model} is ready in the model picker.`;
  } catch (err) {
    $("job-status").textContent = `Could not refresh the models: ${err.message}`;
  }
});
loadCatalog();
initTabs();
