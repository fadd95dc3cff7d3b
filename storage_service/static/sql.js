// SQL Studio: catalog tree, editor, run/cancel, paged results, inline errors, downloads.
// Same sign-in as the Object Storage page: the API key lives in sessionStorage (this tab only).
"use strict";

const KEY_NAME = "lakewire.apiKey";
const HISTORY_NAME = "lakewire.sqlHistory";
const HISTORY_MAX = 30;
const PAGE_ROWS = 100;
const $ = (id) => document.getElementById(id);

const state = { queryId: null, running: false, pages: [], pageIndex: 0, rowCount: 0 };

class ApiError extends Error {
  constructor(status, body) {
    super(body.detail || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY_NAME) || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (resp.status === 401) {
    sessionStorage.removeItem(KEY_NAME);
    showLogin("The API key was not accepted.");
    throw new ApiError(401, { detail: "signed out" });
  }
  const data = resp.headers.get("content-type")?.includes("json") ? await resp.json() : {};
  if (!resp.ok) throw new ApiError(resp.status, typeof data.detail === "string" ? data : { detail: JSON.stringify(data.detail) });
  return data;
}

function showLogin(message) {
  $("studio").hidden = true;
  $("signout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("login-key").focus();
}

function showStudio() {
  $("login").hidden = true;
  $("studio").hidden = false;
  $("signout").hidden = false;
  loadCatalog();
  renderHistory();
  $("editor").focus();
  // Opened from the Object Storage page's "Query" button: run the statement it carries.
  const params = new URLSearchParams(location.search);
  const q = params.get("q");
  if (q) {
    history.replaceState(null, "", location.pathname);
    setEditorAndRun(q);
  }
}

// -- catalog tree ---------------------------------------------------------------------------
function quoteIdent(name) {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

async function loadCatalog() {
  const tree = $("catalog-tree");
  tree.textContent = "Loading…";
  try {
    const data = await api("GET", "/api/sql/catalog");
    $("catalog-engine").textContent = `Engine: ${data.engine}`;
    tree.textContent = "";
    for (const cat of data.catalogs) {
      const catEl = el("details", { open: true, "data-catalog": cat.name });
      catEl.append(el("summary", {}, cat.name));
      // A catalog that could not be listed (a bad hive_tables.yaml) says why; the others load.
      if (cat.error) catEl.append(el("div", { class: "catalog-error" }, cat.error));
      for (const schema of cat.schemas) {
        const schemaEl = el("details", { "data-schema": `${cat.name}.${schema.name}` });
        schemaEl.append(el("summary", {}, schema.name));
        for (const table of schema.tables) {
          const name = `${cat.name}.${quoteIdent(schema.name)}.${quoteIdent(table.name)}`;
          const tableEl = el("details", { "data-table": `${cat.name}.${schema.name}.${table.name}` });
          const summary = el("summary", { class: "table-name", title: "Double-click: query it" }, table.name);
          summary.addEventListener("dblclick", (ev) => {
            ev.preventDefault();
            setEditorAndRun(`SELECT * FROM ${name}`);
          });
          tableEl.append(summary);
          const query = el("button", { class: "btn link small", "data-query": name }, "Query");
          query.addEventListener("click", () => setEditorAndRun(`SELECT * FROM ${name}`));
          const historyName = `${cat.name}.${quoteIdent(schema.name)}."${table.name.replace(/"/g, '""')}$history"`;
          const history = el("button", { class: "btn link small", "data-history": name }, "History");
          history.addEventListener("click", () =>
            setEditorAndRun(`SELECT * FROM ${historyName} ORDER BY timestamp DESC`));
          // hive tables are plain files: no versions, so no history.
          tableEl.append(...(cat.name === "hive" ? [query] : [query, history]));
          for (const col of table.columns) {
            const c = el("div", { class: "col" });
            c.append(el("b", {}, col.name), ` ${col.type}`);
            tableEl.append(c);
          }
          schemaEl.append(tableEl);
        }
        catEl.append(schemaEl);
      }
      tree.append(catEl);
    }
  } catch (err) {
    if (err.status !== 401) tree.textContent = `Could not load the catalog: ${err.message}`;
  }
}

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, v);
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

function setEditorAndRun(statement) {
  $("editor").value = statement;
  highlight();
  run();
}

// -- SQL highlighting: a <pre> under a transparent textarea -------------------------------------
const SQL_KEYWORDS = new Set(("select from where group by order having limit offset join left right " +
  "full inner outer cross on using as and or not in is null like between case when then else end " +
  "with union all distinct except intersect values show describe catalogs schemas tables columns " +
  "for version timestamp of asc desc true false cast count sum avg min max over partition " +
  "exists interval date").split(" "));
const TOKEN_RE = /(--[^\n]*|\/\*[\s\S]*?\*\/)|('(?:[^']|'')*'?)|("(?:[^"]|"")*"?)|(\b\d+(?:\.\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)/g;

function escapeHtml(text) {
  return text.replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]);
}

function highlight() {
  const text = $("editor").value;
  let html = "";
  let last = 0;
  for (const m of text.matchAll(TOKEN_RE)) {
    html += escapeHtml(text.slice(last, m.index));
    const [tok, comment, str, ident, num, word] = m;
    let cls = "";
    if (comment) cls = "tok-comment";
    else if (str) cls = "tok-string";
    else if (ident) cls = "tok-ident";
    else if (num) cls = "tok-number";
    else if (word && SQL_KEYWORDS.has(word.toLowerCase())) cls = "tok-keyword";
    html += cls ? `<span class="${cls}">${escapeHtml(tok)}</span>` : escapeHtml(tok);
    last = m.index + tok.length;
  }
  html += escapeHtml(text.slice(last));
  $("editor-highlight").innerHTML = html + "\n";
  syncScroll();
}

function syncScroll() {
  $("editor-highlight").scrollTop = $("editor").scrollTop;
  $("editor-highlight").scrollLeft = $("editor").scrollLeft;
}

// -- running ----------------------------------------------------------------------------------
function newQueryId() {
  if (crypto.randomUUID) return crypto.randomUUID().replace(/-/g, "");
  return Math.random().toString(36).slice(2) + Date.now().toString(36);
}

function setRunning(on) {
  state.running = on;
  $("run").disabled = on;
  $("cancel").disabled = !on;
  if (on) $("result-status").textContent = "Running…";
}

async function run() {
  if (state.running) return;
  const statement = $("editor").value.trim();
  if (!statement) return;
  hideError();
  addHistory(statement);
  state.queryId = newQueryId();
  setRunning(true);
  const started = performance.now();
  try {
    const page = await api("POST", "/api/sql", { statement, limit: PAGE_ROWS, query_id: state.queryId });
    state.pages = [page];
    state.pageIndex = 0;
    state.rowCount = page.row_count;
    renderPage();
    const total = page.truncated ? `${page.row_count}+ rows (cut at ${page.row_count})` : `${page.row_count} rows`;
    $("result-status").textContent = `${total} · ${page.elapsed_ms} ms`;
    $("download-csv").disabled = false;
    $("download-parquet").disabled = false;
  } catch (err) {
    const ms = Math.round(performance.now() - started);
    $("result-status").textContent = err.status === 409 ? `Cancelled after ${ms} ms` : `Failed after ${ms} ms`;
    if (err.status !== 401) showError(err, statement);
  } finally {
    setRunning(false);
  }
}

async function cancel() {
  if (!state.running || !state.queryId) return;
  try {
    await api("DELETE", `/api/sql/${encodeURIComponent(state.queryId)}`);
  } catch (err) {
    /* the query may just have finished */
  }
}

function showError(err, statement) {
  const box = $("sql-error");
  const { line, column } = err.body || {};
  let text = err.message;
  if (line) {
    const src = statement.split("\n")[line - 1] ?? "";
    text += `\n\nline ${line}${column ? `, column ${column}` : ""}:\n${src}`;
    if (column) text += `\n${" ".repeat(Math.max(0, column - 1))}^`;
    box.dataset.line = String(line);
    selectLine(line);
  } else {
    delete box.dataset.line;
  }
  box.textContent = text;
  box.hidden = false;
}

function selectLine(line) {
  const editor = $("editor");
  const lines = editor.value.split("\n");
  let start = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
  const end = start + (lines[line - 1] ?? "").length;
  editor.setSelectionRange(start, end);
}

function hideError() {
  $("sql-error").hidden = true;
  $("sql-error").textContent = "";
}

// -- the grid -----------------------------------------------------------------------------
function renderPage() {
  const page = state.pages[state.pageIndex];
  const grid = $("grid");
  grid.textContent = "";
  const head = el("thead");
  const tr = el("tr");
  for (const col of page.columns) {
    const th = el("th", {}, col.name);
    th.append(el("small", {}, col.type));
    tr.append(th);
  }
  head.append(tr);
  const body = el("tbody");
  for (const row of page.rows) {
    const r = el("tr");
    for (const v of row) {
      if (v === null) r.append(el("td", { class: "null" }, "NULL"));
      else r.append(el("td", {}, typeof v === "object" ? JSON.stringify(v) : String(v)));
    }
    body.append(r);
  }
  grid.append(head, body);
  const first = page.rows.length ? page.offset + 1 : 0;
  $("page-info").textContent = `Rows ${first}–${page.offset + page.rows.length} of ${state.rowCount}`;
  $("prev").disabled = state.pageIndex === 0;
  $("next").disabled = !page.next_page_token && state.pageIndex === state.pages.length - 1;
}

async function nextPage() {
  if (state.pageIndex < state.pages.length - 1) {
    state.pageIndex += 1;
    return renderPage();
  }
  const token = state.pages[state.pageIndex].next_page_token;
  if (!token) return;
  try {
    const page = await api("POST", "/api/sql", { page_token: token, limit: PAGE_ROWS });
    state.pages.push(page);
    state.pageIndex += 1;
    renderPage();
  } catch (err) {
    if (err.status !== 401) showError(err, "");
  }
}

function prevPage() {
  if (state.pageIndex > 0) {
    state.pageIndex -= 1;
    renderPage();
  }
}

async function download(format) {
  if (!state.pages.length) return;
  const qid = state.pages[0].query_id;
  const resp = await fetch(`/api/sql/${encodeURIComponent(qid)}/download?format=${format}`, {
    headers: { Authorization: `Bearer ${sessionStorage.getItem(KEY_NAME) || ""}` },
  });
  if (!resp.ok) {
    showError(new ApiError(resp.status, await resp.json().catch(() => ({}))), "");
    return;
  }
  const url = URL.createObjectURL(await resp.blob());
  const a = el("a", { href: url, download: `result-${qid}.${format}` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// -- history (this browser only) ----------------------------------------------------------------
function readHistory() {
  try {
    return JSON.parse(localStorage.getItem(HISTORY_NAME) || "[]");
  } catch {
    return [];
  }
}

function addHistory(statement) {
  const items = readHistory().filter((s) => s !== statement);
  items.unshift(statement);
  localStorage.setItem(HISTORY_NAME, JSON.stringify(items.slice(0, HISTORY_MAX)));
  renderHistory();
}

function renderHistory() {
  const list = $("history");
  list.textContent = "";
  for (const statement of readHistory()) {
    const li = el("li", { title: statement }, statement.replace(/\s+/g, " "));
    li.addEventListener("click", () => { $("editor").value = statement; highlight(); $("editor").focus(); });
    list.append(li);
  }
}

// -- wiring ---------------------------------------------------------------------------------
$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(KEY_NAME, $("login-key").value.trim());
  try {
    await api("GET", "/api/sql/catalog");
    showStudio();
  } catch (err) {
    if (err.status !== 401) showLogin(err.message);
  }
});
$("signout").addEventListener("click", () => { sessionStorage.removeItem(KEY_NAME); showLogin(); });
$("run").addEventListener("click", run);
$("cancel").addEventListener("click", cancel);
$("next").addEventListener("click", nextPage);
$("prev").addEventListener("click", prevPage);
$("catalog-refresh").addEventListener("click", loadCatalog);
$("download-csv").addEventListener("click", () => download("csv"));
$("download-parquet").addEventListener("click", () => download("parquet"));
$("editor").addEventListener("input", highlight);
$("editor").addEventListener("scroll", syncScroll);
$("editor").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
    ev.preventDefault();
    run();
  }
});

highlight();
if (sessionStorage.getItem(KEY_NAME)) showStudio();
else showLogin();
