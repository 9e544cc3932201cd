// tests/js/dashboard.test.mjs — the dashboard at / in a real browser: Debian's Chromium
// (/usr/bin/chromium, or $CHROMIUM) driven by playwright-core, against a real backpropd.
// Without keys: upload tests/data/digits.csv through the page's file input, submit a job from
// the form and watch its J(Θ) curve gain points while it trains, cancel it, see the confusion
// matrix of a finished job (checked against the job's metrics from the API), draw a digit and
// get the prediction the API gives for the very pixels the page sent; then the same with API
// keys on (the key typed into the page, the event stream through the browser-safe token).
// Every test saves a screenshot under build/screenshots/; no browser error or CSP violation
// may appear in the console.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, call, costHistory, waitJob, repo } from './lib/server.mjs';

const DIGITS = join(repo, 'tests/data/digits.csv');
const SHOTS = join(repo, 'build/screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const DESKTOP = { width: 1280, height: 1000 };
const PHONE = { width: 390, height: 844 };

let browser;
before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing (scripts/install-deps installs chromium)`);
  // as root (CI's chroot) Chromium's sandbox cannot start: --no-sandbox
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
                                    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
});
after(async () => { await browser?.close(); });

// A page that records console errors, uncaught exceptions and CSP violations.
async function openPage(base, viewport = DESKTOP) {
  const ctx = await browser.newContext({ viewport, deviceScaleFactor: 1, acceptDownloads: true });
  const page = await ctx.newPage();
  page.problems = [];
  page.on('console', (m) => { if (m.type() === 'error' && !/status of 40[0-9]/.test(m.text())) page.problems.push(m.text()); });
  page.on('pageerror', (e) => page.problems.push(String(e)));
  page.on('dialog', (d) => d.accept());
  page.setDefaultTimeout(30000);
  await page.goto(base + '/');
  return { ctx, page };
}

const shot = (page, name, fullPage = true) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
const points = (page, sel) => page.$eval(sel, (c) => Number(c.dataset.points || 0));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, fn, ms = 30000) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function uploadDigits(page) {
  await page.setInputFiles('[data-testid=file]', DIGITS);
  await page.waitForFunction(() => /Stored/.test(document.querySelector('[data-testid=upload-status]').textContent));
  const text = await page.textContent('[data-testid=upload-status]');
  assert.match(text, /1797 rows × 64 features, 10 classes \(0–9\)/);
  return page.$eval('[data-testid=upload-status]', (e) => e.dataset.id);
}

// Fills the job form (the defaults stay unless given) and submits it; returns the job id shown.
async function submitJob(page, fields) {
  for (const [name, v] of Object.entries(fields)) await page.fill(`#jobform [name=${name}]`, String(v));
  const before = await page.textContent('[data-testid=w-id]').catch(() => '');
  await page.click('[data-testid=submit]');
  await page.waitForFunction((b) => {
    const t = document.querySelector('[data-testid=w-id]').textContent;
    return t && t !== b;
  }, before);
  return page.textContent('[data-testid=w-id]');
}

// Draws a "1"-like stroke (and a little foot) on the pad; returns the predict request's X and
// the page's shown label and outputs once its answer is shown.
async function drawAndPredict(page) {
  const pad = await page.$('[data-testid=pad]');
  await pad.scrollIntoViewIfNeeded();
  const box = await pad.boundingBox();
  const sent = [];
  page.on('request', (r) => { if (r.method() === 'POST' && r.url().endsWith('/predict')) sent.push(JSON.parse(r.postData())); });
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.12);
  await page.mouse.down();
  for (let k = 1; k <= 12; k++) await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * (0.12 + 0.064 * k), { steps: 2 });
  await page.mouse.up();
  await waitFor('a prediction', () => page.$$eval('[data-testid=probs] .prob', (e) => e.length));
  await sleep(300);                                   // the last drawing's answer
  await page.waitForFunction(() => !document.querySelector('[data-testid=probs] .note')?.textContent.includes('HTTP'));
  assert.ok(sent.length >= 1, 'the pad sent no predict request');
  const label = (await page.textContent('[data-testid=predicted]')).trim();
  const probs = await page.$$eval('[data-testid=probs] .prob', (e) => e.map((p) => Number(p.dataset.p)));
  return { X: sent.at(-1).X, label, probs };
}

// The evaluation panel of a finished job: waits for the confusion matrix (or the page's note
// that the server has no evaluation) and returns its cells.
async function confusionCells(page) {
  await page.waitForFunction(() => document.querySelector('[data-testid=confusion]') ||
    /no evaluation/.test(document.querySelector('[data-testid=eval-note]').textContent), null, { timeout: 60000 });
  assert.ok(await page.$('[data-testid=confusion]'),
            `no confusion matrix: ${await page.textContent('[data-testid=eval-note]')}`);
  return page.$$eval('[data-testid=confusion] tr', (trs) => trs.slice(1).map((tr) => [...tr.querySelectorAll('td')].map((td) => Number(td.textContent))));
}

async function checkPrediction(base, jobId, headers, got) {
  const x = got.X[0];
  assert.equal(x.length, 64);
  assert.ok(x.every((v) => v >= 0 && v <= 1), 'inputs scaled to 0..1 like digits.csv');
  // a vertical stroke down the middle: ink in the middle columns, none in the outer ones
  const col = (c) => [0, 1, 2, 3, 4, 5, 6, 7].reduce((s, r) => s + x[r * 8 + c], 0);
  assert.ok(col(3) + col(4) > 2, `middle columns inked: ${col(3)} ${col(4)}`);
  assert.equal(col(0) + col(7), 0);
  const want = await call(base, 'POST', `/v1/jobs/${jobId}/predict`, { body: { X: [x] }, headers });
  assert.equal(got.label, String(want.labels[0]));
  assert.equal(got.probs.length, 10);
  got.probs.forEach((p, k) => assert.ok(Math.abs(p - want.outputs[0][k]) < 1e-12, `output ${k}`));
}

describe('dashboard without API keys', () => {
  let srv, ctx, page, longJob, doneJob;
  before(async () => {
    srv = await startServer(['--workers', '2']);
    ({ ctx, page } = await openPage(srv.base));
  });
  after(async () => {
    await ctx?.close();
    await srv?.stop();
  });

  it('serves the page under a strict CSP and says the server has no keys', async () => {
    const res = await fetch(srv.base + '/');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-security-policy'), /script-src 'self'; style-src 'self'/);
    assert.doesNotMatch(await res.text(), /<script(?![^>]*\bsrc=)|\sstyle=|\son[a-z]+=/i, 'no inline script, style or handler');
    await page.waitForSelector('body[data-ready="1"]');
    assert.match(await page.textContent('[data-testid=who]'), /no API keys/);
    assert.equal(await page.isVisible('#keybox'), false);
    await shot(page, 'dashboard-empty');
  });

  it('uploads the digits CSV through the file input and shows its shape and classes', async () => {
    const id = await uploadDigits(page);
    const ds = await call(srv.base, 'GET', `/v1/datasets/${id}`);
    assert.deepEqual([ds.rows, ds.features, ds.outputs], [1797, 64, 10]);
    assert.match(await page.textContent('[data-testid=datasets]'), /1797 rows × 64 features · 10 classes/);
    assert.equal(await page.textContent('[data-testid=shape]'), 'network 64 → 25 → 10');
    await shot(page, 'dashboard-uploaded');
  });

  it('watches a job live: the J(Θ) curve gains points while it trains, then cancel stops it', async () => {
    longJob = await submitJob(page, { epochs: 100000, batch_size: 32 });
    await page.waitForFunction(() => document.querySelector('[data-testid=w-status]').textContent === 'running');
    const n1 = await waitFor('a first point', () => points(page, '[data-testid=cost-chart]'));
    const n2 = await waitFor('more points', async () => { const n = await points(page, '[data-testid=cost-chart]'); return n > n1 && n; });
    assert.ok(n2 > n1);
    assert.equal(await page.textContent('[data-testid=w-stream]'), 'live');
    assert.match(await page.textContent('[data-testid=w-epoch]'), /^\d+\/100000$/);
    await shot(page, 'dashboard-training');
    // the stream is cut (window.stop() aborts the page's connections): the page reconnects
    // and the curve goes on, with no epoch lost or drawn twice (checked after the cancel)
    await page.evaluate(() => window.stop());
    const n3 = await points(page, '[data-testid=cost-chart]');
    await waitFor('points after the reconnect', async () => (await points(page, '[data-testid=cost-chart]')) > n3 + 4);
    assert.equal(await page.textContent('[data-testid=w-stream]'), 'live');
    assert.ok(Number(await page.$eval('[data-testid=w-stream]', (e) => e.dataset.reconnects)) >= 1, 'the stream was cut');
    await page.click('[data-testid=cancel]');
    await page.waitForFunction(() => /^cancelled/.test(document.querySelector('[data-testid=w-status]').textContent));
    const job = await waitJob(srv.base, longJob);
    assert.equal(job.status, 'cancelled');
    // every epoch the job ran is on the chart: training and validation J for each
    const hist = await costHistory(srv.base, longJob);
    await waitFor('the whole history', async () => (await points(page, '[data-testid=cost-chart]')) === 2 * hist.epoch.length);
    await page.waitForSelector(`[data-testid=jobs] tr[data-id="${longJob}"][data-status=cancelled]`);
  });

  it('shows the confusion matrix and per-class scores of a finished job', async () => {
    doneJob = await submitJob(page, { epochs: 40, batch_size: 64 });
    await page.waitForFunction(() => /^succeeded/.test(document.querySelector('[data-testid=w-status]').textContent), null, { timeout: 60000 });
    const job = await call(srv.base, 'GET', `/v1/jobs/${doneJob}`);
    await page.waitForSelector('[data-testid=units]');
    assert.equal(await page.$eval('[data-testid=units]', (c) => c.dataset.units), '25');
    // the curves of both jobs on one chart
    for (const id of [longJob, doneJob]) await page.check(`[data-testid=jobs] tr[data-id="${id}"] input[type=checkbox]`);
    await waitFor('two curves', async () => (await points(page, '[data-testid=compare]')) > 40);
    await shot(page, 'dashboard-finished');
    // the exports the server has are offered, and a download is the API's bytes
    const offered = await waitFor('the downloads', async () => {
      const f = await page.$$eval('[data-testid=downloads] a', (a) => a.map((x) => x.dataset.file));
      return f.includes('cost.json') && f;
    });
    for (const f of ['model.json', 'weights.bin', 'model.onnx']) {
      const res = await fetch(`${srv.base}/v1/jobs/${doneJob}/${f}`);
      assert.equal(offered.includes(f), res.status === 200, `${f}: offered ${offered.includes(f)}, HTTP ${res.status}`);
    }
    const [dl] = await Promise.all([page.waitForEvent('download'),
                                    page.click('[data-testid=downloads] a[data-file="weights.json"]')]);
    assert.equal(dl.suggestedFilename(), `${doneJob}-weights.json`);
    assert.deepEqual(JSON.parse(readFileSync(await dl.path(), 'utf8')), await call(srv.base, 'GET', `/v1/jobs/${doneJob}/weights`));
    // cost.json: the history joined from its pages, in the shape of one answer
    const [dlc] = await Promise.all([page.waitForEvent('download'),
                                     page.click('[data-testid=downloads] a[data-file="cost.json"]')]);
    assert.deepEqual(JSON.parse(readFileSync(await dlc.path(), 'utf8')), await costHistory(srv.base, doneJob));
    const cells = await confusionCells(page);
    // the page shows the job's own metrics (held-out rows) or an evaluation on its dataset
    const want = job.metrics ? job.metrics.confusion
      : (await call(srv.base, 'POST', `/v1/jobs/${doneJob}/evaluate`, { body: { dataset: job.dataset } })).confusion;
    assert.deepEqual(cells, want);
    const f1 = await page.$$eval('[data-testid=per-class] tr', (trs) => trs.length);
    assert.ok(f1 >= 11, 'a row per class');
    await shot(page, 'dashboard-evaluated');
  });

  it('compares the whole cost history of a job longer than one page', async () => {
    const ds = await call(srv.base, 'POST', '/v1/datasets', { body: { X: [[0, 0], [0, 1], [1, 0], [1, 1]], y: [0, 1, 1, 0] } });
    const job = await call(srv.base, 'POST', '/v1/jobs', { expect: 202, body: { network: { layers: [2, 2, 2] }, dataset: ds.id,
      training: { optimizer: 'gd', learning_rate: 0.5, epochs: 2500, seed: 3 } } });
    assert.equal((await waitJob(srv.base, job.id)).status, 'succeeded');
    const first = await call(srv.base, 'GET', `/v1/jobs/${job.id}/cost`);
    assert.equal(first.epoch.length, 1000);
    assert.equal(first.next, `/v1/jobs/${job.id}/cost?after=1000&limit=1000`);
    const hist = await costHistory(srv.base, job.id);
    assert.deepEqual(hist.epoch, Array.from({ length: 2500 }, (_, i) => i + 1));
    const shown = await points(page, '[data-testid=compare]');
    const box = `[data-testid=jobs] tr[data-id="${job.id}"] input[type=checkbox]`;
    await page.waitForSelector(box);   // the list is polled
    await page.check(box);
    // every page on the chart: all 2500 epochs of the new curve, the other curves as they were
    await waitFor('the whole curve', async () => (await points(page, '[data-testid=compare]')) === shown + 2500);
    await page.uncheck(box);
    await waitFor('the curve gone', async () => (await points(page, '[data-testid=compare]')) === shown);
  });

  it('draws a digit and gets the prediction the API gives for those pixels', async () => {
    const got = await drawAndPredict(page);
    await checkPrediction(srv.base, doneJob, {}, got);
    await page.setViewportSize({ width: DESKTOP.width, height: 1600 });
    await shot(page, 'dashboard-desktop');
    await page.setViewportSize(PHONE);
    await sleep(200);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no sideways scrolling on a phone (${overflow} px too wide)`);
    await shot(page, 'dashboard-phone');
    assert.deepEqual(page.problems, []);
  });

  it('deletes a job and a dataset from the lists', async () => {
    await page.setViewportSize(DESKTOP);
    await page.click(`[data-testid=jobs] tr[data-id="${longJob}"] button.danger`);
    await page.waitForSelector(`[data-testid=jobs] tr[data-id="${longJob}"]`, { state: 'detached' });
    await call(srv.base, 'GET', `/v1/jobs/${longJob}`, { expect: 404 });
    const id = await uploadDigits(page);
    await page.click(`[data-testid=datasets] li[data-id="${id}"] button`);
    await page.waitForSelector(`[data-testid=datasets] li[data-id="${id}"]`, { state: 'detached' });
    await call(srv.base, 'GET', `/v1/datasets/${id}`, { expect: 404 });
    assert.deepEqual(page.problems, []);
  });
});

describe('dashboard with API keys', () => {
  const KEY = 'dashboard-test-key-0123456789abcdef';
  let srv, ctx, page, dir;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bpd-keys-'));
    writeFileSync(join(dir, 'keys'), `alice:${KEY}\nbob:another-key-0123456789abcdef\n`);
    srv = await startServer(['--api-keys-file', join(dir, 'keys')]);
    ({ ctx, page } = await openPage(srv.base, PHONE));
  });
  after(async () => {
    await ctx?.close();
    await srv?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('asks for a key, refuses a wrong one, shows the tenant for the right one', async () => {
    await page.waitForSelector('#keybox', { state: 'visible' });
    await page.fill('#key', 'not-a-key-0123456789abcdef');
    await page.click('#keyform button');
    await page.waitForFunction(() => /refused/.test(document.getElementById('keyerr').textContent));
    await page.fill('#key', KEY);
    await page.click('#keyform button');
    await page.waitForSelector('body[data-ready="1"]');
    assert.equal(await page.textContent('[data-testid=tenant]'), 'alice');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('backpropd.key')), KEY);
    assert.equal(await page.evaluate(() => localStorage.length), 0, 'the key stays in the tab');
    await shot(page, 'dashboard-keys-signed-in');
  });

  it('uploads, trains live, evaluates and predicts with the key', async () => {
    const auth = { Authorization: `Bearer ${KEY}` };
    const urls = [];
    page.on('request', (r) => urls.push(r.url()));
    const ds = await uploadDigits(page);
    await call(srv.base, 'GET', `/v1/datasets/${ds}`, { headers: auth });
    const id = await submitJob(page, { epochs: 400, batch_size: 64 });
    const n1 = await waitFor('a first point', () => points(page, '[data-testid=cost-chart]'));
    const n2 = await waitFor('more points', async () => { const n = await points(page, '[data-testid=cost-chart]'); return n > n1 && n; });
    assert.ok(n2 > n1);
    await page.waitForFunction(() => /^succeeded/.test(document.querySelector('[data-testid=w-status]').textContent), null, { timeout: 90000 });
    const job = await waitJob(srv.base, id, auth);
    await waitFor('the whole history', async () => (await points(page, '[data-testid=cost-chart]')) === 2 * job.progress.epoch);
    // the key never goes into a URL; the stream goes through a stream token where the
    // server hands them out (else through fetch() with the Authorization header)
    assert.ok(urls.every((u) => !u.includes(KEY)), 'the key is in a URL');
    const tokens = await fetch(`${srv.base}/v1/jobs/${id}/events/token`, { method: 'POST', headers: auth });
    if (tokens.status === 200) {
      assert.ok(urls.some((u) => u.includes(`/v1/jobs/${id}/events?access_token=`)), 'EventSource with a stream token');
    } else {
      assert.equal(tokens.status, 404);
      assert.ok(urls.some((u) => u.endsWith(`/v1/jobs/${id}/events`)), 'the stream through fetch()');
    }
    const got = await drawAndPredict(page);
    await checkPrediction(srv.base, id, auth, got);
    await shot(page, 'dashboard-keys-phone');
    assert.deepEqual(page.problems, []);
    const cells = await confusionCells(page);
    const want = job.metrics ? job.metrics.confusion
      : (await call(srv.base, 'POST', `/v1/jobs/${id}/evaluate`, { body: { dataset: ds }, headers: auth })).confusion;
    assert.deepEqual(cells, want);
  });
});
