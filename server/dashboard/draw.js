// draw.js — draw a digit with a mouse or a finger and see the model's answer as you draw:
// the drawing is scaled to the model's side × side input (each input the share of its block
// that is inked, 0..1, row by row — how tests/data/digits.csv holds its 8×8 pictures), sent to
// POST /v1/jobs/{id}/predict (one request in flight; the newest drawing goes next), and the
// predicted class and the outputs a^(L) are shown as bars.
import { api } from './api.js';
import { el } from './dom.js';

const $ = (id) => document.getElementById(id);
let job = null, side = 8, outputs = 10, busy = false, again = false, inked = false;
const pad = $('pad'), small = $('small');
const g = pad.getContext('2d', { willReadFrequently: true });

export function hidePad() { job = null; $('draw-card').hidden = true; }

export function showPad(id, s, k) {
  const fresh = job !== id;
  job = id; side = s; outputs = k;
  $('draw-card').hidden = false;
  $('d-side').textContent = `${s}×${s}`;
  small.width = small.height = s;
  if (fresh) clear();
  else if (inked) predict();
}

function clear() {
  g.clearRect(0, 0, pad.width, pad.height);
  small.getContext('2d').clearRect(0, 0, side, side);
  inked = false;
  $('d-label').textContent = '–';
  $('probs').replaceChildren();
}

// The pad as side × side inputs in 0..1 (mean alpha of each block), row-major.
export function pixels() {
  const { data } = g.getImageData(0, 0, pad.width, pad.height);
  const out = new Array(side * side).fill(0);
  const bw = pad.width / side, bh = pad.height / side;
  for (let y = 0; y < pad.height; y++)
    for (let x = 0; x < pad.width; x++) {
      const k = Math.min(side - 1, Math.floor(y / bh)) * side + Math.min(side - 1, Math.floor(x / bw));
      out[k] += data[4 * (y * pad.width + x) + 3] / 255;
    }
  return out.map((v) => +(v / (bw * bh)).toFixed(4));
}

function preview(x) {
  const sg = small.getContext('2d'), img = sg.createImageData(side, side);
  x.forEach((v, k) => { const c = 255 - Math.round(255 * v); img.data.set([c, c, c, 255], 4 * k); });
  sg.putImageData(img, 0, 0);
}

async function predict() {
  if (!job || !inked) return;
  if (busy) { again = true; return; }
  busy = true;
  const id = job, x = pixels();
  preview(x);
  try {
    const r = await api('POST', `/v1/jobs/${id}/predict`, { body: { X: [x] } });
    if (id === job) show(r.outputs[0], r.labels ? r.labels[0] : null);
  } catch (e) {
    $('d-label').textContent = '–';
    $('probs').replaceChildren(el('p', { class: 'note' }, e.message));
  } finally {
    busy = false;
    if (again) { again = false; predict(); }
  }
}

function show(out, label) {
  $('d-label').textContent = label === null ? '–' : String(label);
  const sum = out.reduce((a, b) => a + (b ?? 0), 0);
  $('probs').replaceChildren(...out.map((v, k) => {
    const bar = el('span', { class: 'bar' });
    bar.style.width = `${Math.max(0, Math.min(1, v ?? 0)) * 100}%`;
    return el('div', { class: `prob${k === label ? ' best' : ''}`, 'data-class': String(k), 'data-p': String(v) },
      el('span', { class: 'k' }, String(k)), el('span', { class: 'track' }, bar),
      el('span', { class: 'v' }, v === null ? '–' : v.toFixed(3)));
  }), el('p', { class: 'note' }, outputs > 1 && Math.abs(sum - 1) > 1e-6 ? 'sigmoid outputs: each is one class against the rest (they need not add up to 1)' : ''));
}

// ---- drawing ----------------------------------------------------------------------------
let down = false, last = null;
function at(ev) {
  const r = pad.getBoundingClientRect();
  return [(ev.clientX - r.left) * (pad.width / r.width), (ev.clientY - r.top) * (pad.height / r.height)];
}
function stroke(p) {
  g.strokeStyle = g.fillStyle = '#000';
  g.lineCap = g.lineJoin = 'round';
  g.lineWidth = pad.width / side * 0.9;
  g.beginPath();
  if (last) { g.moveTo(...last); g.lineTo(...p); g.stroke(); } else { g.arc(p[0], p[1], g.lineWidth / 2, 0, 2 * Math.PI); g.fill(); }
  last = p;
  inked = true;
}
pad.addEventListener('pointerdown', (ev) => { down = true; last = null; pad.setPointerCapture(ev.pointerId); stroke(at(ev)); predict(); });
pad.addEventListener('pointermove', (ev) => { if (down) { stroke(at(ev)); predict(); } });
for (const t of ['pointerup', 'pointercancel']) pad.addEventListener(t, () => { down = false; last = null; predict(); });
$('d-clear').addEventListener('click', clear);
