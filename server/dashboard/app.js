// app.js — the dashboard's entry: who is calling (API key for this tab, GET /v1/whoami), the
// datasets (upload by drop or picker as text/csv, list, delete), and the wiring of the job
// views (jobs.js), the results (results.js) and the drawing pad (draw.js).
import { api, key, ApiError } from './api.js';
import { Jobs } from './jobs.js';
import { el } from './dom.js';

const $ = (id) => document.getElementById(id);
export const state = { datasets: [], onDatasets: [] };

function message(text, isError = false) {
  const m = $('msg');
  m.textContent = text;
  m.hidden = !text;
  m.classList.toggle('err', isError);
}


// ---- who am I ---------------------------------------------------------------------------
async function whoami() {
  try {
    const me = await api('GET', '/v1/whoami');
    $('who').replaceChildren();
    if (me.keys_required) {
      $('who').append('signed in as ', el('b', { 'data-testid': 'tenant' }, me.tenant), ' ',
        el('button', { type: 'button', class: 'link', onclick: () => { key.set(''); location.reload(); } }, 'forget key'));
    } else {
      $('who').append('open server (no API keys)');
    }
    return true;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      $('who').textContent = 'API key needed';
      $('keybox').hidden = false;
      $('main').hidden = true;
      if (key.get()) $('keyerr').textContent = `The server refused the key: ${e.message}`;
      key.set('');
      return false;
    }
    message(`Cannot reach the server: ${e.message}`, true);
    return false;
  }
}

$('keyform').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  key.set($('key').value.trim());
  $('key').value = '';
  $('keyerr').textContent = '';
  if (await whoami()) start();
});

// ---- datasets ---------------------------------------------------------------------------
export async function loadDatasets() {
  const out = [];
  let cursor = '';
  do {
    const page = await api('GET', `/v1/datasets?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    out.push(...page.datasets);
    cursor = page.next_cursor;
  } while (cursor && out.length < 1000);
  state.datasets = out;
  const ul = $('datasets');
  ul.replaceChildren(...out.map((d) => el('li', { 'data-id': d.id },
    el('span', { class: 'grow' }, el('b', {}, d.name || d.id), el('br'),
      el('small', {}, `${d.rows} rows × ${d.features} features · ${d.outputs} ${d.outputs === 1 ? 'output' : 'classes'} · ${d.id}`)),
    el('button', { type: 'button', class: 'danger small', title: 'delete', onclick: () => deleteDataset(d) }, 'Delete'))));
  if (!out.length) ul.append(el('li', { class: 'note' }, 'No dataset yet: upload one (tests/data/digits.csv is the course\'s 8×8 digits).'));
  for (const f of state.onDatasets) f(out);
}

async function deleteDataset(d) {
  if (!confirm(`Delete dataset ${d.name || d.id}?`)) return;
  try {
    await api('DELETE', `/v1/datasets/${d.id}`);
    await loadDatasets();
  } catch (e) { message(`Delete ${d.id}: ${e.message}`, true); }
}

async function upload(file) {
  const st = $('upload-status');
  if (!file) return;
  st.textContent = `Uploading ${file.name} (${(file.size / 1024).toFixed(0)} KiB)…`;
  st.classList.remove('err');
  try {
    const name = file.name.replace(/\.csv$/i, '').slice(0, 100);
    const d = await api('POST', `/v1/datasets?name=${encodeURIComponent(name)}`, { body: file, type: 'text/csv' });
    st.textContent = `Stored ${d.name || d.id}: ${d.rows} rows × ${d.features} features, ` +
      (d.outputs === 1 ? '1 output' : `${d.outputs} classes (0–${d.outputs - 1})`) + '.';
    st.dataset.id = d.id;
    await loadDatasets();
    document.querySelector('#jobform select[name=dataset]').value = d.id;
    document.querySelector('#jobform select[name=dataset]').dispatchEvent(new Event('change'));
  } catch (e) {
    st.textContent = `Upload failed: ${e.message}`;
    st.classList.add('err');
  }
}

$('file').addEventListener('change', (ev) => { upload(ev.target.files[0]); ev.target.value = ''; });
const drop = $('drop');
for (const t of ['dragenter', 'dragover']) drop.addEventListener(t, (ev) => { ev.preventDefault(); drop.classList.add('over'); });
for (const t of ['dragleave', 'drop']) drop.addEventListener(t, () => drop.classList.remove('over'));
drop.addEventListener('drop', (ev) => { ev.preventDefault(); upload(ev.dataTransfer.files[0]); });

// ---- start ------------------------------------------------------------------------------
let started = false;
async function start() {
  $('keybox').hidden = true;
  $('main').hidden = false;
  if (started) { await loadDatasets(); return; }
  started = true;
  const jobs = new Jobs(state, message);
  try {
    await loadDatasets();
    await jobs.refresh();
  } catch (e) { message(e.message, true); }
  jobs.poll();
  document.body.dataset.ready = '1';
}

whoami().then((ok) => ok && start());
