// A small line chart on a canvas: the training loss (each step, and smoothed) against the
// left axis and the learning rate against the right one, redrawn at most once a frame.

const COLORS = { loss: "rgba(120, 150, 220, 0.55)", smooth: "#1d4ed8", lr: "#d97706", axis: "#888", text: "#555" };
const PAD = { left: 56, right: 62, top: 12, bottom: 28 };

export class LossChart {
  constructor(canvas) {
    this.canvas = canvas;
    this.points = []; // { step, loss, smooth, lr }
    this.pending = false;
  }

  clear() {
    this.points = [];
    this.redraw();
  }

  add(step, loss, smooth, lr) {
    // A resumed run starts again at its checkpoint: drop the points it will redo.
    while (this.points.length && this.points[this.points.length - 1].step >= step) this.points.pop();
    this.points.push({ step, loss, smooth, lr });
    this.redraw();
  }

  redraw() {
    this.canvas.dataset.points = this.points.length;
    const last = this.points[this.points.length - 1];
    this.canvas.setAttribute("aria-label", last ? `Loss chart: ${this.points.length} steps, last loss ${last.loss.toPrecision(3)}, smoothed ${last.smooth.toPrecision(3)}` : "Loss chart: no steps yet");
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  draw() {
    const { canvas, points } = this;
    const ctx = canvas.getContext("2d");
    const [w, h] = [canvas.width, canvas.height];
    ctx.clearRect(0, 0, w, h);
    const plot = { x: PAD.left, y: PAD.top, w: w - PAD.left - PAD.right, h: h - PAD.top - PAD.bottom };
    ctx.strokeStyle = COLORS.axis;
    ctx.lineWidth = 1;
    ctx.strokeRect(plot.x + 0.5, plot.y + 0.5, plot.w, plot.h);
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = COLORS.text;
    if (points.length === 0) {
      ctx.fillText("The loss appears here as the run trains.", plot.x + 12, plot.y + plot.h / 2);
      return;
    }
    const steps = range(points.map((p) => p.step));
    const loss = range(points.flatMap((p) => [p.loss, p.smooth]), 0);
    const lr = range(points.map((p) => p.lr), 0);
    const x = (s) => plot.x + ((s - steps[0]) / (steps[1] - steps[0] || 1)) * plot.w;
    const y = (v, [lo, hi]) => plot.y + plot.h - ((v - lo) / (hi - lo || 1)) * plot.h;

    line(ctx, points, (p) => [x(p.step), y(p.loss, loss)], COLORS.loss, 1);
    line(ctx, points, (p) => [x(p.step), y(p.smooth, loss)], COLORS.smooth, 2);
    line(ctx, points, (p) => [x(p.step), y(p.lr, lr)], COLORS.lr, 1.5);

    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    ctx.fillText(loss[1].toPrecision(3), plot.x - 6, plot.y + 4);
    ctx.fillText(loss[0].toPrecision(3), plot.x - 6, plot.y + plot.h - 4);
    ctx.textAlign = "left";
    ctx.fillStyle = COLORS.lr;
    ctx.fillText(lr[1].toExponential(1), plot.x + plot.w + 6, plot.y + 4);
    ctx.fillText(lr[0].toExponential(1), plot.x + plot.w + 6, plot.y + plot.h - 4);
    ctx.fillStyle = COLORS.text;
    ctx.textBaseline = "top";
    ctx.textAlign = "left";
    ctx.fillText(`step ${steps[0]}`, plot.x, plot.y + plot.h + 8);
    ctx.textAlign = "right";
    ctx.fillText(`step ${steps[1]}`, plot.x + plot.w, plot.y + plot.h + 8);
  }
}

/** [min, max] of finite `values`, the minimum at most `floor` when one is given. */
function range(values, floor) {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return [0, 1];
  let lo = Math.min(...finite);
  const hi = Math.max(...finite);
  if (floor !== undefined) lo = Math.min(lo, floor);
  return [lo, hi];
}

function line(ctx, points, at, color, width) {
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.beginPath();
  points.forEach((p, i) => {
    const [px, py] = at(p);
    if (i === 0) ctx.moveTo(px, py);
    else ctx.lineTo(px, py);
  });
  if (points.length === 1) {
    const [px, py] = at(points[0]);
    ctx.lineTo(px + 1, py);
  }
  ctx.stroke();
}
