// A "Query" button on the Object Storage page when the open folder is a Delta table's folder
// in the lake bucket (<lake>/<schema>/<table>/): it opens SQL Studio with the table queried.
// Kept out of app.js: it only watches the page's address and adds one button to the toolbar.
"use strict";

(() => {
  let catalog = null;

  async function loadCatalog() {
    const key = sessionStorage.getItem("lakewire.apiKey");
    if (!key) return null;
    try {
      const resp = await fetch("/api/sql/catalog", { headers: { Authorization: `Bearer ${key}` } });
      return resp.ok ? await resp.json() : null;
    } catch {
      return null;
    }
  }

  function quote(name) {
    return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
  }

  async function update() {
    let button = document.getElementById("sql-query-shortcut");
    const m = location.hash.match(/^#\/b\/([^/]+)\/([^/]+)\/([^/]+)\//);
    if (!m) {
      if (button) button.hidden = true;
      return;
    }
    const [bucket, schema, table] = m.slice(1).map(decodeURIComponent);
    catalog = catalog || (await loadCatalog());
    const delta = catalog?.catalogs.find((c) => c.name === "delta");
    const found = catalog?.lake_bucket === bucket &&
      delta?.schemas.some((s) => s.name === schema && s.tables.some((t) => t.name === table));
    if (!found) {
      if (button) button.hidden = true;
      return;
    }
    if (!button) {
      button = document.createElement("a");
      button.id = "sql-query-shortcut";
      button.className = "btn";
      button.textContent = "Query";
      button.title = "Open this table in SQL Studio";
      document.querySelector("#bucket-view .toolbar")?.prepend(button);
    }
    const sql = `SELECT * FROM delta.${quote(schema)}.${quote(table)}`;
    button.href = `/static/sql.html?q=${encodeURIComponent(sql)}`;
    button.hidden = false;
  }

  window.addEventListener("hashchange", update);
  window.addEventListener("load", update);
})();
