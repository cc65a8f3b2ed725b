// The inpainting mask: one value per pixel of the init image (painted = repaint), painted
// with the pointer on a canvas laid over the picture, shown as a translucent red overlay and
// sent as a black-and-white PNG of the init image's size (white = repaint, black = keep, as
// the pipeline reads it). Pixels are set whole, without anti-aliasing, so what is shown is
// exactly what is sent.

const OVERLAY = [255, 48, 48, 150];

export class Mask {
  constructor(canvas) {
    this.canvas = canvas;
    this.width = 0;
    this.height = 0;
    this.pixels = new Uint8Array(0);
    this.radius = 1;
    this.enabled = false;
    this.last = null;
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    canvas.addEventListener("pointerup", () => this.up());
    canvas.addEventListener("pointercancel", () => this.up());
  }

  /** A fresh, empty mask for a picture of `width` × `height` pixels. */
  reset(width, height) {
    this.width = width;
    this.height = height;
    this.canvas.width = width;
    this.canvas.height = height;
    this.pixels = new Uint8Array(width * height);
    this.render();
  }

  /** Brush radius from the slider (1–8): in pixels of a 32-pixel picture, scaled to this one. */
  setBrush(size) {
    this.radius = (size * Math.max(this.width, this.height)) / 32;
  }

  setEnabled(on) {
    this.enabled = on;
    this.canvas.classList.toggle("painting", on);
  }

  /** How many pixels are painted. */
  painted() {
    return this.pixels.reduce((n, v) => n + (v ? 1 : 0), 0);
  }

  clear() {
    this.pixels.fill(0);
    this.render();
  }

  invert() {
    for (let i = 0; i < this.pixels.length; i++) this.pixels[i] = this.pixels[i] ? 0 : 1;
    this.render();
  }

  /** The pointer's position in picture pixels (fractional). */
  at(e) {
    const r = this.canvas.getBoundingClientRect();
    return [((e.clientX - r.left) / r.width) * this.width, ((e.clientY - r.top) / r.height) * this.height];
  }

  down(e) {
    if (!this.enabled || this.width === 0) return;
    e.preventDefault();
    if (this.canvas.setPointerCapture && e.pointerId !== undefined) {
      try {
        this.canvas.setPointerCapture(e.pointerId);
      } catch {
        // A synthetic pointer (not an active one) cannot be captured; painting still works.
      }
    }
    this.last = this.at(e);
    this.stamp(...this.last);
    this.render();
  }

  move(e) {
    if (!this.last) return;
    const [x, y] = this.at(e);
    // Stamps along the segment, at most half a radius apart, so fast strokes have no gaps.
    const [x0, y0] = this.last;
    const n = Math.max(1, Math.ceil(Math.hypot(x - x0, y - y0) / Math.max(0.5, this.radius / 2)));
    for (let i = 1; i <= n; i++) this.stamp(x0 + ((x - x0) * i) / n, y0 + ((y - y0) * i) / n);
    this.last = [x, y];
    this.render();
  }

  up() {
    if (this.last) this.canvas.dispatchEvent(new Event("change"));
    this.last = null;
  }

  /** Paints every pixel whose centre lies within the brush radius of (x, y). */
  stamp(x, y) {
    const r = Math.max(0.5, this.radius);
    const [x0, x1] = [Math.max(0, Math.floor(x - r)), Math.min(this.width - 1, Math.ceil(x + r))];
    const [y0, y1] = [Math.max(0, Math.floor(y - r)), Math.min(this.height - 1, Math.ceil(y + r))];
    for (let py = y0; py <= y1; py++) {
      for (let px = x0; px <= x1; px++) {
        if (Math.hypot(px + 0.5 - x, py + 0.5 - y) <= r) this.pixels[py * this.width + px] = 1;
      }
    }
  }

  render() {
    if (this.width === 0) return;
    const ctx = this.canvas.getContext("2d");
    const image = ctx.createImageData(this.width, this.height);
    this.pixels.forEach((v, i) => {
      if (v) image.data.set(OVERLAY, i * 4);
    });
    ctx.putImageData(image, 0, 0);
  }

  /** The mask as a PNG data URL: white where painted, black elsewhere. */
  toDataUrl() {
    const c = document.createElement("canvas");
    c.width = this.width;
    c.height = this.height;
    const ctx = c.getContext("2d");
    const image = ctx.createImageData(this.width, this.height);
    this.pixels.forEach((v, i) => {
      const g = v ? 255 : 0;
      image.data.set([g, g, g, 255], i * 4);
    });
    ctx.putImageData(image, 0, 0);
    return c.toDataURL("image/png");
  }
}
