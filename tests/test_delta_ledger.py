"""The ledger read in one pass from the Delta log agrees with delta-rs's own per-source answer,
across plain commits, a checkpoint, re-ingested versions and removals, on both backends."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from deltalake import DeltaTable

from lakehouse.delta import BULK_LEDGER_IDS
from lakehouse.delta_ledger import app_transactions
from lakehouse.objectstore import open_object_store
from lakehouse.tables import (
    SOURCE_URI,
    SourceVersion,
    TableRef,
    WriteSpec,
    delta_table_uri,
    open_target,
)


def _commit(target: Any, sources: list[SourceVersion], start: int) -> None:
    data = pa.table(
        {
            "id": pa.array(range(start, start + len(sources)), pa.int64()),
            SOURCE_URI: [s.uri for s in sources],
        }
    )
    target.ledger([s.app_id for s in sources])  # as ingestion does: check, then commit
    target.write(
        pa.RecordBatchReader.from_batches(data.schema, data.to_batches()), sources, WriteSpec(), []
    )


def test_one_pass_ledger_matches_delta_rs_per_source(make_settings: Any) -> None:
    settings = make_settings()
    store = open_object_store(settings)
    store.create_bucket(settings.lake_bucket)
    ref = TableRef("delta", "default", "ledger")
    target = open_target(settings, store, ref)
    batches = [
        [
            SourceVersion("landing", f"b{b}/k{i}.csv", f"e{b}{i}", f"{b * 100 + i + 1:016X}")
            for i in range(40)
        ]
        for b in range(3)
    ]
    for b, sources in enumerate(batches):
        _commit(target, sources, b * 100)
    uri = delta_table_uri(settings, store, ref)
    DeltaTable(uri, storage_options=store.storage_options() or None).create_checkpoint()
    # After the checkpoint: a source ingested again at a newer version, and removals.
    again = [SourceVersion("landing", "b0/k1.csv", "new", f"{999:016X}")]
    _commit(target, again, 500)
    removed = batches[1][:3]
    target.delete_sources(removed)

    dt = DeltaTable(uri, storage_options=store.storage_options() or None)
    ids = [s.app_id for b in batches for s in b] + [s.removal_id for s in removed]
    ids += [again[0].app_id, "never-ingested"]
    bulk = app_transactions(store, settings.lake_bucket, "default/ledger", dt.version())
    assert bulk is not None
    assert {i: bulk.get(i) for i in ids} == {i: dt.transaction_version(i) for i in ids}
    assert bulk[again[0].app_id] == 999 and "never-ingested" not in bulk
    # What ingestion sees: the same answers through the target, above the one-pass threshold.
    assert len(ids) >= BULK_LEDGER_IDS
    assert target.ledger(ids) == {i: dt.transaction_version(i) for i in ids}


def test_a_log_it_cannot_replay_answers_none(make_settings: Any) -> None:
    settings = make_settings()
    store = open_object_store(settings)
    store.create_bucket(settings.lake_bucket)
    ref = TableRef("delta", "default", "gone")
    target = open_target(settings, store, ref)
    _commit(target, [SourceVersion("landing", "a.csv", "e", f"{1:016X}")], 0)
    store.delete(settings.lake_bucket, "default/gone/_delta_log/00000000000000000000.json")
    assert app_transactions(store, settings.lake_bucket, "default/gone", 1) is None
