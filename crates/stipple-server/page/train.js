// The Train view: start (or resume) a training run, follow its loss and learning rate on a
// live chart, show its sample grids as they are drawn, stop it (the server writes a
// checkpoint), and announce the finished model to the model pickers. A zip of images is
// first uploaded into a new data folder on the server, which the run then names.

import { followJob, request, upload } from "./api.js";
import { LossChart } from "./chart.js";
import { clearErrors, numberOf, showError, textOf } from "./form.js";

const $ = (id) => document.getElementById(id);

const state = { job: null, chart: null, checkpoint: null };

export function initTrain() {
  state.chart = new LossChart($("loss-chart"));
  state.chart.clear();
  $("train-form").addEventListener("submit", (e) => {
    e.preventDefault();
    start(false);
  });
  $("train-resume").addEventListener("click", () => start(true));
  $("train-stop").addEventListener("click", stop);
}

function status(text) {
  $("train-status").textContent = text;
}

function setRunning(running) {
  $("train-start").disabled = running;
  $("train-resume").disabled = running;
  $("train-stop").disabled = !running;
}

/** "32, 64" → [32, 64]; undefined when empty. */
function listOf(input) {
  const t = textOf(input);
  return t === undefined ? undefined : t.split(/[\s,]+/).filter(Boolean).map(Number);
}

function body(resume) {
  return {
    kind: "train",
    name: $("train-name").value.trim(),
    data: textOf($("train-data")),
    steps: numberOf($("train-steps")),
    resume,
    settings: {
      batch_size: numberOf($("train-batch")),
      lr: numberOf($("train-lr")),
      sample_every: numberOf($("train-sample-every")),
      image_size: numberOf($("train-image-size")),
      channels: listOf($("train-channels")),
      layers_per_block: numberOf($("train-layers")),
    },
  };
}

async function start(resume) {
  if (state.job) return;
  const form = $("train-form");
  clearErrors(form);
  const b = body(resume);
  if (!b.name) {
    showError(form, "name", "name the run: letters, digits, '.', '_' and '-'");
    return;
  }
  setRunning(true);
  let job;
  try {
    const zip = $("train-zip").files[0];
    if (zip) b.data = await uploadZip(zip);
    job = await request("POST", "/api/jobs", b);
  } catch (e) {
    setRunning(false);
    showError(form, e.field, e.message);
    return;
  }
  state.job = job.id;
  state.checkpoint = null;
  if (!resume) {
    state.chart.clear();
    $("train-grids").replaceChildren();
  }
  status(job.position ? `Queued: ${job.position} job${job.position === 1 ? "" : "s"} ahead.` : "Starting…");
  try {
    await followJob(job.events, (name, data) => onEvent(form, b, name, data), status, "run");
  } finally {
    state.job = null;
    setRunning(false);
  }
}

function onEvent(form, b, name, data) {
  switch (name) {
    case "queued":
      status(data.position ? `Queued: ${data.position} job${data.position === 1 ? "" : "s"} ahead.` : "Queued: next to run.");
      break;
    case "started":
      status(`${b.resume ? "Resuming" : "Training"} ${b.name}…`);
      break;
    case "progress":
      progress(data);
      break;
    case "done":
      status(`Trained ${data.model} to step ${data.step}: it is in the model picker.`);
      document.dispatchEvent(new CustomEvent("models-changed", { detail: { model: data.model } }));
      break;
    case "failed":
      status("Failed.");
      showError(form, data.field, data.detail);
      break;
    case "cancelled":
      status(state.checkpoint === null ? `Stopped ${b.name} before its first checkpoint.` : `Stopped ${b.name} at step ${state.checkpoint} (checkpoint written): Resume continues from it.`);
      break;
    case "timed_out":
      status("Stopped: the run went past the server's time limit; Resume continues from its checkpoint.");
      break;
  }
}

function progress(p) {
  switch (p.kind) {
    case "training":
      state.chart.add(p.step, p.loss, p.loss_smoothed, p.lr);
      $("train-progress").value = p.step / p.total;
      $("train-progress-text").textContent = `step ${p.step}/${p.total} · loss ${p.loss_smoothed.toPrecision(3)} · lr ${p.lr.toExponential(2)} · ${p.steps_per_second.toFixed(1)} steps/s`;
      break;
    case "checkpoint":
      state.checkpoint = p.step;
      $("train-status").textContent = `Checkpoint written at step ${p.step}.`;
      break;
    case "sample_grid": {
      const figure = document.createElement("figure");
      const img = document.createElement("img");
      img.className = "pixelated";
      img.src = `data:image/png;base64,${p.image}`;
      img.alt = `Samples at step ${p.step}`;
      const caption = document.createElement("figcaption");
      caption.textContent = `step ${p.step}`;
      figure.append(img, caption);
      $("train-grids").prepend(figure);
      break;
    }
  }
}

/**
 * Uploads a zip into a new data folder named after it (made a folder name) and returns
 * that name; the data field then names it and the file is cleared, so a restart reuses it.
 */
async function uploadZip(file) {
  const name = file.name.replace(/\.zip$/i, "").replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[.-]+/, "") || "upload";
  status(`Uploading ${file.name}…`);
  let done;
  try {
    done = await upload(`/api/data?name=${encodeURIComponent(name)}`, file, "application/zip");
  } catch (e) {
    e.field = "zip"; // the folder's name comes from the file: every fault is the zip's
    status("Not started.");
    throw e;
  }
  $("train-data").value = done.data;
  $("train-zip").value = "";
  status(`Unpacked ${done.images} image${done.images === 1 ? "" : "s"} into data folder ${done.data}.`);
  return done.data;
}

async function stop() {
  if (!state.job) return;
  status("Stopping at the next step…");
  try {
    await request("POST", `/api/jobs/${state.job}/cancel`);
  } catch (e) {
    status(`Could not stop: ${e.message}`);
  }
}
