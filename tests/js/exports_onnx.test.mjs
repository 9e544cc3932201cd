// tests/js/exports_onnx.test.mjs — GET /v1/jobs/{id}/model.onnx run by ONNX Runtime for
// JavaScript (onnxruntime-web's WebAssembly build, in Node, nothing downloaded) on the bytes
// fetched with the API key. Double (default): outputs equal POST …/predict's within
// max |Δ| ≤ 1e-12; ?dtype=float32: within 1e-6 · max(1, |y|) per output (absolute below 1,
// relative above: float32 keeps ~7 digits). Softmax and sigmoid classifiers on digits, a linear
// regression net; a batch of 1 and of all rows (the batch dimension is dynamic). The bytes are
// also read by a protobuf decoder written here (independent of the server's writer): IR
// version, opset 13, graph and dynamic shapes, metadata_props. And the problem answers: 400
// naming dtype, 401 without the key, 404, 409 before weights; a running job's export holds
// its latest epoch's weights, bit for bit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-web';
import { call } from './lib/server.mjs';
import { AUTH, exportFixture, withQueuedJob, maxAbsDiff, maxScaledDiff } from './lib/exports.mjs';

ort.env.wasm.numThreads = 1; // no worker threads: plain Node, no cross-origin isolation
ort.env.logLevel = 'error';

const fx = exportFixture(); // the keyed server and its trained jobs
async function fetchOnnx(id, query = '') {
  const res = await call(fx.srv.base, 'GET', `/v1/jobs/${id}/model.onnx${query}`, { headers: AUTH, raw: true });
  assert.equal(res.headers.get('content-type'), 'application/octet-stream');
  assert.match(res.headers.get('content-disposition') ?? '', new RegExp(`${id}\\.onnx`));
  return new Uint8Array(await res.arrayBuffer());
}

async function run(session, rows, width, type) {
  const Arr = type === 'float64' ? Float64Array : Float32Array;
  const input = new ort.Tensor(type, Arr.from(rows.flat()), [rows.length, width]);
  const { output } = await session.run({ input });
  assert.equal(output.type, type);
  return output;
}

for (const name of ['digits_relu_softmax', 'digits_sigmoid_sigmoid', 'regression_tanh_linear',
                    'digits_standardized_named']) {
  test(`onnx: ${name} in double reproduces /predict within 1e-12`, async (t) => {
    const c = fx.cases[name];
    const session = await ort.InferenceSession.create(await fetchOnnx(c.id));
    assert.deepEqual(session.inputNames, ['input']);
    assert.deepEqual(session.outputNames, ['output']);
    const out = await run(session, c.rows, c.width, 'float64');
    assert.deepEqual(out.dims, [c.rows.length, c.outputs]);
    const worst = maxAbsDiff(out.data, c.predicted);
    t.diagnostic(`${name}: max |Δ| onnx float64 vs /predict = ${worst.toExponential(3)} over ` +
                 `${c.rows.length} × ${c.outputs} outputs`);
    assert.ok(worst <= 1e-12, `max |Δ| ${worst}`);
    const one = await run(session, c.rows.slice(5, 6), c.width, 'float64');
    assert.deepEqual(one.dims, [1, c.outputs]);
    assert.ok(maxAbsDiff(one.data, c.predicted.slice(5, 6)) <= 1e-12);
    const spread = Math.max(...c.predicted.flat()) - Math.min(...c.predicted.flat());
    assert.ok(spread > 0.5, `outputs spread ${spread}`);
  });

  test(`onnx: ${name} with ?dtype=float32 reproduces /predict within 1e-6·max(1,|y|)`, async (t) => {
    const c = fx.cases[name];
    const session = await ort.InferenceSession.create(await fetchOnnx(c.id, '?dtype=float32'));
    const out = await run(session, c.rows, c.width, 'float32');
    const worst = maxScaledDiff(out.data, c.predicted);
    t.diagnostic(`${name}: max |Δ|/max(1,|y|) onnx float32 vs /predict = ${worst.toExponential(3)} ` +
                 `(max |Δ| ${maxAbsDiff(out.data, c.predicted).toExponential(3)})`);
    assert.ok(worst <= 1e-6, `max scaled |Δ| ${worst}`);
  });
}

// ---- a protobuf reader of our own: fields of one message as {field, wire, value | bytes}
function fields(buf) {
  const out = [];
  let p = 0;
  const varint = () => {
    let v = 0n, shift = 0n;
    for (;;) {
      if (p >= buf.length) throw new Error('varint runs past the end');
      const b = buf[p++];
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
      shift += 7n;
    }
  };
  while (p < buf.length) {
    const tag = Number(varint());
    const field = tag >> 3, wire = tag & 7;
    if (wire === 0) out.push({ field, wire, value: varint() });
    else if (wire === 2) {
      const n = Number(varint());
      if (p + n > buf.length) throw new Error(`field ${field}: ${n} bytes past the end`);
      out.push({ field, wire, bytes: buf.subarray(p, p + n) });
      p += n;
    } else throw new Error(`field ${field}: unexpected wire type ${wire}`);
  }
  return out;
}
const all = (msg, f) => fields(msg).filter((x) => x.field === f);
const one = (msg, f) => { const a = all(msg, f); assert.equal(a.length, 1, `field ${f}`); return a[0]; };
const text = (x) => new TextDecoder().decode(x.bytes);

test('onnx: the bytes are ModelProto IR 7, opset 13, with the documented graph and metadata', async () => {
  const c = fx.cases.regression_tanh_linear;
  for (const [query, elem, width, precision] of [['', 11n, 8, 'float64'], ['?dtype=float32', 1n, 4, 'float32']]) {
    const model = await fetchOnnx(c.id, query);
    assert.equal(one(model, 1).value, 7n);                       // ir_version
    assert.equal(text(one(model, 2)), 'backpropd');              // producer_name
    assert.equal(one(one(model, 8).bytes, 2).value, 13n);        // opset_import.version
    const meta = Object.fromEntries(all(model, 14).map((e) => [text(one(e.bytes, 1)), text(one(e.bytes, 2))]));
    assert.equal(meta.producer, 'backpropd');
    assert.equal(meta.job_id, c.id);
    assert.equal(meta.epoch, '40');                              // its last (final) epoch
    assert.equal(meta.precision, precision);
    assert.equal(meta.training_precision, 'float64');              // the job's training.precision
    assert.deepEqual(JSON.parse(meta.network), { layers: [3, 12, 8, 2], activation: 'tanh', output: 'linear' });
    assert.equal(meta.classes, undefined);
    const graph = one(model, 7).bytes;
    const ops = all(graph, 1).map((n) => text(one(n.bytes, 4)));
    assert.deepEqual(ops, ['Gemm', 'Tanh', 'Gemm', 'Tanh', 'Gemm', 'Identity']);
    const inits = all(graph, 5).map((t) => ({ dims: all(t.bytes, 1).map((d) => Number(d.value)),
                                             type: one(t.bytes, 2).value, raw: one(t.bytes, 9).bytes.length }));
    assert.deepEqual(inits.map((t) => t.dims), [[12, 3], [12], [8, 12], [8], [2, 8], [2]]);
    for (const t of inits) {
      assert.equal(t.type, elem);
      assert.equal(t.raw, width * t.dims.reduce((a, b) => a * b, 1));
    }
    for (const [f, name, cols] of [[11, 'input', 3], [12, 'output', 2]]) {
      const v = one(graph, f).bytes;
      assert.equal(text(one(v, 1)), name);
      const tensor = one(one(v, 2).bytes, 1).bytes;
      assert.equal(one(tensor, 1).value, elem);
      const dims = all(one(tensor, 2).bytes, 1).map((d) => fields(d.bytes)[0]);
      assert.equal(dims.length, 2);
      assert.equal(dims[0].field, 2);                            // dim_param: dynamic batch
      assert.equal(text(dims[0]), 'N');
      assert.equal(dims[1].field, 1);
      assert.equal(dims[1].value, BigInt(cols));
    }
  }
});

test('onnx: problem answers — 400 naming dtype, 401 without the key, 404 unknown job, 409 before weights', async () => {
  const c = fx.cases.digits_relu_softmax;
  let res = await fetch(`${fx.srv.base}/v1/jobs/${c.id}/model.onnx?dtype=float16`, { headers: AUTH });
  assert.equal(res.status, 400);
  assert.equal(res.headers.get('content-type'), 'application/problem+json');
  assert.match((await res.json()).detail, /^dtype: /);
  res = await fetch(`${fx.srv.base}/v1/jobs/${c.id}/model.onnx`);
  assert.equal(res.status, 401);
  res = await fetch(`${fx.srv.base}/v1/jobs/job_000000000000000000000000/model.onnx`, { headers: AUTH });
  assert.equal(res.status, 404);
  assert.equal(res.headers.get('content-type'), 'application/problem+json');
  await withQueuedJob(async (base, id, running) => {
    res = await fetch(`${base}/v1/jobs/${id}/model.onnx`);
    assert.equal(res.status, 409);
    assert.equal(res.headers.get('content-type'), 'application/problem+json');
    assert.match((await res.json()).detail, /no weights yet/);
    // the running job exports too (its latest weights: 200 and a model, its epoch ≥ 1)
    for (let tries = 0; ; tries++) {
      assert.ok(tries < 400, 'the running job exported nothing in 20 s');
      res = await fetch(`${base}/v1/jobs/${running}/model.onnx`);
      if (res.status === 409) { await new Promise((r) => setTimeout(r, 50)); continue; }
      assert.equal(res.status, 200);
      const model = new Uint8Array(await res.arrayBuffer());
      const meta = Object.fromEntries(all(model, 14).map((e) => [text(one(e.bytes, 1)), text(one(e.bytes, 2))]));
      assert.ok(Number(meta.epoch) >= 1, `epoch ${meta.epoch}`);
      assert.equal(meta.job_id, running);
      break;
    }
  });
});
