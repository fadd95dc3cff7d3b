"""Tenants' SQL (read-only, its own schema, inspection filtered) and the races of the tenants
API, through the real HTTP service (uvicorn on a socket, many clients at once)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from lakehouse.objectstore import open_object_store
from lakehouse.routes import parse_routes
from lakehouse.sql_guard import SqlRefused
from lakehouse.sql_scope import scope_statement
from pipelines.ingestion import ingest_batch
from tests.helpers import API_KEY, NatsServer, Service, csv_bytes, free_port, land, local_settings
from tests.test_store_safety import Live, live_service


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# -- SQL ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("statement", "allowed"),
    [
        ("SELECT * FROM delta.acme_co.orders", True),
        ("SELECT * FROM iceberg.acme_co.orders FOR VERSION AS OF 1", True),
        ("WITH x AS (SELECT * FROM delta.acme_co.o) SELECT * FROM x", True),
        ("SHOW TABLES FROM delta.acme_co", True),
        ("SHOW SCHEMAS FROM delta", True),
        ("DESCRIBE delta.acme_co.orders", True),
        ("SELECT * FROM delta.other.orders", False),
        ("SELECT * FROM orders", False),
        ("WITH x AS (SELECT * FROM delta.other.o) SELECT * FROM x", False),
        ("SELECT * FROM delta.acme_co.o WHERE id IN (SELECT id FROM iceberg.other.t)", False),
        ('SHOW COLUMNS FROM delta."other".orders', False),
        ("SHOW TABLES", False),
        ("SHOW STATS FOR delta.other.orders", False),
        ("SHOW TABLES FROM delta.acme_co LIKE 'x' IN delta.other", False),
        ("DESCRIBE delta.other.orders", False),
        ("SELECT * FROM delta.information_schema.roles", False),
        ("SELECT * FROM system.runtime.queries", False),
        ("SELECT * FROM read_text('/etc/passwd')", False),
        ("INSERT INTO delta.acme_co.orders VALUES (1)", False),
        ("CREATE SCHEMA delta.acme_co2", False),
    ],
)
def test_tenant_statements(statement: str, allowed: bool) -> None:
    if allowed:
        scope_statement(statement, "acme_co")
    else:
        with pytest.raises(SqlRefused):
            scope_statement(statement, "acme_co")


@pytest.fixture
def sql_service(tmp_path: Path, nats: NatsServer) -> Iterator[Service]:
    """Delta tables in two tenants' schemas, as ingestion writes them, and the service."""
    settings = local_settings(tmp_path, nats)
    store = open_object_store(settings)
    for bucket in ("landing", "lake"):
        store.create_bucket(bucket)
    for schema in ("acme_co", "other"):
        route = parse_routes(
            "version: 2\nroutes:\n"
            f"  - {{name: r, glob: '{schema}/*', format: delta, table: {schema}.orders}}\n"
        )[0]
        src = land(store, "landing", f"{schema}/a.csv", csv_bytes(3))
        ingest_batch(settings, store, route.table_for(f"{schema}/a.csv"), [src], "r1", route=route)
    with Service(settings) as svc:
        yield svc


def test_tenant_sql_sees_only_its_schema(sql_service: Service) -> None:
    c = sql_service.client
    key = c.post("/api/tenants", json={"id": "acme-co"}).json()["key"]
    h = auth(key)

    def sql(statement: str, headers: dict[str, str] | None = None, **extra: Any) -> httpx.Response:
        return c.post("/api/sql", json={"statement": statement, **extra}, headers=headers or h)

    r = sql("SELECT count(*) AS n FROM delta.acme_co.orders")
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [[3]]
    r = sql("SELECT * FROM delta.other.orders")
    assert r.status_code == 403 and "outside your schema" in r.json()["detail"]
    schemas = [row[0] for row in sql("SHOW SCHEMAS FROM delta").json()["rows"]]
    assert "acme_co" in schemas and "other" not in schemas
    r = sql("SELECT table_schema, table_name FROM delta.information_schema.tables")
    assert r.status_code == 200, r.text
    assert {tuple(row) for row in r.json()["rows"]} == {("acme_co", "orders")}
    tree = c.get("/api/sql/catalog", headers=h).json()
    delta = next(n for n in tree["catalogs"] if n["name"] == "delta")
    assert [s["name"] for s in delta["schemas"]] == ["acme_co"]

    # the admin sees both; a tenant cannot page, download or cancel the admin's result
    admin = sql("SELECT * FROM delta.other.orders", auth(API_KEY), query_id="adm1", limit=1)
    assert admin.status_code == 200 and admin.json()["next_page_token"] == "adm1:1"
    r = c.post("/api/sql", json={"page_token": "adm1:1"}, headers=h)
    assert r.status_code == 404
    assert c.get("/api/sql/adm1/download", headers=h).status_code == 404
    assert c.delete("/api/sql/adm1", headers=h).status_code == 404
    assert c.get("/api/sql/adm1/download").status_code == 200


# -- races ----------------------------------------------------------------------------------------
@pytest.fixture
def live(tmp_path: Path, nats: NatsServer) -> Iterator[Live]:
    with live_service(local_settings(tmp_path, nats, storage_port=free_port())) as svc:
        yield svc


def test_concurrent_creates_of_one_id_or_one_scope_have_one_winner(live: Live) -> None:
    def create(body: dict[str, Any]) -> int:
        with live.client() as c:
            return c.post("/api/tenants", json=body).status_code

    with ThreadPoolExecutor(8) as pool:
        same_id = list(pool.map(create, [{"id": "dup"}] * 8))
        same_scope = list(
            pool.map(create, [{"id": f"s-{i}", "scopes": ["results/shared/"]} for i in range(8)])
        )
    assert sorted(same_id) == [201] + [409] * 7
    assert sorted(same_scope) == [201] + [409] * 7
    with live.client() as c:
        ids = [t["id"] for t in c.get("/api/tenants").json()]
    assert ids.count("dup") == 1 and len([i for i in ids if i.startswith("s-")]) == 1


def test_concurrent_rule_changes_of_tenants_lose_nothing(live: Live) -> None:
    """Each tenant rewrites its share of one bucket's notification rules many times at once;
    a read-modify-write without a lock would drop another tenant's rules."""
    with live.client() as c:
        keys = {
            t: c.post("/api/tenants", json={"id": t}).json()["key"]
            for t in ("ten-1", "ten-2", "ten-3", "ten-4")
        }

    def rewrite(tenant: str) -> None:
        with httpx.Client(base_url=live.url, headers=auth(keys[tenant]), timeout=60) as c:
            for i in range(10):
                rules = {"rules": [{"prefix": f"{tenant}/", "suffix": f".{i}"}]}
                r = c.put("/api/buckets/datasets/notifications", json=rules)
                assert r.status_code == 200, r.text

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(rewrite, keys))
    with live.client() as c:
        rules = c.get("/api/buckets/datasets/notifications").json()["rules"]
    assert sorted((r["prefix"], r["suffix"]) for r in rules) == [
        (f"{t}/", ".9") for t in sorted(keys)
    ]


def test_a_rotation_refuses_no_request_of_the_old_key(live: Live) -> None:
    """Clients keep calling with the old key while the new one is issued: none is refused
    until the old key is revoked, and from then on every one is."""
    with live.client() as c:
        old = c.post("/api/tenants", json={"id": "rot"}).json()["key"]

    def calls(_: int) -> list[int]:
        with httpx.Client(base_url=live.url, headers=auth(old), timeout=60) as c:
            return [c.get("/api/whoami").status_code for _ in range(10)]

    with ThreadPoolExecutor(4) as pool:
        running = [pool.submit(calls, i) for i in range(4)]
        with live.client() as c:
            new = c.post("/api/tenants/rot/keys", json={}).json()["key"]
        codes = [code for f in running for code in f.result()]
    assert codes == [200] * 40
    with live.client() as c:
        assert c.delete(f"/api/tenants/rot/keys/{old.split('.')[2]}").status_code == 204
    with ThreadPoolExecutor(4) as pool:
        after = [code for codes in pool.map(calls, range(4)) for code in codes]
    assert after == [401] * 40
    with httpx.Client(base_url=live.url, headers=auth(new), timeout=60) as c:
        assert c.get("/api/whoami").json()["principal"] == "rot"


# -- the CLI --------------------------------------------------------------------------------------
def test_tenant_cli_against_the_running_service(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from lakewire.cli import app

    s = live.settings
    for name, value in (
        ("DATA_DIR", str(s.data_dir)),
        ("STORAGE_PORT", str(s.storage_port)),
        ("API_KEY", API_KEY),
    ):
        monkeypatch.setenv(f"LAKEWIRE_{name}", value)
    cli = CliRunner()
    made = cli.invoke(app, ["tenant", "create", "cli-t", "--name", "CLI", "--scope", "results/x/"])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    assert key.startswith("lw.cli-t.")
    listing = cli.invoke(app, ["tenant", "ls", "--json"])
    (t,) = json.loads(listing.stdout)
    assert t["scopes"] == ["results/x/"] and key not in listing.stdout
    rotated = cli.invoke(app, ["tenant", "rotate-key", "cli-t"])
    assert rotated.exit_code == 0 and rotated.stdout.strip() != key
    old_id = key.split(".")[2]
    assert cli.invoke(app, ["tenant", "revoke-key", "cli-t", old_id]).exit_code == 0
    with httpx.Client(base_url=live.url, timeout=30) as c:
        assert c.get("/api/whoami", headers=auth(key)).status_code == 401
        assert c.get("/api/whoami", headers=auth(rotated.stdout.strip())).status_code == 200
    assert cli.invoke(app, ["tenant", "disable", "cli-t"]).exit_code == 0
    bad = cli.invoke(app, ["tenant", "create", "admin"])
    assert bad.exit_code == 1 and "reserved" in bad.stderr
    assert cli.invoke(app, ["tenant", "rm", "cli-t", "--yes"]).exit_code == 0
    assert cli.invoke(app, ["tenant", "ls", "--json"]).stdout.strip() == "[]"
