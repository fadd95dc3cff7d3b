"""The audit log as the table ``delta.system.audit`` (issue 14), end to end through the HTTP API:
calls are audited, the service copies the records into a real Delta table in the lake exactly
once, the admin queries it with ``POST /api/sql``, and a tenant is refused it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lakehouse.audit_table import AUDIT_TABLE, audit_path
from lakehouse.delta import open_table
from lakehouse.tables import delta_table_uri
from tests.helpers import API_KEY, NatsServer, Service, local_settings


@pytest.fixture
def service(tmp_path: Path, nats: NatsServer) -> Iterator[Service]:
    with Service(local_settings(tmp_path, nats)) as svc:
        yield svc


def lines(svc: Service) -> int:
    return len(audit_path(svc.settings).read_text().splitlines())


def test_the_admin_queries_the_audit_log_as_a_delta_table(service: Service) -> None:
    c = service.client
    tenant_key = c.post("/api/tenants", json={"id": "aud-t"}).json()["key"]
    tenant = {"Authorization": f"Bearer {tenant_key}"}
    assert c.post("/api/buckets", json={"name": "nope"}, headers=tenant).status_code == 403
    assert c.get("/api/buckets", headers={"Authorization": "Bearer wrong"}).status_code == 401

    def sql(statement: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return c.post("/api/sql", json={"statement": statement}, headers=headers or {})

    def audit_rows() -> list[dict[str, Any]]:
        r = sql("SELECT principal, method, path, status, detail, key_id FROM delta.system.audit")
        assert r.status_code == 200, r.text
        names = [col["name"] for col in r.json()["columns"]]
        return [dict(zip(names, row, strict=True)) for row in r.json()["rows"]]

    # The service's own loop flushes every few seconds too; whichever ran, each line once.
    service.runtime.flush_audit()
    assert service.runtime.flush_audit() == 0
    rows = audit_rows()
    assert len(rows) == 3
    by_status = {row["status"]: row for row in rows}
    assert by_status[201]["principal"] == "admin"
    assert by_status[201]["path"] == "/api/tenants"
    assert by_status[403]["principal"] == "aud-t" and by_status[403]["detail"]
    assert by_status[401]["principal"] == "anonymous"
    assert tenant_key not in str(rows) and API_KEY not in str(rows)

    # The table follows the log: the SQL call just made is in the next flush, once.
    service.runtime.flush_audit()
    assert len(audit_rows()) == lines(service) - 1  # all but the call that is answering now
    uri = delta_table_uri(service.settings, service.runtime.store, AUDIT_TABLE)
    table = open_table(uri, service.runtime.store.storage_options())
    assert table is not None and table.history()[0]["lakewire.operation"] == "audit"

    # A tenant may not read it, nor see that the schema exists.
    r = sql("SELECT * FROM delta.system.audit", tenant)
    assert r.status_code == 403 and "outside your schema" in r.json()["detail"]
    schemas = [row[0] for row in sql("SHOW SCHEMAS FROM delta", tenant).json()["rows"]]
    assert "system" not in schemas
    assert "system" in [row[0] for row in sql("SHOW SCHEMAS FROM delta").json()["rows"]]
