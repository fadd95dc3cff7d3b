"""The audit log as the table ``delta.system.audit`` (issue 14), end to end through the HTTP API:
calls are audited, an admin's query of the table brings it up to date (a real Delta table in the
lake, each record copied once), and a tenant is refused it; on both backends (the conftest's
``service``: local, and S3 on SeaweedFS, where the table is written through the S3 API)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from lakehouse.audit_table import AUDIT_TABLE, names_audit_table
from lakehouse.delta import open_table
from lakehouse.tables import delta_table_uri
from tests.helpers import API_KEY, Service


@pytest.mark.parametrize(
    ("statement", "names"),
    [
        ("SELECT * FROM delta.system.audit", True),
        ('SELECT count(*) FROM delta."system"."AUDIT" a JOIN delta.x.y b ON true', True),
        ('SELECT * FROM delta.system."audit$history"', True),
        ("SELECT * FROM delta.acme.audit", False),
        ("SELECT 'delta.system.audit'", False),
        ("SELEC nonsense", False),
    ],
)
def test_which_statements_read_the_audit_table(statement: str, names: bool) -> None:
    assert names_audit_table(statement) is names


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

    uri = delta_table_uri(service.settings, service.runtime.store, AUDIT_TABLE)
    options = service.runtime.store.storage_options()
    assert sql("SELECT 1 AS one").status_code == 200
    assert open_table(uri, options) is None  # only a query of the table writes it

    rows = audit_rows()
    assert len(rows) == 4  # the 3 calls above and the SELECT 1 (the answering call comes next)
    by_status = {row["status"]: row for row in rows if row["path"] != "/api/sql"}
    assert by_status[201]["principal"] == "admin"
    assert by_status[201]["path"] == "/api/tenants"
    assert by_status[403]["principal"] == "aud-t" and by_status[403]["detail"]
    assert by_status[401]["principal"] == "anonymous"
    assert tenant_key not in str(rows) and API_KEY not in str(rows)

    # The next query adds the previous one's record, once, in a second commit.
    assert len(audit_rows()) == 5
    table = open_table(uri, options)
    assert table is not None and table.version() == 1
    assert table.history(1)[0]["lakewire.operation"] == "audit"

    # A tenant may not read it, nor see that the schema exists; asking copies nothing.
    r = sql("SELECT * FROM delta.system.audit", tenant)
    assert r.status_code == 403 and "outside your schema" in r.json()["detail"]
    schemas = [row[0] for row in sql("SHOW SCHEMAS FROM delta", tenant).json()["rows"]]
    assert "system" not in schemas
    assert "system" in [row[0] for row in sql("SHOW SCHEMAS FROM delta").json()["rows"]]
    table = open_table(uri, options)
    assert table is not None and table.version() == 1
