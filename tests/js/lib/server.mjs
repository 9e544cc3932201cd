// tests/js/lib/server.mjs — the JavaScript tests' way to a real backpropd: starts the binary named
// by BACKPROPD_BIN (default build/backpropd) on an ephemeral port with a fresh temporary data
// directory, waits for its "listening http://ADDR:PORT" line, and stops it (SIGTERM) and removes
// the directory afterwards. Plus small fetch helpers that fail loudly on an unexpected status.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, openSync, closeSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export async function startServer(extraArgs = []) {
  const bin = process.env.BACKPROPD_BIN ? resolve(repo, process.env.BACKPROPD_BIN)
                                        : join(repo, 'build/backpropd');
  const data = mkdtempSync(join(tmpdir(), 'bpd-js-'));
  const logPath = join(data, 'server.log');
  const logFd = openSync(logPath, 'a');
  const child = spawn(bin, ['--port', '0', '--bind', '127.0.0.1', '--data', data,
                            '--log-level', 'debug', ...extraArgs],
                      { stdio: ['ignore', 'pipe', logFd] });
  closeSync(logFd);
  const base = await new Promise((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error('backpropd did not start in 30 s')), 30000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = /listening (http:\/\/[^\s]+)\n/.exec(out);
      if (m) { clearTimeout(timer); ok(m[1].replace('0.0.0.0', '127.0.0.1')); }
    });
    child.on('exit', (code) => { clearTimeout(timer); fail(new Error(`backpropd exited ${code}`)); });
  });
  child.stdout.resume();
  return {
    base,
    log: () => readFileSync(logPath, 'utf8'),
    async stop() {
      if (child.exitCode === null) {
        const done = new Promise((ok) => child.once('exit', ok));
        child.kill('SIGTERM');
        await done;
      }
      rmSync(data, { recursive: true, force: true });
    },
  };
}

// fetch that expects a status (default 2xx) and returns the parsed JSON (or the Response for raw).
export async function call(base, method, path, { body, headers = {}, expect, raw = false } = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    if (typeof body === 'string' || body instanceof Uint8Array) init.body = body;
    else { init.body = JSON.stringify(body); init.headers['Content-Type'] ??= 'application/json'; }
  }
  const res = await fetch(base + path, init);
  const ok = expect === undefined ? res.ok : res.status === expect;
  if (!ok) throw new Error(`${method} ${path}: HTTP ${res.status}: ${await res.text()}`);
  return raw ? res : res.json();
}

// A job's whole cost history: GET /v1/jobs/{id}/cost and the pages its "next" names, each
// checked (no more rows than its limit, full when another follows, epochs increasing, the Link
// header the same as next), joined into { epoch, cost, validation_cost, accuracy,
// validation_accuracy }.
export async function costHistory(base, id, headers = {}) {
  const cols = ['epoch', 'cost', 'validation_cost', 'accuracy', 'validation_accuracy'];
  const all = Object.fromEntries(cols.map((k) => [k, []]));
  let path = `/v1/jobs/${id}/cost`, last = 0;
  for (let pages = 0; path; pages++) {
    if (pages > 10000) throw new Error(`${id}: no end to the pages`);
    const res = await call(base, 'GET', path, { headers, raw: true });
    const page = await res.json();
    const limit = Number(new URL(path, base).searchParams.get('limit') || 1000);
    if (page.epoch.length > limit) throw new Error(`${path}: ${page.epoch.length} rows, limit ${limit}`);
    for (const e of page.epoch) { if (!(e > last)) throw new Error(`${path}: epoch ${e} after ${last}`); last = e; }
    for (const k of cols) {
      if (page[k].length !== page.epoch.length) throw new Error(`${path}: ${k} has ${page[k].length} entries`);
      all[k].push(...page[k]);
    }
    const link = res.headers.get('link');
    if (page.next !== null) {
      if (page.epoch.length !== limit) throw new Error(`${path}: a short page with a next`);
      if (link !== `<${page.next}>; rel="next"`) throw new Error(`${path}: Link ${link}, next ${page.next}`);
    } else if (link) throw new Error(`${path}: a Link header on the last page`);
    path = page.next;
  }
  return all;
}

// Polls a job until it has finished; returns the job's last state.
export async function waitJob(base, id, headers = {}, timeoutMs = 120000) {
  const t0 = Date.now();
  for (;;) {
    const job = await call(base, 'GET', `/v1/jobs/${id}`, { headers });
    if (['succeeded', 'failed', 'cancelled'].includes(job.status)) return job;
    if (Date.now() - t0 > timeoutMs) throw new Error(`job ${id} still ${job.status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// The bundled digits set (tests/data/digits.csv: label first, then 64 pixels scaled to 0..1) as rows.
export function digits() {
  const lines = readFileSync(join(repo, 'tests/data/digits.csv'), 'utf8').trim().split('\n');
  const rows = lines.filter((l) => /^[0-9]/.test(l)).map((l) => l.split(',').map(Number));
  return { X: rows.map((r) => r.slice(1)), y: rows.map((r) => r[0]) };
}
