// What guided a picture: its prompt's tokens as buttons; hovering, focusing or clicking one
// lays that token's cross-attention map (from /api/images/{id}/attention) over the picture.
// The maps are the server's; the page only scales each to its own maximum for display.

import { get, showImage } from "./api.js";

const $ = (id) => document.getElementById(id);

const state = { maps: null, chosen: null };

export function initAttention() {
  $("attention-picture").addEventListener("change", () => show(Number($("attention-picture").value)));
  $("attention-tokens").addEventListener("mouseleave", () => draw(state.chosen));
}

/** Offers the maps of pictures `ids` (the first shown); `null` hides the panel. */
export async function showAttention(ids) {
  const panel = $("attention-panel");
  panel.hidden = !ids;
  if (!ids) return;
  const picker = $("attention-picture");
  picker.replaceChildren(...ids.map((id, i) => new Option(`Picture ${i + 1} (#${id})`, id)));
  picker.parentElement.hidden = ids.length < 2;
  await show(ids[0]);
}

async function show(id) {
  state.maps = null;
  state.chosen = null;
  $("attention-tokens").replaceChildren();
  draw(null);
  try {
    await showImage($("attention-image"), id);
    state.maps = await get(`/api/images/${id}/attention`);
  } catch (e) {
    $("attention-note").textContent = `No attention maps: ${e.message}`;
    return;
  }
  const { tokens } = state.maps;
  $("attention-note").textContent = tokens.length ? "Point at a word to see where it steered the picture." : "The prompt was empty: no word to show.";
  $("attention-tokens").replaceChildren(...tokens.map((t, i) => tokenButton(t, i)));
}

function tokenButton(text, i) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "token";
  b.textContent = text;
  b.dataset.index = i;
  b.setAttribute("aria-pressed", "false");
  b.addEventListener("mouseenter", () => draw(i));
  b.addEventListener("focus", () => draw(i));
  b.addEventListener("click", () => {
    state.chosen = state.chosen === i ? null : i;
    for (const other of $("attention-tokens").children) other.setAttribute("aria-pressed", String(Number(other.dataset.index) === state.chosen));
    draw(state.chosen ?? i);
  });
  return b;
}

/** Draws token `i`'s map as a red veil (opacity ∝ attention / its maximum); null clears. */
function draw(i) {
  const canvas = $("attention-overlay");
  const ctx = canvas.getContext("2d");
  const m = state.maps;
  canvas.dataset.token = i ?? "";
  if (i === null || !m || !m.maps[i]) {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    $("attention-caption").textContent = "";
    return;
  }
  canvas.width = m.width;
  canvas.height = m.height;
  const map = m.maps[i];
  const max = Math.max(...map) || 1;
  const pixels = ctx.createImageData(m.width, m.height);
  map.forEach((v, k) => pixels.data.set([230, 30, 20, Math.round((v / max) * 210)], 4 * k));
  ctx.putImageData(pixels, 0, 0);
  $("attention-caption").textContent = `“${m.tokens[i]}”: its share of the cross-attention, averaged over layers and steps (strongest in full red).`;
}
