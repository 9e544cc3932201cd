// docs.js — GET /docs: fetches this server's /openapi.yaml and renders it as a readable API
// reference (operations by tag, their parameters, bodies, answers and examples; then the
// schemas). The YAML reader covers what api/openapi.yaml uses: block mappings and sequences,
// plain (also multi-line), quoted and literal (|) scalars, and flow collections ({…}, […]),
// also spanning lines. Everything is put into the page with textContent / createElement,
// never as HTML, so nothing in the document can inject markup. Runs under a CSP that allows
// only this server's own scripts, styles and fetches.
"use strict";

// ------------------------------------------------------------------ the YAML subset

function yamlScalar(s) {
  s = s.trim();
  if (s === "" || s === "~" || s === "null") return null;
  if (s[0] === '"') return JSON.parse(s);
  if (s[0] === "'") return s.slice(1, -1).replace(/''/g, "'");
  if (s === "true") return true;
  if (s === "false") return false;
  if (/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(s)) return Number(s);
  return s;
}

// A flow collection ({a: 1, b: [x, "y"]}) from text.
function yamlFlow(text) {
  let p = 0;
  const ws = () => { while (p < text.length && /\s/.test(text[p])) p++; };
  function quoted() {
    const q = text[p];
    let e = p + 1;
    while (e < text.length && text[e] !== q) e += text[e] === "\\" && q === '"' ? 2 : 1;
    const s = text.slice(p, e + 1);
    p = e + 1;
    return yamlScalar(s);
  }
  function plain(stops) {
    const b = p;
    while (p < text.length && !stops.includes(text[p])) p++;
    return yamlScalar(text.slice(b, p));
  }
  function value(stops) {
    ws();
    if (text[p] === "{") return map();
    if (text[p] === "[") return seq();
    if (text[p] === '"' || text[p] === "'") return quoted();
    return plain(stops);
  }
  function map() {
    const o = {};
    p++;
    for (;;) {
      ws();
      if (text[p] === "}") { p++; return o; }
      const k = text[p] === '"' || text[p] === "'" ? quoted() : plain(":}");
      ws();
      if (text[p] === ":") p++;
      o[String(k)] = value(",}");
      ws();
      if (text[p] === ",") p++;
      else if (text[p] === "}") { p++; return o; }
      else if (p >= text.length) return o;
    }
  }
  function seq() {
    const a = [];
    p++;
    for (;;) {
      ws();
      if (text[p] === "]") { p++; return a; }
      a.push(value(",]"));
      ws();
      if (text[p] === ",") p++;
      else if (text[p] === "]") { p++; return a; }
      else if (p >= text.length) return a;
    }
  }
  return value(",");
}

// Whether the brackets of a flow text are closed (outside quotes).
function flowClosed(text) {
  let depth = 0, q = null;
  for (let k = 0; k < text.length; k++) {
    const c = text[k];
    if (q) { if (c === "\\" && q === '"') k++; else if (c === q) q = null; continue; }
    if (c === '"' || c === "'") q = c;
    else if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") depth--;
  }
  return depth <= 0;
}

// [key, rest] of a "key: value" line (key plain or quoted), or null.
function yamlKey(t) {
  let m = /^"((?:[^"\\]|\\.)*)":(?:\s+(.*)|$)/.exec(t) || /^'([^']*)':(?:\s+(.*)|$)/.exec(t);
  if (m) return [m[1], (m[2] || "").trim()];
  m = /^([^\s"'{[#,][^:]*?):(?:\s+(.*)|$)/.exec(t);
  return m ? [m[1], (m[2] || "").trim()] : null;
}

function parseYaml(src) {
  const lines = src.replace(/\r/g, "").split("\n");
  let i = 0;
  const indent = (l) => l.length - l.trimStart().length;
  const blank = (l) => l.trim() === "" || l.trim()[0] === "#";
  const skip = () => { while (i < lines.length && blank(lines[i])) i++; };
  const isItem = (t) => t === "-" || t.startsWith("- ");

  function block(ind) {
    skip();
    if (i >= lines.length) return null;
    return isItem(lines[i].trim()) ? seq(ind) : map(ind);
  }
  function literal(ind, style) {
    const out = [];
    let at = -1;
    while (i < lines.length && (lines[i].trim() === "" || indent(lines[i]) > ind)) {
      if (at < 0 && lines[i].trim() !== "") at = indent(lines[i]);
      out.push(lines[i].slice(at < 0 ? 0 : at));
      i++;
    }
    while (out.length && out[out.length - 1].trim() === "") out.pop();
    const text = style[0] === ">" ? out.join(" ").replace(/ {2,}/g, " ") : out.join("\n");
    return style.endsWith("-") ? text : text + "\n";
  }
  function value(rest, ind) {
    if (rest === "") {
      skip();
      if (i < lines.length) {
        const li = indent(lines[i]);
        if (li > ind) return block(li);
        if (li === ind && isItem(lines[i].trim())) return seq(ind);
      }
      return null;
    }
    if (/^[|>][-+]?$/.test(rest)) return literal(ind, rest);
    if (rest[0] === "{" || rest[0] === "[") {
      let text = rest;
      while (!flowClosed(text) && i < lines.length) text += "\n" + lines[i++].trim();
      return yamlFlow(text);
    }
    let text = rest;
    while (i < lines.length && !blank(lines[i]) && indent(lines[i]) > ind)
      text += " " + lines[i++].trim();
    return yamlScalar(text);
  }
  function map(ind) {
    const o = {};
    for (;;) {
      skip();
      if (i >= lines.length || indent(lines[i]) < ind) return o;
      const t = lines[i].trim();
      if (indent(lines[i]) > ind) { i++; continue; }
      if (isItem(t)) return o;
      const kv = yamlKey(t);
      i++;
      if (kv) o[kv[0]] = value(kv[1], ind);
    }
  }
  function seq(ind) {
    const a = [];
    for (;;) {
      skip();
      if (i >= lines.length || indent(lines[i]) !== ind || !isItem(lines[i].trim())) return a;
      const rest = lines[i].trim().slice(1).trim();
      if (rest === "") { i++; a.push(block(indent(lines[i] || ""))); continue; }
      if (!/^["'{[]/.test(rest) && yamlKey(rest)) {
        lines[i] = " ".repeat(ind + 2) + rest; // the item's mapping starts on the dash line
        a.push(map(ind + 2));
      } else {
        i++;
        a.push(value(rest, ind));
      }
    }
  }
  return block(0);
}

// ------------------------------------------------------------------ rendering

const METHODS = ["get", "post", "put", "patch", "delete"];

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) if (k !== null && k !== undefined)
    e.append(typeof k === "string" ? document.createTextNode(k) : k);
  return e;
}

// Text with `code` spans and **bold** as nodes (never HTML).
function inline(text) {
  const frag = document.createDocumentFragment();
  const re = /`([^`]+)`|\*\*([^*]+)\*\*/g;
  let at = 0, m;
  while ((m = re.exec(text))) {
    frag.append(text.slice(at, m.index));
    frag.append(m[1] !== undefined ? el("code", {}, m[1]) : el("strong", {}, m[2]));
    at = m.index + m[0].length;
  }
  frag.append(text.slice(at));
  return frag;
}

// A description: paragraphs, and "- " lists (continuation lines indented). Each paragraph or
// item is joined into one line first, so a `code` span may cross a line break.
function prose(text) {
  const box = el("div", {class: "prose"});
  if (!text) return box;
  for (const para of String(text).split(/\n\s*\n/)) {
    const lines = para.split("\n");
    if (!lines.some((l) => /^\s*- /.test(l))) {
      box.append(el("p", {}, inline(lines.map((l) => l.trim()).join(" "))));
      continue;
    }
    const pre = [], items = [];
    for (const l of lines) {
      if (/^\s*- /.test(l)) items.push(l.replace(/^\s*- /, ""));
      else if (items.length) items[items.length - 1] += " " + l.trim();
      else pre.push(l.trim());
    }
    if (pre.length) box.append(el("p", {}, inline(pre.join(" "))));
    const list = el("ul");
    for (const it of items) list.append(el("li", {}, inline(it)));
    box.append(list);
  }
  return box;
}

function refName(ref) {
  return String(ref).split("/").pop();
}

function resolve(doc, obj) {
  for (let k = 0; obj && obj.$ref && k < 8; k++) {
    const path = obj.$ref.replace(/^#\//, "").split("/");
    obj = path.reduce((o, p) => (o ? o[p] : undefined), doc);
  }
  return obj || {};
}

// A schema's type as a node: a link to a named schema, "array of …", the type's names.
function typeOf(schema) {
  if (!schema) return document.createTextNode("");
  if (schema.$ref) return el("a", {href: "#schema-" + refName(schema.$ref)}, refName(schema.$ref));
  const alts = schema.oneOf || schema.anyOf;
  if (alts) {
    const f = document.createDocumentFragment();
    alts.forEach((s, k) => { if (k) f.append(" | "); f.append(typeOf(s)); });
    return f;
  }
  if (schema.type === "array" || (Array.isArray(schema.type) && schema.type.includes("array") && schema.items)) {
    const f = document.createDocumentFragment();
    f.append("array of ", typeOf(schema.items));
    return f;
  }
  let t = Array.isArray(schema.type) ? schema.type.join(" | ") : schema.type || "any";
  if (schema.format) t += " (" + schema.format + ")";
  if (schema.const !== undefined) t += " = " + JSON.stringify(schema.const);
  if (schema.enum) t += ": " + schema.enum.map((v) => JSON.stringify(v)).join(", ");
  return document.createTextNode(t);
}

function example(value) {
  return el("pre", {}, typeof value === "string" ? value : JSON.stringify(value, null, 2));
}

function paramTable(doc, params) {
  const t = el("table", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "in"),
                                   el("th", {}, "type"), el("th", {}, "description")));
  for (const p0 of params) {
    const p = resolve(doc, p0);
    t.append(el("tr", {}, el("td", {}, el("code", {}, p.name + (p.required ? "" : "?"))),
                el("td", {}, p.in || ""), el("td", {}, typeOf(p.schema)),
                el("td", {}, prose(p.description))));
  }
  return t;
}

function content(doc, box, c) {
  for (const [type, media] of Object.entries(c || {})) {
    box.append(el("p", {class: "muted"}, el("code", {}, type), " ", typeOf(media.schema)));
    if (media.example !== undefined) box.append(example(media.example));
  }
}

function operation(doc, path, method, op, shared) {
  const id = "op-" + (op.operationId || method + path);
  const sec = el("section", {class: "op", id});
  sec.append(el("h3", {class: "op-title"}, el("span", {class: "method " + method},
                method.toUpperCase()), path));
  if (op.summary) sec.append(el("p", {class: "summary"}, op.summary));
  if (Array.isArray(op.security) && op.security.length === 0)
    sec.append(el("p", {class: "muted"}, "No API key needed."));
  sec.append(prose(op.description));
  const params = (shared || []).concat(op.parameters || []);
  if (params.length) sec.append(el("h4", {}, "Parameters"), paramTable(doc, params));
  if (op.requestBody) {
    const rb = resolve(doc, op.requestBody);
    sec.append(el("h4", {}, "Request body"), prose(rb.description));
    content(doc, sec, rb.content);
  }
  sec.append(el("h4", {}, "Responses"));
  for (const [code, r0] of Object.entries(op.responses || {})) {
    const r = resolve(doc, r0);
    const row = el("div", {class: "response"});
    row.append(el("p", {}, el("span", {class: "status"}, code), " ", inline(String(r.description || "").split("\n")[0])));
    const more = String(r.description || "").split("\n").slice(1).join("\n");
    if (more.trim()) row.append(prose(more));
    if (r.headers) row.append(el("p", {class: "muted"}, "Headers: " + Object.keys(r.headers).join(", ")));
    content(doc, row, r.content);
    sec.append(row);
  }
  return sec;
}

function schemaSection(doc, name, s) {
  const sec = el("section", {class: "schema", id: "schema-" + name});
  sec.append(el("h3", {}, name), el("p", {class: "muted"}, typeOf(Object.assign({}, s, {$ref: undefined}))));
  sec.append(prose(s.description));
  const props = s.properties || {};
  if (Object.keys(props).length) {
    const req = new Set(s.required || []);
    const t = el("table", {}, el("tr", {}, el("th", {}, "field"), el("th", {}, "type"),
                                     el("th", {}, "description")));
    for (const [k, p] of Object.entries(props))
      t.append(el("tr", {}, el("td", {}, el("code", {}, k + (req.has(k) ? "" : "?"))),
                  el("td", {}, typeOf(p)), el("td", {}, prose(p && p.description))));
    sec.append(t);
  }
  if (s.example !== undefined) sec.append(example(s.example));
  return sec;
}

function render(doc) {
  const main = document.getElementById("main"), nav = document.getElementById("nav");
  const info = doc.info || {};
  document.title = (info.title || "API") + " " + (info.version || "") + " reference";
  document.querySelector("header h1").textContent = (info.title || "API") + " " + (info.version || "");
  document.getElementById("status").textContent = info.summary || "";
  main.append(el("h2", {id: "overview"}, "Overview"), prose(info.description));
  nav.append(el("a", {href: "#overview"}, "Overview"));

  const byTag = new Map();
  for (const t of doc.tags || []) byTag.set(t.name, {tag: t, ops: []});
  for (const [path, item] of Object.entries(doc.paths || {}))
    for (const m of METHODS) {
      if (!item[m]) continue;
      const tag = (item[m].tags || ["other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, {tag: {name: tag}, ops: []});
      byTag.get(tag).ops.push([path, m, item[m], item.parameters]);
    }
  for (const {tag, ops} of byTag.values()) {
    if (!ops.length) continue;
    main.append(el("h2", {id: "tag-" + tag.name}, tag.name), prose(tag.description));
    nav.append(el("h3", {}, tag.name));
    for (const [path, m, op, shared] of ops) {
      const sec = operation(doc, path, m, op, shared);
      main.append(sec);
      nav.append(el("a", {href: "#" + sec.id}, m.toUpperCase() + " " + path));
    }
  }
  const schemas = ((doc.components || {}).schemas) || {};
  main.append(el("h2", {id: "schemas"}, "Schemas"));
  nav.append(el("h3", {}, "schemas"));
  for (const [name, s] of Object.entries(schemas)) {
    main.append(schemaSection(doc, name, s || {}));
    nav.append(el("a", {href: "#schema-" + name}, name));
  }
  document.body.setAttribute("data-rendered", String(main.querySelectorAll("section.op").length));
}

if (typeof document !== "undefined") {
  fetch("/openapi.yaml")
    .then((r) => { if (!r.ok) throw new Error("GET /openapi.yaml: " + r.status); return r.text(); })
    .then((text) => render(parseYaml(text)))
    .catch((e) => { document.getElementById("status").textContent = "Could not render the reference: " + e.message; });
}
if (typeof module !== "undefined") module.exports = {parseYaml};
