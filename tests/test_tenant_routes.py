"""Routing of tenants' objects (DECISIONS "Routes"): under a shared bucket, a key's first segment
is the tenant when it is a registered tenant id, and the built-in catch-all sends
``landing/<tenant>/<dataset>/…`` to ``delta.<tenant_schema>.<dataset>``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lakehouse.objectstore import open_object_store
from lakehouse.routes import RoutesError, check_routes, explain_key, settings_routes
from lakehouse.settings import Settings
from lakehouse.tenants import RESERVED_TENANT_IDS, tenant_schema
from pipelines.batches import pending_by_table
from storage_service.events import OBJECT_CREATED_PUT, BucketEvent
from storage_service.tenants import TenantRegistry


def event(key: str) -> BucketEvent:
    now = datetime.now(UTC)
    return BucketEvent(OBJECT_CREATED_PUT, "landing", key, 1, "e", key, now, stream_seq=1)


def test_registered_tenant_folders_route_to_the_tenant_schema(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    store = open_object_store(settings)
    store.create_bucket("landing")
    before = settings_routes(settings)  # the project's routes.yaml, no tenant yet
    assert explain_key(before, "landing", "acme-co/orders/a.csv", settings).table == (
        "delta.default.acme_co"
    )

    TenantRegistry(settings, store).create("acme-co")
    routes = settings_routes(settings)  # the next tick's routes know the tenant
    tables = {
        key: explain_key(routes, "landing", key, settings).table
        for key in (
            "acme-co/orders/2024/01/a.csv",
            "acme-co/loose.csv",
            "orders/a.csv",
            "beta/orders/a.csv",
        )
    }
    assert tables == {
        "acme-co/orders/2024/01/a.csv": "delta.acme_co.orders",
        "acme-co/loose.csv": "delta.acme_co.default",
        "orders/a.csv": "delta.default.orders",
        "beta/orders/a.csv": "delta.default.beta",  # not a tenant: a folder like any other
    }
    groups = pending_by_table(settings, routes, [event("acme-co/shop/x.csv")])
    assert list(groups) == [("landing_files", "delta.acme_co.shop")]


def test_tenant_placeholder_in_route_files() -> None:
    (route,) = check_routes(
        "version: 2\nroutes:\n  - {name: t, glob: '*/sales/*.csv', table: '{tenant}.sales'}\n"
    ).routes
    assert route.is_pattern and route.static_table() is None
    assert route.table_for("acme/sales/a.csv").qualified == "delta.default.sales"
    assert route.with_tenants({"acme"}).table_for("acme/sales/a.csv").qualified == (
        "delta.acme.sales"
    )
    with pytest.raises(RoutesError):
        check_routes("version: 2\nroutes:\n  - {name: t, glob: '*/x', table: 'x.{tenant}'}\n")


def test_reserved_ids_cover_the_schemas_the_platform_owns() -> None:
    assert {"default", "system", "information_schema"} <= RESERVED_TENANT_IDS
    assert tenant_schema("acme-co") == "acme_co"


def test_a_tenants_runs_are_tagged_and_limited_per_tenant(tmp_path: Path) -> None:
    from lakewire.dagster_home import instance_config
    from pipelines.requests import NoRuns, plan_runs

    settings = Settings(data_dir=tmp_path / "data", tenant_max_concurrent_runs=3)
    store = open_object_store(settings)
    store.create_bucket("landing")
    TenantRegistry(settings, store).create("acme-co")
    mine, other = event("acme-co/orders/a.csv"), event("orders/a.csv")
    tags = {r.tags["lakewire/table"]: r.tags for r in plan_runs(settings, [mine, other], NoRuns())}
    assert tags["delta.acme_co.orders"]["lakewire/tenant"] == "acme-co"
    assert "lakewire/tenant" not in tags["delta.default.orders"]
    config: Any = instance_config(settings)
    limits = config["run_coordinator"]["config"]["tag_concurrency_limits"]
    assert {"key": "lakewire/tenant", "value": {"applyLimitPerUniqueValue": True}, "limit": 3} in (
        limits
    )
