// tests/js/weights.test.mjs — a browser-style client's view of a trained model: the weights JSON
// of a digits job, run through a forward pass written here in plain JavaScript (the course's
// convention: a = g(Θ [1; a])), reproduces POST …/predict's outputs and labels on the same rows.
import test from 'node:test';
import assert from 'node:assert/strict';
import { startServer, call, waitJob, digits } from './lib/server.mjs';

const sigmoid = (z) => 1 / (1 + Math.exp(-z));

function forward(theta, x, output) {
  let a = x;
  theta.forEach((T, l) => {
    const z = T.map((row) => row[0] + row.slice(1).reduce((s, w, j) => s + w * a[j], 0));
    if (l < theta.length - 1) a = z.map(sigmoid);
    else if (output === 'softmax') {
      const mx = Math.max(...z);
      const e = z.map((v) => Math.exp(v - mx));
      const s = e.reduce((p, v) => p + v, 0);
      a = e.map((v) => v / s);
    } else a = z.map(sigmoid);
  });
  return a;
}

test('a JS forward pass over /weights reproduces /predict on the digits set', async () => {
  const srv = await startServer();
  try {
    const { X, y } = digits();
    const ds = await call(srv.base, 'POST', '/v1/datasets?name=digits', { body: { X, y } });
    const job = await call(srv.base, 'POST', '/v1/jobs', { body: {
      network: { layers: [64, 16, 10], activation: 'sigmoid', output: 'softmax' },
      dataset: ds.id,
      training: { optimizer: 'adam', learning_rate: 0.01, lambda: 1, epochs: 15, batch_size: 64, seed: 3 },
    } });
    assert.equal((await waitJob(srv.base, job.id)).status, 'succeeded');
    const { theta } = await call(srv.base, 'GET', `/v1/jobs/${job.id}/weights`);
    assert.deepEqual(theta.map((T) => [T.length, T[0].length]), [[16, 65], [10, 17]]);
    const rows = X.slice(0, 200);
    const pred = await call(srv.base, 'POST', `/v1/jobs/${job.id}/predict`, { body: { X: rows } });
    let worst = 0, agree = 0;
    rows.forEach((x, i) => {
      const out = forward(theta, x, 'softmax');
      out.forEach((v, k) => { worst = Math.max(worst, Math.abs(v - pred.outputs[i][k])); });
      if (out.indexOf(Math.max(...out)) === pred.labels[i]) agree++;
    });
    assert.ok(worst <= 1e-12, `max |Δ| ${worst}`);
    assert.equal(agree, rows.length);
    // and it learned something: well above chance (10%) on its own training rows
    const right = pred.labels.filter((l, i) => l === y[i]).length;
    assert.ok(right / rows.length > 0.8, `accuracy ${right / rows.length}`);
  } finally {
    await srv.stop();
  }
});
