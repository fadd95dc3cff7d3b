"""Trino's per-tenant rules: the generated document, its file kept in step with the registry,
and the SQL API running a tenant's statements as the tenant's Trino principal.

No Trino runs on this machine. The documents are checked by applying Trino's documented
file-based semantics (each section's first rule whose patterns all match the whole name wins;
a missing pattern matches anything) with a small evaluator below; the SQL API is checked
against a stand-in Trino HTTP endpoint that records the ``X-Trino-User`` the real ``trino``
client sends. That Trino enforces the rules is left to ``make compose-smoke``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lakehouse.settings import Settings
from lakehouse.tenants import Tenant, tenant_trino_user
from lakehouse.trino_rules import access_rules, render_rules
from tests.helpers import NatsServer, Service, local_settings

ROOT = Path(__file__).parent.parent
ALL_PRIVILEGES = ["SELECT", "INSERT", "DELETE", "UPDATE", "OWNERSHIP"]


def first(rules: list[dict[str, Any]], **names: str) -> dict[str, Any] | None:
    """Trino's rule choice: the first rule whose every pattern matches the whole name."""
    for rule in rules:
        if all(re.fullmatch(rule.get(field, ".*"), value) for field, value in names.items()):
            return rule
    return None


def catalog_access(doc: dict[str, Any], user: str, catalog: str) -> str:
    rule = first(doc["catalogs"], user=user, catalog=catalog)
    return rule["allow"] if rule else "none"


def table_privileges(doc: dict[str, Any], user: str, catalog: str, schema: str) -> list[str]:
    """What a user may do to a table: nothing unless the catalog lets it in, then the first
    table rule's privileges (tables named ``t``: no rule here names tables)."""
    if catalog_access(doc, user, catalog) == "none":
        return []
    rule = first(doc["tables"], user=user, catalog=catalog, schema=schema, table="t")
    return rule["privileges"] if rule else []


def tenant(tid: str, disabled: bool = False) -> Tenant:
    return Tenant(id=tid, name=tid, scopes=[f"datasets/{tid}/"], created="now", disabled=disabled)


def test_each_tenant_reads_its_own_schemas_and_nothing_else() -> None:
    doc = access_rules(Settings(), [tenant("acme-co"), tenant("beta"), tenant("acme")])
    acme_co, beta, acme = (tenant_trino_user(t) for t in ("acme-co", "beta", "acme"))
    assert acme_co == "tenant-acme-co"
    for catalog in ("delta", "iceberg", "hive"):
        assert table_privileges(doc, acme_co, catalog, "acme_co") == ["SELECT"]
        assert table_privileges(doc, beta, catalog, "beta") == ["SELECT"]
        assert catalog_access(doc, acme_co, catalog) == "read-only"
        for other in ("beta", "acme", "default", "system", "information_schema_x"):
            assert table_privileges(doc, acme_co, catalog, other) == [], (catalog, other)
        assert table_privileges(doc, beta, catalog, "acme_co") == []
    # "tenant-acme" is a whole-name pattern: it does not reach tenant acme-co's schema.
    assert table_privileges(doc, acme, "delta", "acme") == ["SELECT"]
    assert table_privileges(doc, acme, "delta", "acme_co") == []
    # Trino's own catalogs (system.runtime.queries holds every user's SQL) stay closed.
    assert catalog_access(doc, acme_co, "system") == "none"
    assert table_privileges(doc, acme_co, "system", "runtime") == []
    # Tenants see only their own queries.
    assert first(doc["queries"], user=acme_co) == {"user": "tenant-.*", "allow": ["execute"]}


def test_the_platform_principals_keep_their_access() -> None:
    settings = Settings()
    doc = access_rules(settings, [tenant("acme")])
    ingest, sql = settings.trino_user, settings.sql_trino_user
    for schema in ("acme", "default", "system"):
        assert table_privileges(doc, ingest, "delta", schema) == ALL_PRIVILEGES
        assert table_privileges(doc, sql, "delta", schema) == ["SELECT"]
        assert table_privileges(doc, "jupyter-user", "iceberg", schema) == ["SELECT"]
    assert catalog_access(doc, ingest, "delta") == "all"
    assert first(doc["schemas"], user=ingest, catalog="delta", schema="x") == {
        "user": ingest,
        "owner": True,
    }
    (proc,) = doc["procedures"]
    assert proc["user"] == ingest and "register_table" in proc["procedure"]
    assert first(doc["queries"], user=sql) == {"allow": ["execute", "kill", "view"]}


def test_a_disabled_or_deleted_tenant_gets_no_access() -> None:
    doc = access_rules(Settings(), [tenant("acme", disabled=True), tenant("beta")])
    gone = tenant_trino_user("acme")
    assert all(gone not in json.dumps(r) for r in doc["catalogs"])  # no allow rule at all
    for catalog in ("delta", "iceberg", "hive", "system"):
        assert catalog_access(doc, gone, catalog) == "none"
        assert table_privileges(doc, gone, catalog, "acme") == []
    # A tenant the registry never had is as closed as a disabled one.
    assert table_privileges(doc, tenant_trino_user("nobody"), "delta", "nobody") == []
    assert table_privileges(doc, tenant_trino_user("beta"), "delta", "beta") == ["SELECT"]


def test_rules_order_tenants_before_the_catch_alls_whatever_the_registry_order() -> None:
    doc = access_rules(Settings(), [tenant("zeta"), tenant("acme")])
    users = [r.get("user") for r in doc["tables"]]
    assert users == ["lakewire-ingest", "tenant-acme", "tenant-zeta", "tenant-.*", None]
    assert [r.get("user") for r in doc["catalogs"]][-2:] == ["tenant-.*", None]
    # Same registry, same bytes: the writer can tell "unchanged" from "changed".
    assert render_rules(Settings(), [tenant("acme"), tenant("zeta")]) == render_rules(
        Settings(), [tenant("zeta"), tenant("acme")]
    )


def test_the_shipped_rules_are_the_generated_ones_and_trino_reloads_them() -> None:
    shipped = (ROOT / "deploy/trino/rules.json").read_text()
    assert shipped == render_rules(Settings(), [])
    props = dict(
        line.split("=", 1)
        for line in (ROOT / "deploy/trino/access-control.properties").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert props["access-control.name"] == "file"
    assert props["security.config-file"] == "/etc/trino/rules/rules.json"
    assert props["security.refresh-period"] == "5s"


# -- the file follows the registry -----------------------------------------------------------
@pytest.fixture
def rules_service(tmp_path: Path, nats: NatsServer) -> Iterator[tuple[Service, Path]]:
    rules = tmp_path / "trino" / "rules.json"
    with Service(local_settings(tmp_path, nats, trino_rules_file=rules)) as svc:
        yield svc, rules


def readers_of(rules: Path, schema: str) -> set[str]:
    doc = json.loads(rules.read_text())
    return {
        r["user"]
        for r in doc["tables"]
        if r.get("schema") == schema and r.get("privileges") == ["SELECT"]
    }


def test_the_rules_file_is_rewritten_on_every_tenant_change(
    rules_service: tuple[Service, Path],
) -> None:
    svc, rules = rules_service
    c = svc.client
    assert rules.read_text() == render_rules(svc.settings, [])  # written at start
    assert c.post("/api/tenants", json={"id": "acme-co"}).status_code == 201
    assert readers_of(rules, "acme_co") == {"tenant-acme-co"}
    assert rules.stat().st_mode & 0o777 == 0o644
    assert c.patch("/api/tenants/acme-co", json={"disabled": True}).status_code == 200
    assert readers_of(rules, "acme_co") == set()
    assert c.patch("/api/tenants/acme-co", json={"disabled": False}).status_code == 200
    assert readers_of(rules, "acme_co") == {"tenant-acme-co"}
    assert c.delete("/api/tenants/acme-co").status_code == 204
    assert rules.read_text() == render_rules(svc.settings, [])
    assert not list(rules.parent.glob(".*.tmp"))  # replaced atomically, nothing left over


def test_a_rules_file_that_cannot_be_written_is_reported_and_the_change_kept(
    rules_service: tuple[Service, Path],
) -> None:
    svc, rules = rules_service
    c = svc.client
    made = c.post("/api/tenants", json={"id": "acme"})
    assert made.status_code == 201
    rules.unlink()
    rules.mkdir()  # a directory where the file should be: every write fails
    r = c.patch("/api/tenants/acme", json={"disabled": True})
    assert r.status_code == 502
    assert "Trino's rules file was not rewritten" in r.json()["detail"]
    assert c.get("/api/tenants/acme").json()["disabled"] is True  # the change itself stands
    # A key made while the file cannot be written is still handed over (it is shown once).
    key = c.post("/api/tenants/acme/keys")
    assert key.status_code == 201 and key.json()["key"].startswith("lw.acme.")


# -- the SQL API runs a tenant's statements as the tenant ------------------------------------
class FakeTrino(BaseHTTPRequestHandler):
    """Answers ``POST /v1/statement`` with a finished one-row result, as Trino's protocol does,
    and records the user each request names."""

    users: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).users.append(self.headers.get("X-Trino-User") or "")
        body = json.dumps(
            {
                "id": "q1",
                "infoUri": "http://localhost/ui/q1",
                "columns": [
                    {
                        "name": "n",
                        "type": "bigint",
                        "typeSignature": {"rawType": "bigint", "arguments": []},
                    }
                ],
                "data": [[1]],
                "stats": {"state": "FINISHED"},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_trino() -> Iterator[tuple[str, list[str]]]:
    FakeTrino.users = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeTrino)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", FakeTrino.users
    finally:
        server.shutdown()
        server.server_close()


def test_the_sql_api_sends_a_tenants_statements_as_its_trino_principal(
    tmp_path: Path, nats: NatsServer, fake_trino: tuple[str, list[str]]
) -> None:
    url, users = fake_trino
    with Service(local_settings(tmp_path, nats, trino_url=url)) as svc:
        c = svc.client
        key = c.post("/api/tenants", json={"id": "acme-co"}).json()["key"]
        tenant_auth = {"Authorization": f"Bearer {key}"}
        r = c.post("/api/sql", json={"statement": "SELECT count(*) AS n FROM delta.acme_co.t"},
                   headers=tenant_auth)  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json()["rows"] == [[1]]
        assert users == ["tenant-acme-co"]
        assert c.post("/api/sql", json={"statement": "SELECT 1 AS n"}).status_code == 200
        assert users[-1] == svc.settings.sql_trino_user  # the admin: the read-only principal
        # Refused before Trino is asked: another tenant's schema.
        r = c.post(
            "/api/sql", json={"statement": "SELECT * FROM delta.beta.t"}, headers=tenant_auth
        )
        assert r.status_code == 403 and len(users) == 2
