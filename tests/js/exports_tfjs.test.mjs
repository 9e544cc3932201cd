// tests/js/exports_tfjs.test.mjs — GET /v1/jobs/{id}/model.json (+ weights.bin) loaded by
// TensorFlow.js itself, over HTTP from the server, exactly as a page would:
// tf.loadLayersModel(url, {requestInit: {headers}}). Its predictions must equal POST …/predict's
// on the same rows within max |Δ| ≤ 1e-6 (the export is float32; the server computes in
// double) for a softmax and a sigmoid classifier on digits, a linear regression net and a
// classifier trained on standardized rows with named classes (the fold into Θ^(1)); the
// API key travels with both requests, and without it the load fails with 401. Also: the
// metadata, the weights file's size, and the problem answers (404, 409 before weights).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { call } from './lib/server.mjs';
import { AUTH, NAMES, exportFixture, withQueuedJob, maxAbsDiff } from './lib/exports.mjs';

const fx = exportFixture(); // the keyed server and its trained jobs
for (const name of ['digits_relu_softmax', 'digits_sigmoid_sigmoid', 'regression_tanh_linear',
                    'digits_standardized_named']) {
  test(`tfjs: model.json of ${name} loads in one line and reproduces /predict`, async (t) => {
    const c = fx.cases[name];
    const url = `${fx.srv.base}/v1/jobs/${c.id}/model.json`;
    const model = await tf.loadLayersModel(url, { requestInit: { headers: AUTH } });
    assert.deepEqual(model.inputs[0].shape, [null, c.width]);
    assert.deepEqual(model.outputs[0].shape, [null, c.outputs]);
    const out = tf.tidy(() => model.predict(tf.tensor2d(c.rows)).arraySync());
    const worst = maxAbsDiff(out, c.predicted);
    t.diagnostic(`${name}: max |Δ| tfjs vs /predict = ${worst.toExponential(3)} over ` +
                 `${c.rows.length} × ${c.outputs} outputs`);
    assert.ok(worst <= 1e-6, `max |Δ| ${worst}`);
    // the outputs vary (not a constant net), so the comparison means something
    const spread = Math.max(...c.predicted.flat()) - Math.min(...c.predicted.flat());
    assert.ok(spread > 0.5, `outputs spread ${spread}`);
    const meta = model.getUserDefinedMetadata();
    assert.equal(meta.producer, 'backpropd');
    assert.equal(meta.job_id, c.id);
    const { epoch } = await call(fx.srv.base, 'GET', `/v1/jobs/${c.id}/weights`, { headers: AUTH });
    assert.equal(meta.epoch, epoch);
    assert.equal(meta.network.output, c.output);
    const named = name === 'digits_standardized_named';
    assert.deepEqual(meta.classes, named ? [...NAMES].sort() : null);
    assert.equal(meta.standardized, named);
    assert.equal(meta.training_precision, 'float64');
    model.dispose();
  });
}

test('tfjs: weights.bin is the manifest\'s float32 kernels and biases, Θ transposed', async () => {
  const c = fx.cases.digits_relu_softmax;
  const json = await call(fx.srv.base, 'GET', `/v1/jobs/${c.id}/model.json`, { headers: AUTH });
  assert.deepEqual(json.weightsManifest[0].paths, ['weights.bin']);
  const res = await call(fx.srv.base, 'GET', `/v1/jobs/${c.id}/weights.bin`, { headers: AUTH, raw: true });
  assert.equal(res.headers.get('content-type'), 'application/octet-stream');
  const bin = new Uint8Array(await res.arrayBuffer());
  const floats = json.weightsManifest[0].weights.reduce((n, w) => n + w.shape.reduce((p, d) => p * d, 1), 0);
  assert.equal(bin.length, 4 * floats);
  assert.equal(floats, 32 * 65 + 16 * 33 + 10 * 17);
  // little-endian float32, kernel[i][j] = Θ^(1)[j][1 + i], then bias Θ^(1)[:, 0]
  const { theta } = await call(fx.srv.base, 'GET', `/v1/jobs/${c.id}/weights`, { headers: AUTH });
  const view = new DataView(bin.buffer, bin.byteOffset, bin.byteLength);
  const f = (k) => view.getFloat32(4 * k, true);
  assert.equal(f(0), Math.fround(theta[0][0][1]));
  assert.equal(f(1), Math.fround(theta[0][1][1]));
  assert.equal(f(32), Math.fround(theta[0][0][2]));
  assert.equal(f(64 * 32), Math.fround(theta[0][0][0]));
  assert.equal(f(64 * 32 + 31), Math.fround(theta[0][31][0]));
});

test('tfjs: without the API key the load fails with 401; model.json and weights.bin both need it', async () => {
  const c = fx.cases.regression_tanh_linear;
  await assert.rejects(tf.loadLayersModel(`${fx.srv.base}/v1/jobs/${c.id}/model.json`), /401/);
  for (const file of ['model.json', 'weights.bin']) {
    const res = await fetch(`${fx.srv.base}/v1/jobs/${c.id}/${file}`);
    assert.equal(res.status, 401, file);
    assert.equal(res.headers.get('content-type'), 'application/problem+json');
  }
});

test('tfjs: unknown job 404, a job without weights yet 409, both problem+json', async () => {
  for (const file of ['model.json', 'weights.bin']) {
    const res = await fetch(`${fx.srv.base}/v1/jobs/job_000000000000000000000000/${file}`, { headers: AUTH });
    assert.equal(res.status, 404, file);
    assert.equal(res.headers.get('content-type'), 'application/problem+json');
    assert.match((await res.json()).detail, /job_000000000000000000000000/);
  }
  // A job still queued has no weights: one long job holds the worker (--workers 1), the next waits.
  await withQueuedJob(async (base, id) => {
    for (const file of ['model.json', 'weights.bin']) {
      const res = await fetch(`${base}/v1/jobs/${id}/${file}`);
      assert.equal(res.status, 409, file);
      assert.equal(res.headers.get('content-type'), 'application/problem+json');
      assert.match((await res.json()).detail, /no weights yet/);
    }
  });
});

test('tfjs: a standardized job with named classes says so in its metadata, classes in their documented (byte-wise sorted) order', async () => {
  const c = fx.cases.digits_standardized_named;
  const res = await fetch(`${fx.srv.base}/v1/jobs/${c.id}/model.json`, { headers: AUTH });
  assert.equal(res.status, 200);
  const model = await res.json();
  const meta = JSON.stringify(model);
  const sorted = [...NAMES].sort();
  assert.ok(meta.includes(JSON.stringify(sorted)), `classes ${JSON.stringify(sorted)} not in ${meta.slice(0, 400)}`);
  assert.ok(meta.includes('"standardized":true'), 'standardized not true');
  const pred = await call(fx.srv.base, 'POST', `/v1/jobs/${c.id}/predict`, { headers: AUTH, body: { X: c.rows.slice(0, 3) } });
  assert.deepEqual(pred.classes, sorted);
});
