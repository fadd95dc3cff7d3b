// The Object Storage page: plain JS over the service's API, no build step.
// The API key lives in sessionStorage (this tab only); the served HTML never contains it.
"use strict";

const KEY_NAME = "lakewire.apiKey";
const $ = (id) => document.getElementById(id);
// `view` counts navigations, so a slow response for a page we already left is dropped.
const state = { bucket: null, prefix: "", cursor: null, buckets: [], view: 0, me: null };

// ---------------------------------------------------------------- helpers
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

// Static inline icons (no icon font: Debian's Chromium may lack emoji glyphs).
const ICONS = {
  bucket: '<svg viewBox="0 0 24 24" width="18" height="18" fill="none" stroke="currentColor" stroke-width="2"><ellipse cx="12" cy="5" rx="8" ry="3"/><path d="M4 5v14c0 1.7 3.6 3 8 3s8-1.3 8-3V5"/><path d="M4 12c0 1.7 3.6 3 8 3s8-1.3 8-3"/></svg>',
  folder: '<svg viewBox="0 0 24 24" width="18" height="18" fill="#fbbf24" stroke="#d97706" stroke-width="1.5"><path d="M3 6a2 2 0 0 1 2-2h4l2 2h8a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2z"/></svg>',
  file: '<svg viewBox="0 0 24 24" width="18" height="18" fill="none" stroke="#64748b" stroke-width="1.8"><path d="M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8z"/><path d="M14 3v5h5"/></svg>',
  lock: '<svg viewBox="0 0 24 24" width="12" height="12" fill="none" stroke="currentColor" stroke-width="2.2"><rect x="5" y="11" width="14" height="10" rx="2"/><path d="M8 11V7a4 4 0 0 1 8 0v4"/></svg>',
  bolt: '<svg viewBox="0 0 24 24" width="12" height="12" fill="currentColor"><path d="M13 2 4 14h7l-1 8 9-12h-7z"/></svg>',
};
function icon(name, cls = "icon") {
  const span = el("span", { class: cls, "aria-hidden": "true" });
  span.innerHTML = ICONS[name];
  return span;
}

function humanSize(bytes) {
  if (bytes === null || bytes === undefined) return "–";
  const units = ["B", "KB", "MB", "GB", "TB", "PB"];
  let i = 0;
  let n = bytes;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

function ago(iso) {
  if (!iso) return "never";
  const s = (Date.now() - new Date(iso).getTime()) / 1000;
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  if (s < 86400 * 30) return `${Math.floor(s / 86400)} d ago`;
  return new Date(iso).toLocaleDateString();
}

function toast(message, bad = false) {
  const t = el("div", { class: bad ? "toast bad" : "toast", role: "status" }, message);
  $("toasts").append(t);
  setTimeout(() => t.remove(), 4000);
}

class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

function detailText(detail) {
  return lifecycleRefusal(detail).replaceAll("\n", "; ");
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY_NAME) || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (resp.status === 401) { signOut(); throw new ApiError(401, "Please sign in again"); }
  if (!resp.ok) {
    let detail = resp.statusText;
    try { detail = detailText((await resp.json()).detail); } catch (e) { /* not JSON */ }
    throw new ApiError(resp.status, detail);
  }
  return resp.status === 204 ? null : resp.json();
}

const enc = (s) => encodeURIComponent(s);
const objectPath = (bucket, key) =>
  `/api/buckets/${enc(bucket)}/objects/${key.split("/").map(enc).join("/")}`;

// ---------------------------------------------------------------- routing
async function route() {
  const hash = decodeURIComponent(location.hash.slice(1));
  if (!sessionStorage.getItem(KEY_NAME)) return showLogin();
  $("login").hidden = true;
  $("signout").hidden = false;
  if (!state.me) await loadMe();
  const m = hash.match(/^\/b\/([^/]+)\/?(.*)$/);
  if (m) return showBucket(m[1], m[2]);
  return showBuckets();
}

function go(bucket, prefix = "") {
  location.hash = bucket ? `/b/${bucket}/${prefix}` : "/";
}

function crumbs(parts) {
  const nav = $("crumbs");
  nav.replaceChildren();
  parts.forEach(([label, href], i) => {
    if (i) nav.append(el("span", { class: "sep" }, "/"));
    nav.append(href ? el("a", { href }, label) : el("span", {}, label));
  });
}

// ---------------------------------------------------------------- login
function showLogin() {
  for (const id of ["buckets-view", "bucket-view"]) $(id).hidden = true;
  $("signout").hidden = true;
  $("login").hidden = false;
  crumbs([["Object Storage"]]);
  $("login-key").focus();
}

function signOut() {
  sessionStorage.removeItem(KEY_NAME);
  state.me = null;
  $("whoami").textContent = "";
  showLogin();
}

// ---------------------------------------------------------------- who is signed in
// The page shows what the key may do; the API refuses the rest anyway (403).
async function loadMe() {
  state.me = await api("GET", "/api/whoami");
  $("whoami").textContent = state.me.admin ? "admin" : `tenant ${state.me.principal}`;
  for (const node of document.querySelectorAll(".admin-only")) node.hidden = !state.me.admin;
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(KEY_NAME, $("login-key").value.trim());
  try {
    await api("GET", "/api/summary");
    $("login-key").value = "";
    $("login-error").textContent = "";
    route();
  } catch (e) {
    sessionStorage.removeItem(KEY_NAME);
    $("login-error").textContent = e.status === 401 ? "That key is not valid." : e.message;
  }
});
$("signout").addEventListener("click", signOut);

// ---------------------------------------------------------------- bucket list
async function showBuckets() {
  $("bucket-view").hidden = true;
  $("buckets-view").hidden = false;
  crumbs([["Object Storage"]]);
  await refreshAll();
}

async function refreshAll() {
  await refreshBuckets();
  if (state.me?.admin) await Promise.all([refreshTenants(), refreshAudit()]);
}

async function refreshBuckets() {
  const [summary, buckets] = await Promise.all([
    api("GET", "/api/summary"),
    api("GET", "/api/buckets").catch(() => []),
  ]);
  $("total-buckets").textContent = summary.total_buckets;
  const status = $("status");
  status.textContent = summary.reason ? `${summary.status}: ${summary.reason}` : summary.status;
  status.title = summary.reason || "";
  status.className = `status ${summary.status.toLowerCase()}`;
  $("backend").textContent = summary.backend === "s3" ? "S3" : "Local disk";
  state.buckets = buckets;
  renderCards(buckets);
}

function encryptionText(e) {
  if (!e || e.supported === false) return "Not encrypted";
  return e.enabled ? `SSE ${e.algorithm || "on"}` : "Not encrypted";
}

function renderCards(buckets) {
  const cards = $("cards");
  cards.replaceChildren();
  if (!buckets.length) {
    cards.append(el("div", { class: "empty-cards" }, "No buckets yet. Create one to start."));
    return;
  }
  for (const b of buckets) {
    const badges = el("div", { class: "badges" });
    if (b.versioning && b.versioning !== "Unsupported") {
      badges.append(el("span", { class: b.versioning === "Enabled" ? "badge on" : "badge" },
        `Versioning ${b.versioning === "Off" ? "off" : b.versioning.toLowerCase()}`));
    }
    if (b.notifications?.enabled) {
      badges.append(el("span", { class: "badge on" }, icon("bolt", "badge-icon"),
        `Events on · ${b.notifications.rules} rule${b.notifications.rules === 1 ? "" : "s"}`));
    } else {
      badges.append(el("span", { class: "badge" }, "Events off"));
    }
    if (b.rename) badges.append(el("span", { class: "badge warn" }, `Renaming → ${b.rename.target}`));
    if (b.routes?.length) {
      badges.append(el("span", { class: "badge on routes", title: "Routes that turn this bucket's objects into table rows" },
        `Routes: ${b.routes.join(", ")}`));
    }
    if (b.unrouted?.objects) {
      const n = b.unrouted.objects;
      badges.append(el("span", { class: "badge warn unrouted",
        title: `No route takes these objects, so no table gets them (e.g. ${b.unrouted.examples.join(", ")}); see 'lakewire routes explain'` },
        `${n.toLocaleString()} unrouted object${n === 1 ? "" : "s"}`));
    }

    const card = el("article", { class: "card", "data-bucket": b.name, tabindex: "0" },
      el("div", { class: "card-head" },
        icon("bucket", "bucket-icon"),
        el("div", { class: "card-name" }, b.name)),
      el("dl", { class: "card-stats" },
        el("div", {}, el("dt", {}, "Objects"), el("dd", { class: "objects" }, b.objects.toLocaleString())),
        el("div", {}, el("dt", {}, "Size"), el("dd", { class: "size" }, humanSize(b.size))),
        el("div", {}, el("dt", {}, "Last updated"),
          el("dd", { title: b.last_updated || "" }, ago(b.last_updated))),
        el("div", {}, el("dt", {}, "Encryption"),
          el("dd", { class: b.encryption?.enabled ? "enc on" : "enc" },
            b.encryption?.enabled ? icon("lock", "badge-icon") : null,
            encryptionText(b.encryption)))),
      badges,
      state.me?.admin ? el("div", { class: "card-actions" },
        el("button", { class: "btn link", "data-action": "rename",
          onclick: (ev) => { ev.stopPropagation(); openRename(b.name); } }, "Rename"),
        el("button", { class: "btn link danger-text", "data-action": "delete",
          onclick: (ev) => { ev.stopPropagation(); openDelete(b.name); } }, "Delete")) : null);
    card.addEventListener("click", () => go(b.name));
    card.addEventListener("keydown", (ev) => { if (ev.key === "Enter") go(b.name); });
    cards.append(card);
  }
}

$("refresh").addEventListener("click", () => refreshAll().then(() => toast("Refreshed")));

// ---------------------------------------------------------------- tenants (admin)
async function refreshTenants() {
  const tenants = await api("GET", "/api/tenants");
  const body = $("tenant-table").querySelector("tbody");
  body.replaceChildren();
  for (const t of tenants) {
    const toggle = el("button", { class: "btn link", "data-action": "toggle",
      onclick: () => tenantChange(t.id, { disabled: !t.disabled }) },
      t.disabled ? "Enable" : "Disable");
    const remove = el("button", { class: "btn link danger-text", "data-action": "remove",
      onclick: () => tenantRemove(t.id) }, "Delete");
    body.append(el("tr", { "data-tenant": t.id },
      el("td", {}, t.id), el("td", {}, t.name), el("td", {}, t.scopes.join(", ")),
      el("td", { class: "tenant-status" }, t.disabled ? "disabled" : "active"),
      el("td", {}, t.keys.map((k) => k.key_id).join(", ")),
      el("td", { class: "actions" }, toggle, remove)));
  }
}

async function refreshAudit() {
  const records = await api("GET", "/api/audit?limit=50");
  $("audit-table").querySelector("tbody").replaceChildren(...records.map((r) =>
    el("tr", { class: r.status >= 400 ? "audit-refused" : "" },
      el("td", { title: r.at }, ago(r.at)), el("td", {}, r.principal),
      el("td", {}, `${r.method} ${r.path}`), el("td", {}, String(r.status)),
      el("td", {}, r.detail || ""))));
}

async function tenantChange(id, change) {
  try { await api("PATCH", `/api/tenants/${enc(id)}`, change); } catch (e) { toast(e.message, true); }
  await refreshTenants();
}

async function tenantRemove(id) {
  if (!confirm(`Delete tenant ${id} and its keys? Its objects stay.`)) return;
  try { await api("DELETE", `/api/tenants/${enc(id)}`); } catch (e) { toast(e.message, true); }
  await refreshTenants();
}

$("tenant-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const scopes = $("tenant-scopes").value.split(",").map((s) => s.trim()).filter(Boolean);
  const body = { id: $("tenant-id").value.trim(), name: $("tenant-name").value.trim() || null,
    scopes: scopes.length ? scopes : null };
  try {
    const made = await api("POST", "/api/tenants", body);
    $("tenant-error").textContent = "";
    $("tenant-key").hidden = false;
    $("tenant-key").replaceChildren(`Key of ${made.id} (shown once, copy it now): `,
      el("code", { id: "tenant-new-key" }, made.key));
    $("tenant-form").reset();
  } catch (e) {
    $("tenant-error").textContent = e.message;
  }
  await refreshTenants();
});

// ---------------------------------------------------------------- dialogs
function dialogSubmit(formId, handler) {
  $(formId).addEventListener("submit", async (ev) => {
    if (ev.submitter && ev.submitter.value === "cancel") return; // let the dialog close
    ev.preventDefault();
    await handler();
  });
}

$("create-open").addEventListener("click", () => {
  $("create-name").value = "";
  $("create-error").textContent = "";
  $("create-dialog").showModal();
});
dialogSubmit("create-form", async () => {
  const name = $("create-name").value.trim();
  try {
    await api("POST", "/api/buckets", { name });
    $("create-dialog").close();
    toast(`Bucket ${name} created`);
    await refreshBuckets();
  } catch (e) {
    $("create-error").textContent = e.message;
  }
});

let renameSource = null;
function openRename(name) {
  renameSource = name;
  $("rename-name").value = name;
  $("rename-error").textContent = "";
  $("rename-progress").hidden = true;
  $("rename-submit").disabled = false;
  $("rename-dialog").showModal();
  $("rename-name").select();
}
dialogSubmit("rename-form", async () => {
  const target = $("rename-name").value.trim();
  $("rename-error").textContent = "";
  try {
    await api("POST", `/api/buckets/${enc(renameSource)}/rename`, { new_name: target });
  } catch (e) {
    $("rename-error").textContent = e.message;
    return;
  }
  $("rename-submit").disabled = true;
  const bar = $("rename-progress");
  bar.hidden = false;
  for (;;) {
    const s = await api("GET", `/api/buckets/${enc(renameSource)}/rename`);
    const pct = s.total_objects ? Math.round((100 * s.copied_objects) / s.total_objects) : 100;
    bar.querySelector(".bar").style.width = `${s.phase === "done" ? 100 : pct}%`;
    bar.querySelector("span").textContent =
      `${s.phase} · ${s.copied_objects}/${s.total_objects} objects · ${humanSize(s.copied_bytes)}`;
    if (s.phase === "done") {
      $("rename-dialog").close();
      toast(`Renamed ${renameSource} to ${target}`);
      break;
    }
    if (s.phase === "rolled_back" || s.error) {
      $("rename-error").textContent = s.error || "rename failed and was rolled back";
      $("rename-submit").disabled = false;
      break;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  await refreshBuckets();
});

let deleteTarget = null;
function openDelete(name) {
  deleteTarget = name;
  $("delete-target").textContent = name;
  $("delete-confirm").value = "";
  $("delete-error").textContent = "";
  $("delete-submit").disabled = true;
  $("delete-dialog").showModal();
}
$("delete-confirm").addEventListener("input", () => {
  $("delete-submit").disabled = $("delete-confirm").value !== deleteTarget;
});
dialogSubmit("delete-form", async () => {
  const confirm = $("delete-confirm").value;
  try {
    await api("DELETE", `/api/buckets/${enc(deleteTarget)}?confirm=${enc(confirm)}`);
    $("delete-dialog").close();
    toast(`Bucket ${deleteTarget} deleted`);
    await refreshBuckets();
  } catch (e) {
    $("delete-error").textContent = e.message;
  }
});

// ---------------------------------------------------------------- bucket detail
async function showBucket(bucket, prefix) {
  $("buckets-view").hidden = true;
  $("bucket-view").hidden = false;
  state.bucket = bucket;
  state.prefix = prefix;
  const parts = [["Object Storage", "#/"], [bucket, `#/b/${bucket}/`]];
  let acc = "";
  for (const p of prefix.split("/").filter(Boolean)) {
    acc += `${p}/`;
    parts.push([p, `#/b/${bucket}/${acc}`]);
  }
  crumbs(parts);
  $("bucket-title").textContent = prefix ? `${bucket} / ${prefix}` : bucket;
  $("rows").replaceChildren();
  state.cursor = null;
  state.view += 1;
  await loadPage();
  api("GET", `/api/buckets/${enc(bucket)}`).then((b) => {
    $("bucket-meta").textContent =
      `${b.objects.toLocaleString()} objects · ${humanSize(b.size)} · updated ${ago(b.last_updated)}`;
  }).catch(() => {});
}

async function loadPage() {
  const view = state.view;
  const params = new URLSearchParams({ prefix: state.prefix, delimiter: "/", limit: "200" });
  if (state.cursor) params.set("cursor", state.cursor);
  let page;
  try {
    page = await api("GET", `/api/buckets/${enc(state.bucket)}/objects?${params}`);
  } catch (e) {
    toast(e.message, true);
    return;
  }
  if (view !== state.view) return;
  const rows = $("rows");
  for (const folder of page.folders) {
    const name = folder.slice(state.prefix.length);
    rows.append(el("tr", { "data-folder": folder },
      el("td", {}, el("span", { class: "entry" }, icon("folder"),
        el("a", { href: `#/b/${state.bucket}/${folder}` }, name))),
      el("td", { class: "num" }, "–"), el("td", {}, ""), el("td", {})));
  }
  for (const obj of page.objects) {
    const name = obj.key.slice(state.prefix.length);
    rows.append(el("tr", { "data-key": obj.key },
      el("td", {}, el("span", { class: "entry" }, icon("file"), name)),
      el("td", { class: "num" }, humanSize(obj.size)),
      el("td", { title: obj.last_modified }, new Date(obj.last_modified).toLocaleString()),
      el("td", { class: "actions" },
        el("button", { class: "btn link", "data-action": "download", onclick: () => download(obj.key) }, "Download"),
        el("button", { class: "btn link", "data-action": "link", onclick: () => copyLink(obj.key) }, "Copy link"),
        el("button", { class: "btn link danger-text", "data-action": "delete-object",
          onclick: () => deleteObject(obj.key) }, "Delete"))));
  }
  state.cursor = page.next_cursor;
  $("more").hidden = !page.next_cursor;
  $("empty").hidden = rows.children.length > 0;
}
$("more").addEventListener("click", loadPage);

async function presign(key, method = "GET") {
  return api("POST", `/api/buckets/${enc(state.bucket)}/presign`, { key, method, expires_in: 3600 });
}

async function download(key) {
  try {
    const { url } = await presign(key);
    const a = el("a", { href: url, download: key.split("/").pop() });
    document.body.append(a);
    a.click();
    a.remove();
  } catch (e) { toast(e.message, true); }
}

async function copyLink(key) {
  try {
    const { url, expires_at } = await presign(key);
    $("link-url").value = url;
    $("link-expiry").textContent = `Anyone with this link can download ${key} until ${new Date(expires_at).toLocaleString()}.`;
    $("link-dialog").showModal();
    $("link-url").select();
    navigator.clipboard?.writeText(url).then(() => toast("Link copied"), () => {});
  } catch (e) { toast(e.message, true); }
}
$("link-copy").addEventListener("click", () => {
  $("link-url").select();
  navigator.clipboard?.writeText($("link-url").value).then(() => toast("Link copied"),
    () => document.execCommand("copy"));
});

async function deleteObject(key) {
  if (!window.confirm(`Delete ${key}?`)) return;
  try {
    await api("DELETE", objectPath(state.bucket, key));
    toast(`Deleted ${key}`);
    await showBucket(state.bucket, state.prefix);
  } catch (e) { toast(e.message, true); }
}

$("folder-open").addEventListener("click", () => {
  $("folder-name").value = "";
  $("folder-error").textContent = "";
  $("folder-dialog").showModal();
});
dialogSubmit("folder-form", async () => {
  const name = $("folder-name").value.trim().replace(/^\/+|\/+$/g, "");
  if (!name || name.split("/").some((p) => p === "" || p === "." || p === "..")) {
    $("folder-error").textContent = "Folder names cannot be empty, '.' or '..'.";
    return;
  }
  $("folder-dialog").close();
  go(state.bucket, `${state.prefix}${name}/`);
});

// Uploads stream straight from the file with XHR, which reports upload progress.
function uploadFile(file) {
  const key = state.prefix + file.name;
  const bar = el("div", { class: "progress" }, el("div", { class: "bar" }), el("span", {}, "0%"));
  const row = el("div", { class: "upload", "data-upload": key },
    el("div", { class: "name" }, `Uploading ${key}`), bar);
  $("uploads").append(row);
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", objectPath(state.bucket, key));
    xhr.setRequestHeader("Authorization", `Bearer ${sessionStorage.getItem(KEY_NAME)}`);
    if (file.type) xhr.setRequestHeader("Content-Type", file.type);
    xhr.upload.onprogress = (ev) => {
      if (!ev.lengthComputable) return;
      const pct = Math.round((100 * ev.loaded) / ev.total);
      bar.querySelector(".bar").style.width = `${pct}%`;
      bar.querySelector("span").textContent = `${pct}% of ${humanSize(ev.total)}`;
    };
    xhr.onload = () => {
      if (xhr.status === 201) {
        bar.querySelector(".bar").style.width = "100%";
        bar.querySelector("span").textContent = "done";
        row.querySelector(".name").textContent = `Uploaded ${key}`;
        setTimeout(() => row.remove(), 2500);
      } else {
        let detail = xhr.statusText;
        try { detail = detailText(JSON.parse(xhr.responseText).detail); } catch (e) { /* */ }
        row.querySelector(".name").textContent = `Failed ${key}: ${detail}`;
        toast(`Upload of ${key} failed: ${detail}`, true);
      }
      resolve();
    };
    xhr.onerror = () => {
      row.querySelector(".name").textContent = `Failed ${key}: network error`;
      resolve();
    };
    xhr.send(file);
  });
}

$("upload-input").addEventListener("change", async (ev) => {
  const files = Array.from(ev.target.files);
  ev.target.value = "";
  await Promise.all(files.map(uploadFile));
  await showBucket(state.bucket, state.prefix);
});

// ---------------------------------------------------------------- bucket settings
const EVENT_SETS = {
  all: ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
  created: ["s3:ObjectCreated:*"],
  removed: ["s3:ObjectRemoved:*"],
};
let currentRules = [];

async function openSettings() {
  $("settings-error").textContent = "";
  $("settings-dialog").showModal();
  $("lifecycle-edit").href = `/static/lifecycle.html#bucket=${enc(state.bucket)}`;
  await Promise.all([loadVersioning(), loadRules(), loadLifecycle()]);
}

let lifecycleRules = [];

async function loadLifecycle() {
  try {
    lifecycleRules = (await api("GET", `/api/buckets/${enc(state.bucket)}/lifecycle`)).Rules;
  } catch (e) {
    if (e.status !== 404) throw e;
    lifecycleRules = []; // no lifecycle configuration yet
  }
  const body = $("lifecycle-rules");
  body.replaceChildren();
  if (!lifecycleRules.length) {
    body.append(el("tr", {}, el("td", { colspan: "5", class: "muted" }, "No rules: objects here never expire or move.")));
  }
  lifecycleRules.forEach((rule, i) => {
    const enabled = rule.Status === "Enabled";
    body.append(el("tr", { "data-lifecycle-rule": rule.ID },
      el("td", {}, rule.ID), el("td", { class: "status" }, rule.Status),
      el("td", {}, lifecycleFilter(rule)), el("td", {}, lifecycleActions(rule)),
      el("td", {},
        el("button", { class: "btn link toggle", type: "button",
          onclick: () => saveLifecycle(lifecycleRules.map((r, j) => (j === i
            ? { ...r, Status: enabled ? "Disabled" : "Enabled" } : r))) }, enabled ? "Disable" : "Enable"),
        el("button", { class: "btn link danger-text remove", type: "button",
          onclick: () => saveLifecycle(lifecycleRules.filter((_, j) => j !== i)) }, "Remove"))));
  });
}

let lifecycleSaving = false;

async function saveLifecycle(rules) {
  // One change at a time: a second click before the list is re-read would act on the old one.
  if (lifecycleSaving) return;
  lifecycleSaving = true;
  $("settings-error").textContent = "";
  const path = `/api/buckets/${enc(state.bucket)}/lifecycle`;
  try {
    await (rules.length ? api("PUT", path, { Rules: rules }) : api("DELETE", path));
    await loadLifecycle();
  } catch (e) { $("settings-error").textContent = e.message; }
  finally { lifecycleSaving = false; }
}

$("lifecycle-add-expire").addEventListener("click", () =>
  saveLifecycle([...lifecycleRules, LIFECYCLE_TEMPLATES.expire]));
$("lifecycle-add-warm").addEventListener("click", () =>
  saveLifecycle([...lifecycleRules, LIFECYCLE_TEMPLATES.warm]));

async function loadVersioning() {
  const v = await api("GET", `/api/buckets/${enc(state.bucket)}/versioning`);
  const toggle = $("versioning-toggle");
  $("versioning-status").textContent = v.supported ? v.status : "Not supported";
  $("versioning-status").className = v.status === "Enabled" ? "badge on" : "badge";
  toggle.hidden = !v.supported;
  toggle.textContent = v.status === "Enabled" ? "Suspend" : "Enable";
  $("versioning-note").textContent = v.supported
    ? "Keeps every version of every object; old versions can be restored."
    : "The local-disk backend keeps only the latest version of each object.";
}

$("versioning-toggle").addEventListener("click", async () => {
  const enable = $("versioning-toggle").textContent === "Enable";
  try {
    await api("PUT", `/api/buckets/${enc(state.bucket)}/versioning`, { enabled: enable });
    await loadVersioning();
  } catch (e) { $("settings-error").textContent = e.message; }
});

async function loadRules() {
  const n = await api("GET", `/api/buckets/${enc(state.bucket)}/notifications`);
  $("events-target").textContent = n.target;
  currentRules = n.rules;
  const body = $("rules");
  body.replaceChildren();
  if (!currentRules.length) {
    body.append(el("tr", {}, el("td", { colspan: "4", class: "muted" }, "No rules: this bucket sends no events.")));
  }
  currentRules.forEach((r, i) => {
    body.append(el("tr", { "data-rule": String(i) },
      el("td", {}, r.events.join(", ")), el("td", {}, r.prefix || "–"), el("td", {}, r.suffix || "–"),
      el("td", {}, el("button", { class: "btn link danger-text", type: "button",
        onclick: () => saveRules(currentRules.filter((_, j) => j !== i)) }, "Remove"))));
  });
}

async function saveRules(rules) {
  $("settings-error").textContent = "";
  try {
    await api("PUT", `/api/buckets/${enc(state.bucket)}/notifications`, { rules });
    await loadRules();
  } catch (e) { $("settings-error").textContent = e.message; }
}

$("rule-add").addEventListener("click", () => {
  const rule = {
    events: EVENT_SETS[$("rule-events").value],
    prefix: $("rule-prefix").value.trim(),
    suffix: $("rule-suffix").value.trim(),
  };
  $("rule-prefix").value = "";
  $("rule-suffix").value = "";
  saveRules([...currentRules, rule]);
});
$("settings-open").addEventListener("click", openSettings);

window.addEventListener("hashchange", route);
route();
