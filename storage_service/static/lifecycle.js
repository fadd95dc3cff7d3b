// The lifecycle page (lifecycle.html); a file, not inline, so the CSP needs no unsafe-inline.
"use strict";
// Same key slot as the main page (sessionStorage: this tab only; never in the served HTML).
const KEY_NAME = "lakewire.apiKey";
const $ = (id) => document.getElementById(id);
let rules = [];
let editing = null; // index in rules, or -1 for a new rule

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY_NAME) || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await resp.json(); } catch (e) { data = null; }
  return { status: resp.status, data };
}

const describe = lifecycleRefusal;

function bucket() { return $("lc-bucket").value; }

async function loadBuckets() {
  const r = await api("GET", "/api/buckets");
  if (r.status !== 200) { $("lc-error").textContent = describe(r.data && r.data.detail); return; }
  $("lc-error").textContent = "";
  const sel = $("lc-bucket");
  sel.innerHTML = "";
  for (const b of r.data) {
    const o = document.createElement("option");
    o.value = o.textContent = b.name;
    sel.appendChild(o);
  }
  // The settings dialog links here with #bucket=<name>.
  const wanted = new URLSearchParams(location.hash.slice(1)).get("bucket") || "landing";
  if ([...sel.options].some((o) => o.value === wanted)) sel.value = wanted;
  await loadRules();
}

async function loadRules() {
  const r = await api("GET", `/api/buckets/${encodeURIComponent(bucket())}/lifecycle`);
  rules = r.status === 200 ? r.data.Rules : [];
  render();
}

function render() {
  const body = $("lc-rules");
  body.innerHTML = "";
  rules.forEach((rule, i) => {
    const tr = document.createElement("tr");
    tr.dataset.rule = rule.ID;
    const cells = [rule.ID, rule.Status, lifecycleFilter(rule), lifecycleActions(rule)];
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    const td = document.createElement("td");
    for (const [label, fn] of [["Edit", () => edit(i)],
                               [rule.Status === "Enabled" ? "Disable" : "Enable", () => toggle(i)],
                               ["Delete", () => remove(i)]]) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.className = `lc-${label.toLowerCase()}`;
      b.addEventListener("click", fn);
      td.appendChild(b);
    }
    tr.appendChild(td);
    body.appendChild(tr);
  });
  $("lc-status").textContent = `${rules.length} rule${rules.length === 1 ? "" : "s"} on ${bucket()}`;
}

async function save(next) {
  const name = encodeURIComponent(bucket());
  const r = next.length ? await api("PUT", `/api/buckets/${name}/lifecycle`, { Rules: next })
                        : await api("DELETE", `/api/buckets/${name}/lifecycle`);
  if (r.status !== 200 && r.status !== 204) {
    $("lc-error").textContent = describe(r.data && r.data.detail);
    return false;
  }
  $("lc-error").textContent = "";
  rules = next;
  render();
  return true;
}

function edit(i, template) {
  editing = i;
  $("lc-editor").hidden = false;
  $("lc-editor-title").textContent = i < 0 ? "New rule" : `Edit rule ${rules[i].ID}`;
  $("lc-rule-json").value = JSON.stringify(i < 0 ? template : rules[i], null, 2);
}

async function toggle(i) {
  const next = rules.map((r, j) => (j === i ? { ...r, Status: r.Status === "Enabled" ? "Disabled" : "Enabled" } : r));
  await save(next);
}

async function remove(i) { await save(rules.filter((_, j) => j !== i)); }

$("lc-save").addEventListener("click", async () => {
  let rule;
  try { rule = JSON.parse($("lc-rule-json").value); } catch (e) {
    $("lc-error").textContent = `not JSON: ${e.message}`;
    return;
  }
  const next = editing < 0 ? [...rules, rule] : rules.map((r, j) => (j === editing ? rule : r));
  if (await save(next)) $("lc-editor").hidden = true;
});
$("lc-cancel").addEventListener("click", () => { $("lc-editor").hidden = true; });
$("lc-template-expire").addEventListener("click", () => edit(-1, LIFECYCLE_TEMPLATES.expire));
$("lc-template-warm").addEventListener("click", () => edit(-1, LIFECYCLE_TEMPLATES.warm));
$("lc-new").addEventListener("click", () => edit(-1, LIFECYCLE_TEMPLATES.empty));
$("lc-bucket").addEventListener("change", loadRules);
$("lc-key-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(KEY_NAME, $("lc-key").value.trim());
  $("lc-key").value = "";
  loadBuckets();
});
if (sessionStorage.getItem(KEY_NAME)) loadBuckets();
