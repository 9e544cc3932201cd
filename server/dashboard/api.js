// api.js — the dashboard's only way to the server: the public HTTP API (api/openapi.yaml) with
// the API key of this tab (sessionStorage only: gone when the tab closes), problem+json errors
// turned into readable messages, and a job's event stream that survives reconnects.

const KEY = 'backpropd.key';

export const key = {
  get: () => sessionStorage.getItem(KEY) || '',
  set: (k) => (k ? sessionStorage.setItem(KEY, k) : sessionStorage.removeItem(KEY)),
};

export class ApiError extends Error {
  constructor(status, detail, route) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.route = route; // false when the server has no such route (a 404 for the path)
  }
}

function headers(extra = {}) {
  const h = { ...extra };
  const k = key.get();
  if (k) h.Authorization = `Bearer ${k}`;
  return h;
}

// One call; JSON in and out. body: object (JSON), string/Blob/File (sent as is, with type).
export async function api(method, path, { body, type, raw = false } = {}) {
  const init = { method, headers: headers() };
  if (body !== undefined) {
    if (body instanceof Blob || typeof body === 'string') {
      init.body = body;
      init.headers['Content-Type'] = type || 'application/octet-stream';
    } else {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
  }
  const res = await fetch(path, init);
  if (!res.ok) {
    let detail = '';
    try {
      const p = await res.json();
      detail = p.detail || p.title || '';
    } catch { /* not JSON */ }
    // the framework's 404 for a path that is no route says "no such resource: PATH"
    const route = !(res.status === 404 && /^no such resource/.test(detail));
    throw new ApiError(res.status, detail || `${res.status} ${res.statusText}`, route);
  }
  if (raw) return res;
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

// The bytes of an export as an object URL (the key goes in a header, so a plain link cannot).
export async function download(path) {
  const res = await api('GET', path, { raw: true });
  return URL.createObjectURL(await res.blob());
}

// The whole cost history of a job: GET /v1/jobs/{id}/cost comes a page at a time (1000 epochs
// by default); "next" is the following page's path, null (or, from an older server, absent)
// once the page holds the rest. The pages joined: { epoch, cost, validation_cost, accuracy,
// validation_accuracy }, as one answer used to be.
const COST_COLUMNS = ['epoch', 'cost', 'validation_cost', 'accuracy', 'validation_accuracy'];
export async function costHistory(id) {
  const all = Object.fromEntries(COST_COLUMNS.map((k) => [k, []]));
  let path = `/v1/jobs/${encodeURIComponent(id)}/cost`;
  while (path) {
    const page = await api('GET', path);
    for (const k of COST_COLUMNS) for (const v of page[k] || []) all[k].push(v);
    path = typeof page.next === 'string' && page.next.startsWith('/v1/') ? page.next : null;
  }
  return all;
}

// ---- the event stream of a job ----------------------------------------------------------
// Event ids are fixed by the job (1 queued, 2 running, 2+e progress of epoch e, 3+E final), so
// after any reconnect the events already seen are skipped by id and nothing is drawn twice.
// Without a key: EventSource (it resends Last-Event-ID itself). With a key: a short-lived
// stream token (POST /v1/jobs/{id}/events/token) in ?access_token=, as EventSource cannot send
// headers; on a server without that route, a fetch() stream with the Authorization and
// Last-Event-ID headers. Returns { close() }.
export function follow(id, { onEvent, onState }) {
  let last = 0, closed = false, es = null, ctrl = null, retry = 0;
  const path = `/v1/jobs/${encodeURIComponent(id)}/events`;

  const deliver = (evId, type, data) => {
    const n = Number(evId);
    if (Number.isFinite(n) && n <= last) return;
    if (Number.isFinite(n)) last = n;
    let obj;
    try { obj = JSON.parse(data); } catch { return; }
    onEvent(type, obj, n);
    if (type === 'status' && ['succeeded', 'failed', 'cancelled'].includes(obj.status)) finish();
  };
  const finish = () => {
    closed = true;
    if (es) es.close();
    if (ctrl) ctrl.abort();
    onState('ended');
  };
  // Reconnect after a growing pause, unless the job is gone (deleted: its stream 404s).
  const again = () => {
    if (closed) return;
    onState('reconnecting');
    retry = Math.min(retry + 1, 5);
    setTimeout(async () => {
      if (retry > 1 && await api('GET', `/v1/jobs/${encodeURIComponent(id)}`).then(() => false, (e) => e.status === 404)) {
        closed = true;
        onState('gone');
        return;
      }
      open();
    }, 500 * retry);
  };

  const openSource = (url) => {
    es = new EventSource(url);
    es.onopen = () => { retry = 0; onState('live'); };
    for (const t of ['status', 'progress']) es.addEventListener(t, (e) => deliver(e.lastEventId, t, e.data));
    es.onerror = () => {
      if (closed) return;
      // without a token the browser reconnects by itself (sending Last-Event-ID); a token may
      // have expired, so with one, open a new source with a new token
      if (key.get() || es.readyState === EventSource.CLOSED) { es.close(); again(); }
      else onState('reconnecting');
    };
  };

  const openFetch = async () => {
    ctrl = new AbortController();
    try {
      const h = headers({ Accept: 'text/event-stream' });
      if (last) h['Last-Event-ID'] = String(last);
      const res = await fetch(path, { headers: h, signal: ctrl.signal });
      if (!res.ok) throw new ApiError(res.status, `events: HTTP ${res.status}`);
      onState('live');
      retry = 0;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n?/g, '\n');
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let evId = '', type = 'message', data = '';
          for (const line of block.split('\n')) {
            const m = /^([a-z]+): ?(.*)$/.exec(line);
            if (!m) continue;
            if (m[1] === 'id') evId = m[2];
            else if (m[1] === 'event') type = m[2];
            else if (m[1] === 'data') data += (data ? '\n' : '') + m[2];
          }
          if (data) deliver(evId, type, data);
        }
      }
    } catch (e) {
      if (closed) return;
      if (e instanceof ApiError && e.status === 404) { onState('gone'); closed = true; return; }
    }
    again();
  };

  let tokens = true; // does the server hand out stream tokens?
  async function open() {
    if (closed) return;
    if (!key.get()) return openSource(path);
    if (tokens) {
      try {
        const t = await api('POST', `${path}/token`);
        return openSource(`${path}?access_token=${encodeURIComponent(t.token)}`);
      } catch (e) {
        if (!(e instanceof ApiError)) return again();
        if (e.route && e.status === 404) { onState('gone'); closed = true; return; }
        if (e.route) return again();
        tokens = false;
      }
    }
    return openFetch();
  }
  open();
  return { close() { closed = true; if (es) es.close(); if (ctrl) ctrl.abort(); } };
}
