"""The S3 code path of ingestion, quarantine and reconciliation, on a real S3 server (SeaweedFS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.objectstore import open_object_store
from lakehouse.quarantine import find_quarantined
from lakehouse.routes import parse_routes
from lakehouse.tables import open_target
from pipelines.ingestion import ingest_batch
from pipelines.reconcile import find_unledgered
from tests.helpers import NatsServer, csv_bytes, land, s3_settings
from tests.s3servers import SeaweedFS


@pytest.mark.parametrize("fmt", ["delta", "iceberg"])
def test_ingest_quarantine_and_reconcile_on_s3_seaweedfs(
    fmt: str, tmp_path: Path, nats: NatsServer, seaweed_s3: SeaweedFS
) -> None:
    settings = s3_settings(tmp_path, nats, seaweed_s3)  # an empty store
    store = open_object_store(settings)
    for b in ("landing", "lake"):
        store.create_bucket(b)
    (route,) = parse_routes(
        f"routes:\n  - {{name: r, glob: 'orders/*', format: {fmt}, table: sales.orders}}\n"
    )
    ref = route.table_for("orders/x")
    a = land(store, "landing", "orders/a.csv", csv_bytes(20))
    bad = land(store, "landing", "orders/bad.csv", b"")
    report = ingest_batch(settings, store, ref, [a, bad], "run-1", route=route)
    assert report.rows == 20 and report.quarantined[bad.uri].kind == "empty"
    assert find_quarantined(settings, store, "landing", "orders/bad.csv") is not None
    assert ingest_batch(settings, store, ref, [a], "run-2", route=route).rows == 0

    # An event whose etag no longer matches the object (overwritten since) is superseded.
    b_old = land(store, "landing", "orders/b.csv", csv_bytes(1))
    b_new = land(store, "landing", "orders/b.csv", csv_bytes(2, start=50))
    report = ingest_batch(settings, store, ref, [b_old], "run-3", route=route)
    assert report.superseded == [b_old.uri] and report.rows == 0

    # Reconciliation sees b's current version as never ingested, and nothing else.
    found = find_unledgered(settings, store, [route], grace_seconds=0)
    assert [(e.key, e.etag) for e in found.missing] == [("orders/b.csv", b_new.etag)]
    assert found.quarantined == 1
    assert ingest_batch(settings, store, ref, [b_new], "run-4", route=route).rows == 2
    assert open_target(settings, store, ref).row_count() == 22
