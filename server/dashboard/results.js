// results.js — what a job leaves: its exports to download, its evaluation (the job's "metrics"
// on its held-out rows, or POST /v1/jobs/{id}/evaluate on any dataset: a confusion matrix heat
// map and per-class precision, recall and F1), the hidden units of Θ^(1) drawn as pictures when
// the inputs form a square image (the course's displayData), and the drawing pad (draw.js).
import { api, costHistory, download, ApiError } from './api.js';
import { el } from './dom.js';
import { showPad, hidePad } from './draw.js';

const $ = (id) => document.getElementById(id);
const pct = (v) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : `${(100 * v).toFixed(1)}%`);
const n3 = (v) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(3));
let current = null; // the job id shown
let evalRoute = true; // does the server have POST /v1/jobs/{id}/evaluate?

export function hideResults() {
  current = null;
  $('results').hidden = true;
  hidePad();
}

export async function showResults(id, state, status) {
  const job = await api('GET', `/v1/jobs/${id}`).catch(() => null);
  if (!job) return;
  const side = Math.round(Math.sqrt(job.network.layers[0]));
  const square = side * side === job.network.layers[0] && side >= 4;
  if (status === 'running') {          // predict works with the latest weights while it runs
    if (square && job.network.output !== 'linear') showPad(id, side, job.network.layers.at(-1));
    return;
  }
  if (current === id) return;
  current = id;
  $('results').hidden = false;
  if (job.progress.epoch === 0) {
    $('downloads').replaceChildren('No epoch finished: no weights.');
    $('eval-box').hidden = true;
    $('units-box').hidden = true;
    hidePad();
    return;
  }
  downloads(id);
  evaluation(job, state);
  units(id, square ? side : 0);
  if (square && job.network.output !== 'linear') showPad(id, side, job.network.layers.at(-1));
  else hidePad();
}

// ---- exports ----------------------------------------------------------------------------
async function downloads(id) {
  const box = $('downloads');
  box.replaceChildren('Downloads: ');
  const files = [['weights', 'weights.json', 'the weights (JSON)'], ['cost', 'cost.json', 'J(Θ) per epoch'],
                 ['model.json', 'model.json', 'model (JSON)'], ['weights.bin', 'weights.bin', 'weights (binary)'],
                 ['model.onnx', 'model.onnx', 'ONNX']];
  for (const [path, name, title] of files) {
    const url = `/v1/jobs/${id}/${path}`;
    // the exports are other routes that may not exist on this server: ask before offering
    const ok = await api('HEAD', url, { raw: true }).then(() => true, () => false);
    if (!ok || current !== id) continue;
    box.append(el('a', { href: '#', class: 'dl', 'data-file': name, title,
      onclick: async (ev) => {
        ev.preventDefault();
        // cost.json: every page of the history joined, not just the first
        const href = name === 'cost.json'
          ? URL.createObjectURL(new Blob([JSON.stringify(await costHistory(id))], { type: 'application/json' }))
          : await download(url);
        const a = el('a', { href, download: `${id}-${name}` });
        document.body.append(a); a.click(); a.remove();
        setTimeout(() => URL.revokeObjectURL(a.href), 10000);
      } }, name), ' ');
  }
}

// ---- evaluation -------------------------------------------------------------------------
function evaluation(job, state) {
  $('eval-box').hidden = !evalRoute && !job.metrics;
  $('eval').replaceChildren();
  $('eval-note').textContent = evalRoute ? '' : 'This server has no evaluation endpoint.';
  const sel = $('evalform').elements.dataset;
  sel.replaceChildren(...state.datasets.filter((d) => d.features === job.network.layers[0])
    .map((d) => el('option', { value: d.id }, `${d.name || d.id} (${d.rows} rows)`)));
  sel.value = job.dataset;
  $('evalform').hidden = !evalRoute;
  $('evalform').onsubmit = async (ev) => {
    ev.preventDefault();
    $('eval-note').textContent = 'evaluating…';
    try {
      const m = await api('POST', `/v1/jobs/${job.id}/evaluate`, { body: { dataset: sel.value } });
      if (current !== job.id) return;
      $('eval-note').textContent = `on ${sel.selectedOptions[0]?.textContent || sel.value}`;
      renderMetrics(m);
    } catch (e) {
      if (e instanceof ApiError && !e.route) {
        evalRoute = false;
        $('evalform').hidden = true;
        $('eval-note').textContent = 'This server has no evaluation endpoint.';
        $('eval-box').hidden = !job.metrics;
      } else $('eval-note').textContent = e.message;
    }
  };
  if (job.metrics) {
    $('eval-note').textContent = `on the held-out rows (validation split ${job.training.validation_split})`;
    renderMetrics(job.metrics);
  } else if (evalRoute) {
    $('evalform').requestSubmit();
  }
}

function renderMetrics(m) {
  const box = $('eval');
  box.replaceChildren();
  const facts = [['rows', m.rows], ['J(Θ)', n3(m.cost)]];
  if (m.accuracy !== undefined) facts.push(['accuracy', pct(m.accuracy)], ['log loss', n3(m.log_loss)]);
  if (m.roc_auc !== undefined && m.roc_auc !== null) facts.push(['ROC AUC', n3(m.roc_auc)]);
  for (const k of ['mse', 'mae', 'r2']) if (m[k] !== undefined) facts.push([k.toUpperCase().replace('R2', 'R²'), n3(m[k])]);
  box.append(el('p', { class: 'stats', 'data-testid': 'eval-summary' },
    ...facts.map(([k, v]) => el('span', {}, `${k} `, el('b', {}, String(v))))));
  if (!m.confusion) return;
  const classes = m.classes || m.confusion.map((_, i) => i);
  // heat map: each row (a true class) shaded by its share of that class's rows
  const t = el('table', { class: 'confusion', 'data-testid': 'confusion' });
  t.append(el('caption', {}, 'Confusion matrix (rows: true class, columns: predicted)'));
  t.append(el('tr', {}, el('th', {}, ''), ...classes.map((c) => el('th', { scope: 'col' }, String(c)))));
  m.confusion.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    t.append(el('tr', {}, el('th', { scope: 'row' }, String(classes[i])), ...row.map((v, j) => {
      const td = el('td', { title: `true ${classes[i]}, predicted ${classes[j]}: ${v}` }, String(v));
      const f = v / total;
      td.style.background = i === j ? `rgba(5, 150, 105, ${0.1 + 0.8 * f})` : v ? `rgba(220, 38, 38, ${0.15 + 0.85 * f})` : '';
      if (f > 0.55) td.classList.add('light');
      return td;
    })));
  });
  const pc = el('table', { class: 'perclass', 'data-testid': 'per-class' });
  pc.append(el('tr', {}, ...['class', 'precision', 'recall', 'F1', 'support'].map((h) => el('th', {}, h))));
  for (const r of m.per_class || [])
    pc.append(el('tr', {}, el('td', {}, String(r.class)), el('td', {}, n3(r.precision)), el('td', {}, n3(r.recall)),
      el('td', {}, n3(r.f1)), el('td', {}, String(r.support))));
  for (const k of ['macro', 'weighted'])
    if (m[k]) pc.append(el('tr', { class: 'avg' }, el('td', {}, k), el('td', {}, n3(m[k].precision)), el('td', {}, n3(m[k].recall)),
      el('td', {}, n3(m[k].f1)), el('td', {}, String(m[k].support ?? ''))));
  box.append(el('div', { class: 'evalgrid' }, el('div', { class: 'scroll' }, t), el('div', { class: 'scroll' }, pc)));
}

// ---- hidden units -----------------------------------------------------------------------
async function units(id, side) {
  $('units-box').hidden = true;
  if (!side) return;
  let w;
  try { w = await api('GET', `/v1/jobs/${id}/weights`); } catch { return; }
  if (current !== id) return;
  const t1 = w.theta[0];                      // hidden × (side² + 1); column 0: bias
  const cols = Math.ceil(Math.sqrt(t1.length)), rows = Math.ceil(t1.length / cols);
  const pad = 1, cell = side + pad;
  const c = $('units');
  c.width = cols * cell + pad;
  c.height = rows * cell + pad;
  const g = c.getContext('2d');
  const img = g.createImageData(c.width, c.height);
  img.data.fill(255);
  t1.forEach((row, u) => {
    const px = row.slice(1);
    const m = Math.max(...px.map(Math.abs)) || 1;   // each unit scaled by its largest weight
    const ox = (u % cols) * cell + pad, oy = Math.floor(u / cols) * cell + pad;
    px.forEach((v, k) => {
      const g8 = Math.round(127.5 * (1 + v / m));
      const o = 4 * ((oy + Math.floor(k / side)) * c.width + ox + (k % side));
      img.data[o] = img.data[o + 1] = img.data[o + 2] = g8;
    });
  });
  g.putImageData(img, 0, 0);
  c.dataset.units = String(t1.length);
  $('units-box').hidden = false;
}
