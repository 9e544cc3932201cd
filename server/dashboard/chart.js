// chart.js — a small line chart on a <canvas>: several named series of (x, y) points, nice
// axis ticks, a legend, sharp on any devicePixelRatio, redrawn at most once a frame and when
// the canvas changes size. The canvas's data-points attribute counts the points drawn (what
// the browser tests watch grow).

export const palette = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#db2777',
                        '#0891b2', '#65a30d', '#9333ea', '#ea580c'];

function nice(span, count) {
  const raw = span / Math.max(count, 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

function ticks(lo, hi, count) {
  if (!(hi > lo)) { hi = lo + 1; }
  const step = nice(hi - lo, count);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

function fmt(v) {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(1);
  return String(+v.toPrecision(4));
}

export class LineChart {
  // opts: { title, xLabel, yLabel, yMin, yMax }
  constructor(canvas, opts = {}) {
    this.canvas = canvas;
    this.opts = opts;
    this.series = [];
    this.pending = false;
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  // series: [{ name, color, dash, points: [[x, y], ...] }] (y null/NaN = a gap)
  set(series) {
    this.series = series;
    this.draw();
  }

  draw() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.paint(); });
  }

  paint() {
    const c = this.canvas, dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight;
    if (!w || !h) return;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const css = getComputedStyle(c);
    const ink = css.getPropertyValue('--ink').trim() || '#222';
    const grid = css.getPropertyValue('--grid').trim() || '#ddd';
    g.font = '11px system-ui, sans-serif';

    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity, n = 0;
    for (const s of this.series)
      for (const [x, y] of s.points) {
        if (y === null || !Number.isFinite(y)) continue;
        n++;
        x0 = Math.min(x0, x); x1 = Math.max(x1, x);
        y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      }
    c.dataset.points = String(n);
    if (!n) {
      g.fillStyle = ink;
      g.textAlign = 'center';
      g.fillText(this.opts.empty || 'no data yet', w / 2, h / 2);
      return;
    }
    if (this.opts.yMin !== undefined) y0 = Math.min(y0, this.opts.yMin);
    if (this.opts.yMax !== undefined) y1 = Math.max(y1, this.opts.yMax);
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) { y1 += Math.abs(y1) * 0.1 || 1; y0 -= Math.abs(y0) * 0.1; }

    const left = 48, right = 10, top = 24, bottom = 30;
    const pw = w - left - right, ph = h - top - bottom;
    const X = (x) => left + ((x - x0) / (x1 - x0)) * pw;
    const Y = (y) => top + (1 - (y - y0) / (y1 - y0)) * ph;

    g.strokeStyle = grid;
    g.fillStyle = ink;
    g.lineWidth = 1;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (const t of ticks(y0, y1, Math.max(2, Math.floor(ph / 40)))) {
      g.beginPath(); g.moveTo(left, Y(t)); g.lineTo(left + pw, Y(t)); g.stroke();
      g.fillText(fmt(t), left - 4, Y(t));
    }
    g.textAlign = 'center';
    g.textBaseline = 'top';
    for (const t of ticks(x0, x1, Math.max(2, Math.floor(pw / 70)))) {
      if (Number.isInteger(x0) && !Number.isInteger(t)) continue;
      g.fillText(fmt(t), X(t), top + ph + 4);
    }
    if (this.opts.xLabel) { g.textAlign = 'right'; g.fillText(this.opts.xLabel, left + pw, top + ph + 16); }

    g.save();
    g.beginPath(); g.rect(left, top - 2, pw, ph + 4); g.clip();
    g.lineWidth = 1.75;
    for (const s of this.series) {
      g.strokeStyle = s.color;
      g.setLineDash(s.dash ? [5, 4] : []);
      g.beginPath();
      let pen = false;
      for (const [x, y] of s.points) {
        if (y === null || !Number.isFinite(y)) { pen = false; continue; }
        if (pen) g.lineTo(X(x), Y(y)); else g.moveTo(X(x), Y(y));
        pen = true;
      }
      g.stroke();
      if (s.points.length === 1 && pen) { g.fillStyle = s.color; g.fillRect(X(s.points[0][0]) - 2, Y(s.points[0][1]) - 2, 4, 4); }
    }
    g.restore();
    g.setLineDash([]);

    // legend, left to right across the top
    g.textAlign = 'left';
    g.textBaseline = 'middle';
    let lx = left;
    for (const s of this.series) {
      if (!s.points.length) continue;
      const tw = g.measureText(s.name).width;
      if (lx + tw + 24 > w) break;
      g.strokeStyle = s.color;
      g.setLineDash(s.dash ? [4, 3] : []);
      g.beginPath(); g.moveTo(lx, 10); g.lineTo(lx + 14, 10); g.stroke();
      g.setLineDash([]);
      g.fillStyle = ink;
      g.fillText(s.name, lx + 18, 10);
      lx += tw + 30;
    }
  }
}
