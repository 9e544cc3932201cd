// tests/js/lib/exports.mjs — what the export tests (exports_tfjs, exports_onnx) share: a
// deterministic regression set made here, the trained jobs they load (digits with a softmax and
// with a sigmoid output, the regression set with a linear one: every hidden activation once), a
// keys file for the auth checks, and the largest difference between two output matrices.
import { before, after } from 'node:test';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, call, waitJob, digits } from './server.mjs';

export const KEY = 'export-test-key-0123456789abcdef';
// The digits' class names of the standardized case (sorted byte-wise they are not 0..9's order).
export const NAMES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
export const AUTH = { Authorization: `Bearer ${KEY}` };

// A server with API keys (alice:KEY) and the trained cases (trainCases) on it; stop() ends both.
export async function exportServer() {
  const keys = keysFile();
  let srv;
  try {
    srv = await startServer(['--api-keys-file', keys.path]);
    return { srv, cases: await trainCases(srv.base, AUTH),
             async stop() { await srv.stop(); keys.remove(); } };
  } catch (e) {
    await srv?.stop();
    keys.remove();
    throw e;
  }
}

// For a test file: {srv, cases} of an exportServer started before its tests, stopped after.
export function exportFixture() {
  const fx = {};
  before(async () => { Object.assign(fx, await exportServer()); });
  after(async () => { await fx.stop?.(); });
  return fx;
}

// Runs fn(base, id, running) with id a job that has no weights yet: a second server
// (--workers 1, no keys) whose one worker is held by a long job (running), so the next job
// stays queued. Cancels both.
export async function withQueuedJob(fn) {
  const s = await startServer(['--workers', '1', '--job-threads', '1']);
  try {
    // 2000 rows × 50 features through 2000 hidden units, on one thread: an epoch takes a good
    // part of a second, so a few requests fit inside one (the running job's export test), and
    // 10^6 epochs are far more than the test's seconds
    const X = Array.from({ length: 2000 }, (_, i) => Array.from({ length: 50 }, (_, j) => ((i * 31 + j * 17) % 97) / 97));
    const ds = await call(s.base, 'POST', '/v1/datasets', { body: { X, y: X.map((_, i) => i % 2) } });
    const spec = { network: { layers: [50, 2000, 2] }, dataset: ds.id, training: { epochs: 1000000 } };
    const busy = await call(s.base, 'POST', '/v1/jobs', { body: spec });
    const queued = await call(s.base, 'POST', '/v1/jobs', { body: spec });
    await fn(s.base, queued.id, busy.id);
    await call(s.base, 'POST', `/v1/jobs/${queued.id}/cancel`);
    await call(s.base, 'POST', `/v1/jobs/${busy.id}/cancel`);
  } finally {
    await s.stop();
  }
}

// A keys file with one key (alice:KEY) in a fresh directory; remove() deletes it.
export function keysFile() {
  const dir = mkdtempSync(join(tmpdir(), 'bpd-keys-'));
  const path = join(dir, 'keys');
  writeFileSync(path, `alice:${KEY}\n`, { mode: 0o600 });
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

// m rows of 3 features in [-1, 1] from a fixed linear congruential generator, and 2 smooth
// targets of them (|y| < 1.2): the same numbers on every machine.
export function regression(m = 400) {
  let s = 20261130;
  const rnd = () => { s = (s * 1103515245 + 12345) % 2147483648; return 2 * (s / 2147483648) - 1; };
  const X = [], Y = [];
  for (let i = 0; i < m; i++) {
    const x = [rnd(), rnd(), rnd()];
    X.push(x);
    Y.push([0.8 * Math.sin(2 * x[0]) + 0.3 * x[1] * x[2], 0.5 * x[0] - 0.4 * x[2] * x[2]]);
  }
  return { X, Y };
}

// The trained models the export tests load: { name: {id, rows, width, output} }. Trains all
// three on srv (headers: the API key when the server has keys) and waits for them.
export async function trainCases(base, headers = {}) {
  const d = digits();
  const r = regression();
  const training = { optimizer: 'adam', learning_rate: 0.01, lambda: 0.5, batch_size: 64, seed: 7 };
  const specs = {
    digits_relu_softmax: { data: { X: d.X, y: d.y }, rows: d.X.slice(0, 300),
      network: { layers: [64, 32, 16, 10], activation: 'relu', output: 'softmax' }, epochs: 12 },
    digits_sigmoid_sigmoid: { data: { X: d.X, y: d.y }, rows: d.X.slice(300, 600),
      network: { layers: [64, 20, 10], activation: 'sigmoid', output: 'sigmoid' }, epochs: 12 },
    regression_tanh_linear: { data: r, rows: r.X,
      network: { layers: [3, 12, 8, 2], activation: 'tanh', output: 'linear' }, epochs: 40 },
    // trained on standardized rows (constant pixels included) with named classes: the exports
    // must fold the transform into Θ^(1) to take the raw rows /predict takes
    digits_standardized_named: { data: { X: d.X, y: d.y.map((k) => NAMES[k]) },
      rows: d.X.slice(600, 900), standardize: true,
      network: { layers: [64, 24, 10], activation: 'tanh', output: 'softmax' }, epochs: 8 },
  };
  const cases = {};
  for (const [name, c] of Object.entries(specs)) {
    const ds = await call(base, 'POST', '/v1/datasets', { body: c.data, headers });
    const job = await call(base, 'POST', '/v1/jobs', { headers, body: {
      network: c.network, dataset: ds.id,
      training: { ...training, epochs: c.epochs, standardize: !!c.standardize } } });
    cases[name] = { id: job.id, rows: c.rows, width: c.network.layers[0],
                    outputs: c.network.layers.at(-1), output: c.network.output };
  }
  for (const c of Object.values(cases)) {
    const done = await waitJob(base, c.id, headers);
    if (done.status !== 'succeeded') throw new Error(`job ${c.id}: ${done.status} ${done.error}`);
    const pred = await call(base, 'POST', `/v1/jobs/${c.id}/predict`, { headers, body: { X: c.rows } });
    c.predicted = pred.outputs;
  }
  return cases;
}

// max over every entry of |a - b| (a, b: arrays of rows, or a flat typed array for a).
export function maxAbsDiff(a, b) {
  const flatA = Array.isArray(a) ? a.flat() : Array.from(a);
  const flatB = b.flat();
  if (flatA.length !== flatB.length) throw new Error(`${flatA.length} outputs vs ${flatB.length}`);
  let worst = 0;
  flatA.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - flatB[i])); });
  return worst;
}

// max over every entry of |a - b| / max(1, |b|): absolute below 1, relative above.
export function maxScaledDiff(a, b) {
  const flatA = Array.from(a), flatB = b.flat();
  let worst = 0;
  flatA.forEach((v, i) => {
    worst = Math.max(worst, Math.abs(v - flatB[i]) / Math.max(1, Math.abs(flatB[i])));
  });
  return worst;
}
