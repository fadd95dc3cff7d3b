"""Bad objects: each kind ends in quarantine with its reason, the rest of the batch commits,
and `lakewire replay` re-drives them after a fix."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from lakehouse.objectstore import open_object_store
from lakehouse.quarantine import REASON_SUFFIX, find_quarantined, list_quarantined
from lakehouse.routes import load_routes
from lakehouse.settings import Settings
from lakehouse.tables import SourceVersion, open_target
from pipelines.ingestion import ingest_batch
from pipelines.reconcile import replay_object
from storage_service.stream import read_after_sync
from tests.helpers import BIN, csv_bytes, land

ROUTES = """
routes:
  - name: orders
    glob: "orders/*"
    table: sales.orders
    max_object_bytes: {limit}
"""


def _setup(tmp_path: Path, settings: Settings, limit: int = 100_000) -> Settings:
    """Settings with the test's routes file, and the landing and lake buckets created."""
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES.format(limit=limit))
    settings = settings.model_copy(update={"routes_file": routes})
    store = open_object_store(settings)
    for b in ("landing", "lake"):
        store.create_bucket(b)
    return settings


def test_each_bad_kind_is_quarantined_with_its_reason_and_good_files_commit(
    tmp_path: Path, settings: Settings
) -> None:
    settings = _setup(tmp_path, settings)
    store = open_object_store(settings)
    route = load_routes(settings.routes_file)[0]
    ref = route.table_for("orders/x")
    good1 = land(store, "landing", "orders/good1.csv", csv_bytes(10))
    bad = {
        "unparseable": land(store, "landing", "orders/broken.csv", b'id,amount\n1,"2\n3'),
        "empty": land(store, "landing", "orders/empty.csv", b""),
        "too_large": land(store, "landing", "orders/huge.csv", csv_bytes(5000)),
        "unknown_format": land(store, "landing", "orders/photo.jpeg", b"\xff\xd8\xff"),
        "schema_conflict": land(store, "landing", "orders/clash.csv", b"id,amount\nx,y\n"),
    }
    header_only = land(store, "landing", "orders/header.csv", b"id,amount,name\n")
    good2 = land(store, "landing", "orders/good2.csv", csv_bytes(5, start=10))
    batch = [good1, *bad.values(), header_only, good2]
    report = ingest_batch(settings, store, ref, batch, "run-1", route=route)

    assert report.ingested == [good1.uri, good2.uri] and report.rows == 15
    assert open_target(settings, store, ref).row_count() == 15
    for kind, src in [*bad.items(), ("empty", header_only)]:
        rec = report.quarantined[src.uri]
        assert rec.kind == kind, (src.key, rec)
        # The copy and its reason sit side by side under quarantine/.
        qkey = f"quarantine/{src.key}"
        assert store.get_bytes("landing", qkey) == store.get_bytes("landing", src.key)
        reason = json.loads(store.get_bytes("landing", qkey + REASON_SUFFIX))
        assert reason["kind"] == kind and reason["reason"] and reason["etag"] == src.etag
        assert reason["table"] == "delta.sales.orders" and reason["run_id"] == "run-1"
    assert "over the limit of 100000 bytes" in report.quarantined[bad["too_large"].uri].reason
    assert len(list_quarantined(settings, store, "landing")) == 6

    # Re-running the same batch quarantines again (idempotently) and adds no rows.
    again = ingest_batch(settings, store, ref, batch, "run-2", route=route)
    assert again.rows == 0 and len(again.quarantined) == 6
    assert len(list_quarantined(settings, store, "landing")) == 6


def test_replay_re_emits_after_a_fix_and_clears_quarantine(
    tmp_path: Path, settings: Settings
) -> None:
    settings = _setup(tmp_path, settings, limit=1000)
    store = open_object_store(settings)
    route = load_routes(settings.routes_file)[0]
    ref = route.table_for("orders/x")
    huge = land(store, "landing", "orders/huge.csv", csv_bytes(200))
    report = ingest_batch(settings, store, ref, [huge], "run-1", route=route)
    assert report.quarantined[huge.uri].kind == "too_large"

    # The fix: raise the route's limit (a routes-file edit, no code change), then replay.
    settings.routes_file.write_text(ROUTES.format(limit=10**9))  # type: ignore[union-attr]
    ev = replay_object(settings, store, "landing", "orders/huge.csv")
    assert ev.etag == huge.etag
    assert find_quarantined(settings, store, "landing", "orders/huge.csv") is None
    batch = read_after_sync(settings, 0, 100, 5)
    replayed = [e for e in batch.events if e.key == "orders/huge.csv"]
    assert len(replayed) == 1 and replayed[0].etag == huge.etag
    src = SourceVersion(ev.bucket, ev.key, ev.etag, ev.sequencer)
    fixed = load_routes(settings.routes_file)[0]
    assert ingest_batch(settings, store, ref, [src], "run-2", route=fixed).rows == 200


def test_replay_cli_quarantined_and_unknown_key(tmp_path: Path, settings: Settings) -> None:
    settings = _setup(tmp_path, settings)
    store = open_object_store(settings)
    route = load_routes(settings.routes_file)[0]
    a = land(store, "landing", "orders/a.csv", b"")
    b = land(store, "landing", "orders/b.csv", b'id,amount\n1,"2\n3')
    ingest_batch(settings, store, route.table_for("orders/a"), [a, b], "run-1", route=route)
    store.delete("landing", "orders/b.csv")  # only the quarantined copy is left of b
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEWIRE_")}
    env.update(
        LAKEWIRE_DATA_DIR=str(settings.data_dir),
        LAKEWIRE_NATS_URL=str(settings.nats_url),
        LAKEWIRE_ROUTES_FILE=str(settings.routes_file),
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "lakewire"), *args], env=env, capture_output=True, text=True, timeout=60
        )

    out = cli("replay", "--quarantined")
    assert out.returncode == 0, out.stderr
    assert "replayed landing/orders/a.csv" in out.stdout
    assert "replayed landing/orders/b.csv" in out.stdout
    assert store.get_bytes("landing", "orders/b.csv").startswith(b"id,amount")  # restored
    assert list_quarantined(settings, store, "landing") == []
    keys = sorted(e.key for e in read_after_sync(settings, 0, 100, 5).events)
    assert "orders/a.csv" in keys and "orders/b.csv" in keys

    missing = cli("replay", "landing/orders/nope.csv")
    assert missing.returncode == 1
    assert "does not exist and is not in quarantine" in missing.stderr
    assert "Traceback" not in missing.stderr
    neither = cli("replay")
    assert neither.returncode == 1 and "--quarantined" in neither.stderr
