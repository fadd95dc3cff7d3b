"""Trino's file-based access control rules, generated from the tenant registry (issue 14).

Trino reads one JSON document (``security.config-file``) and re-reads it every
``security.refresh-period`` (``deploy/trino/access-control.properties``), so a tenant created,
disabled or deleted is reflected without a restart. The document is generated here, from the
tenant records alone, and nowhere else: ``deploy/trino/rules.json`` is this function's output
for a platform with no tenants, and the storage service rewrites the live file on every tenant
change (``LAKEWIRE_TRINO_RULES_FILE``).

In each section Trino applies the **first rule that matches** the user (and catalog, schema,
table), and a user or pattern is a Java regex matched against the whole name. So the order is:

1. the ingest principal (``trino_user``) may do everything, as before;
2. each enabled tenant (``tenant-<id>``) may read its own schema in the tenant catalogs;
3. any other ``tenant-…`` user (disabled, deleted, or never made) gets nothing;
4. everyone else (SQL Studio's and JupyterLab's read-only principal) reads everything.

Rule 3 is what makes a disabled tenant lose access: its allow rule is simply not generated.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lakehouse.settings import Settings
from lakehouse.sql_scope import CATALOGS as TENANT_CATALOGS
from lakehouse.tenants import TRINO_USER_PREFIX, Tenant, tenant_schema, tenant_trino_user

READ = ["SELECT"]
ALL = ["SELECT", "INSERT", "DELETE", "UPDATE", "OWNERSHIP"]
INGEST_PROCEDURES = "register_table|unregister_table|flush_metadata_cache"


def _exact(name: str) -> str:
    """A Java regex that matches ``name`` and nothing else ('-' is literal outside a class;
    anything else but letters and digits, such as a '.', is escaped)."""
    return re.sub(r"([^A-Za-z0-9_-])", r"\\\1", name)


def access_rules(settings: Settings, tenants: Iterable[Tenant]) -> dict[str, Any]:
    """The whole rules document for these tenants (disabled ones get no access)."""
    ingest = _exact(settings.trino_user)
    any_tenant = _exact(TRINO_USER_PREFIX) + ".*"
    catalogs_re = "|".join(TENANT_CATALOGS)
    catalogs: list[dict[str, Any]] = [{"user": ingest, "allow": "all"}]
    schemas: list[dict[str, Any]] = [{"user": ingest, "owner": True}]
    tables: list[dict[str, Any]] = [{"user": ingest, "privileges": ALL}]
    for tenant in sorted(tenants, key=lambda t: t.id):
        if tenant.disabled:
            continue
        user, schema = _exact(tenant_trino_user(tenant.id)), tenant_schema(tenant.id)
        catalogs.append({"user": user, "catalog": catalogs_re, "allow": "read-only"})
        schemas.append({"user": user, "catalog": catalogs_re, "schema": schema, "owner": False})
        tables.append({"user": user, "catalog": catalogs_re, "schema": schema, "privileges": READ})
    catalogs += [{"user": any_tenant, "allow": "none"}, {"allow": "read-only"}]
    schemas += [{"owner": False}]
    tables += [{"user": any_tenant, "privileges": []}, {"privileges": READ}]
    return {
        "catalogs": catalogs,
        "schemas": schemas,
        "tables": tables,
        "procedures": [
            {
                "user": ingest,
                "catalog": "delta",
                "schema": "system",
                "procedure": INGEST_PROCEDURES,
                "privileges": ["EXECUTE"],
            }
        ],
        # Without query rules every user may see every query's text: tenants see their own.
        "queries": [
            {"user": any_tenant, "allow": ["execute"]},
            {"allow": ["execute", "kill", "view"]},
        ],
    }


def render_rules(settings: Settings, tenants: Iterable[Tenant]) -> str:
    return json.dumps(access_rules(settings, tenants), indent=1) + "\n"


def write_rules(path: Path, settings: Settings, tenants: Iterable[Tenant]) -> bool:
    """Replace the file atomically (Trino may read it at any moment); False when unchanged.

    Mode 0644: Trino's container user only reads it, and it holds no secret.
    """
    text = render_rules(settings, tenants)
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return True
