// jobs.js — jobs: the form (POST /v1/jobs with sane defaults), the list (GET /v1/jobs, polled;
// cancel, delete, pick for comparison), one job watched live over its event stream (status,
// epoch, samples/s, J(Θ) and accuracy per epoch, training and validation), and the cost curves
// of several jobs on one chart (GET /v1/jobs/{id}/cost, every page of it).
import { api, costHistory, follow } from './api.js';
import { LineChart, palette } from './chart.js';
import { el } from './dom.js';
import { showResults, hideResults } from './results.js';

const $ = (id) => document.getElementById(id);
const FINAL = ['succeeded', 'failed', 'cancelled'];
const short = (id) => id.replace(/^job_/, '').slice(0, 8);
const num = (v, d = 4) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : (+v.toPrecision(d)).toString());

export class Jobs {
  constructor(state, message) {
    this.state = state;
    this.message = message;
    this.jobs = [];
    this.compare = new Set();
    this.watched = null;   // { id, stream, hist }
    this.costChart = new LineChart($('w-cost'), { xLabel: 'epoch', empty: 'waiting for the first epoch' });
    this.accChart = new LineChart($('w-acc'), { xLabel: 'epoch', yMax: 1, empty: 'waiting for the first epoch' });
    this.compareChart = new LineChart($('compare'), { xLabel: 'epoch' });
    state.onDatasets.push((ds) => this.fillDatasets(ds));
    $('jobform').addEventListener('submit', (ev) => { ev.preventDefault(); this.submit(); });
    const f = $('jobform');
    f.elements.dataset.addEventListener('change', () => this.datasetChosen());
    f.elements.hidden.addEventListener('input', () => this.shapeNote());
    f.elements.optimizer.addEventListener('change', () => this.optimizerChosen());
    f.elements.output.addEventListener('change', () => { f.elements.output.dataset.touched = '1'; this.shapeNote(); });
    f.elements.learning_rate.addEventListener('input', () => { f.elements.learning_rate.dataset.touched = '1'; });
    $('w-cancel').addEventListener('click', () => this.watched && this.cancel(this.watched.id));
    // training.standardize is newer than some servers: offer it only where the contract has it
    fetch('/openapi.yaml').then((r) => r.text()).then((doc) => {
      if (/\n {8}standardize:/.test(doc)) return;
      f.elements.standardize.disabled = true;
      f.elements.standardize.parentElement.title = 'this server does not standardize inputs';
    }).catch(() => {});
  }

  // ---- the form -------------------------------------------------------------------------
  fillDatasets(ds) {
    const sel = $('jobform').elements.dataset, was = sel.value;
    sel.replaceChildren(...ds.map((d) => el('option', { value: d.id }, `${d.name || d.id} (${d.rows}×${d.features})`)));
    if (ds.some((d) => d.id === was)) sel.value = was;
    this.datasetChosen();
  }

  dataset() {
    const id = $('jobform').elements.dataset.value;
    return this.state.datasets.find((d) => d.id === id);
  }

  datasetChosen() {
    const d = this.dataset(), f = $('jobform').elements;
    if (d && d.outputs > 2 && !f.output.dataset.touched) f.output.value = 'softmax';
    this.shapeNote();
  }

  optimizerChosen() {
    const f = $('jobform').elements, mini = ['sgd', 'momentum', 'adam'].includes(f.optimizer.value);
    f.batch_size.disabled = !mini;
    if (!f.learning_rate.dataset.touched) f.learning_rate.value = f.optimizer.value === 'adam' ? 0.01 : f.optimizer.value === 'lbfgs' ? 1 : f.optimizer.value === 'gd' ? 1 : 0.1;
  }

  layers() {
    const d = this.dataset();
    const hidden = $('jobform').elements.hidden.value.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
    if (!d) return null;
    const k = d.outputs === 2 && $('jobform').elements.output.value === 'sigmoid' ? 1 : d.outputs;
    return [d.features, ...hidden, k];
  }

  shapeNote() {
    const l = this.layers();
    $('shape').textContent = l ? `network ${l.join(' → ')}` : 'upload a dataset first';
  }

  async submit() {
    const f = $('jobform').elements;
    $('joberr').textContent = '';
    const layers = this.layers();
    if (!layers) { $('joberr').textContent = 'Upload or choose a dataset first.'; return; }
    const mini = ['sgd', 'momentum', 'adam'].includes(f.optimizer.value);
    const training = {
      optimizer: f.optimizer.value,
      learning_rate: Number(f.learning_rate.value),
      lambda: Number(f.lambda.value),
      epochs: Number(f.epochs.value),
      batch_size: mini ? Number(f.batch_size.value || 0) : 0,
      validation_split: Number(f.validation_split.value || 0),
      seed: Number(f.seed.value || 0),
    };
    if (f.standardize.checked) training.standardize = true;  // absent = the server's default
    const body = { network: { layers, activation: f.activation.value, output: f.output.value },
                   dataset: f.dataset.value, training };
    try {
      const job = await api('POST', '/v1/jobs', { body });
      await this.refresh();
      this.watch(job.id);
    } catch (e) { $('joberr').textContent = e.message; }
  }

  // ---- the list -------------------------------------------------------------------------
  async refresh() {
    const page = await api('GET', '/v1/jobs?limit=100');
    this.jobs = page.jobs;
    const rows = this.jobs.map((j) => {
      const p = j.progress || {};
      const live = !FINAL.includes(j.status);
      return el('tr', { 'data-id': j.id, 'data-status': j.status, class: this.watched?.id === j.id ? 'on' : '' },
        el('td', {}, el('input', { type: 'checkbox', 'aria-label': 'compare', checked: this.compare.has(j.id),
          onchange: (ev) => { ev.target.checked ? this.compare.add(j.id) : this.compare.delete(j.id); this.drawCompare(); } })),
        el('td', {}, el('button', { type: 'button', class: 'link', title: j.id, onclick: () => this.watch(j.id) }, short(j.id)),
          el('small', {}, ` ${j.network.layers.join('-')} ${j.training.optimizer}`)),
        el('td', {}, el('span', { class: `st ${j.status}` }, j.status)),
        el('td', {}, `${p.epoch ?? 0}/${p.epochs ?? j.training.epochs}`),
        el('td', {}, num(p.cost)),
        el('td', { class: 'acts' },
          live ? el('button', { type: 'button', class: 'small', onclick: () => this.cancel(j.id) }, 'Cancel') : null,
          el('button', { type: 'button', class: 'small danger', onclick: () => this.remove(j.id) }, 'Delete')));
    });
    if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: 6, class: 'note' }, 'No job yet.')));
    $('jobs').replaceChildren(...rows);
  }

  poll() {
    const tick = async () => {
      try {
        await this.refresh();
        if ([...this.compare].some((id) => !FINAL.includes(this.jobs.find((j) => j.id === id)?.status))) await this.drawCompare();
      } catch { /* shown on the next action */ }
      setTimeout(tick, 2000);
    };
    setTimeout(tick, 2000);
  }

  async cancel(id) {
    try { await api('POST', `/v1/jobs/${id}/cancel`); await this.refresh(); } catch (e) { this.message(e.message, true); }
  }

  async remove(id) {
    if (!confirm(`Delete job ${id}?`)) return;
    try {
      await api('DELETE', `/v1/jobs/${id}`);
      this.compare.delete(id);
      if (this.watched?.id === id) this.unwatch();
      await this.refresh();
      this.drawCompare();
    } catch (e) { this.message(e.message, true); }
  }

  async drawCompare() {
    const ids = [...this.compare];
    $('compare-box').hidden = ids.length === 0;
    if (!ids.length) return;
    const series = await Promise.all(ids.map(async (id, i) => {
      try {
        const h = await costHistory(id);   // every page: the whole curve
        return { name: short(id), color: palette[i % palette.length], points: h.epoch.map((e, k) => [e, h.cost[k]]) };
      } catch { return { name: short(id), color: palette[i % palette.length], points: [] }; }
    }));
    this.compareChart.set(series);
  }

  // ---- one job, live --------------------------------------------------------------------
  unwatch() {
    if (this.watched) this.watched.stream.close();
    this.watched = null;
    $('watch').hidden = true;
    hideResults();
  }

  watch(id) {
    this.unwatch();
    const hist = { cost: [], vcost: [], acc: [], vacc: [] };
    const w = { id, hist, stream: null, reconnects: 0 };
    $('w-stream').dataset.reconnects = '0';
    this.watched = w;
    $('watch').hidden = false;
    $('w-id').textContent = id;
    $('w-status').textContent = '…';
    $('w-epoch').textContent = '0';
    $('w-sps').textContent = '–';
    $('w-error').textContent = '';
    $('w-cancel').hidden = true;
    for (const tr of document.querySelectorAll('#jobs tr')) tr.classList.toggle('on', tr.dataset.id === id);
    const redraw = () => {
      this.costChart.set([
        { name: 'training J', color: palette[0], points: hist.cost },
        { name: 'validation J', color: palette[1], dash: true, points: hist.vcost }]);
      this.accChart.set([
        { name: 'training', color: palette[2], points: hist.acc },
        { name: 'validation', color: palette[3], dash: true, points: hist.vacc }]);
    };
    redraw();
    w.stream = follow(id, {
      onState: (s) => {
        if (this.watched !== w) return;
        $('w-stream').textContent = s;
        if (s === 'reconnecting') $('w-stream').dataset.reconnects = String(++w.reconnects);
      },
      onEvent: (type, d) => {
        if (this.watched !== w) return;
        if (type === 'progress') {
          hist.cost.push([d.epoch, d.cost]);
          hist.vcost.push([d.epoch, d.validation_cost]);
          hist.acc.push([d.epoch, d.accuracy]);
          hist.vacc.push([d.epoch, d.validation_accuracy]);
          $('w-epoch').textContent = `${d.epoch}/${d.epochs}`;
          if (d.samples_per_second !== null) $('w-sps').textContent = Math.round(d.samples_per_second).toLocaleString('en');
          redraw();
        } else if (type === 'status') {
          $('w-status').textContent = d.status + (d.stop_reason ? ` (${d.stop_reason.replace('_', ' ')})` : '');
          $('w-status').className = `st ${d.status}`;
          $('w-cancel').hidden = FINAL.includes(d.status);
          if (d.error) $('w-error').textContent = d.error;
          if (d.status === 'running' || FINAL.includes(d.status)) showResults(id, this.state, d.status);
          if (FINAL.includes(d.status)) this.refresh().catch(() => {});
        }
      },
    });
  }
}
