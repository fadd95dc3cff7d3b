"""Table maintenance: compaction and vacuum of Delta tables, snapshot expiry of Iceberg ones."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from dagster import DagsterEventType, build_schedule_context, instance_for_test
from deltalake import DeltaTable, write_deltalake

from lakehouse.objectstore import ObjectStore, open_object_store
from lakehouse.settings import Settings
from lakehouse.tables import SourceVersion, TableRef, WriteSpec, delta_table_uri, open_target
from pipelines.maintenance import (
    MaintenanceRefused,
    expire_snapshots,
    maintenance_job,
    optimize,
    remove_orphan_files,
    vacuum,
)
from pipelines.resources import LakewireResource


@pytest.fixture
def env(tmp_path: Path) -> tuple[Settings, ObjectStore]:
    settings = Settings(data_dir=tmp_path / "data")
    store = open_object_store(settings)
    store.create_bucket(settings.lake_bucket)
    return settings, store


def _rows(uri: str) -> list[tuple[int, str]]:
    df = pl.read_delta(uri).sort("id")
    return list(zip(df["id"].to_list(), df["name"].to_list(), strict=True))


def _maintain(instance: Any, settings: Settings, run_config: Mapping[str, Any]) -> Any:
    """Run the maintenance job in-process; the table's materialization it recorded."""
    run = maintenance_job.execute_in_process(
        run_config=run_config,
        instance=instance,
        resources={"lakewire": LakewireResource(data_dir=str(settings.data_dir))},
    )
    assert run.success
    (mat,) = [
        e.event_specific_data.materialization  # type: ignore[union-attr]
        for e in run.all_events
        if e.event_type == DagsterEventType.ASSET_MATERIALIZATION
    ]
    return mat


def _one_row_commits(
    settings: Settings, store: ObjectStore, ref: TableRef, n: int, key: str, with_name: bool = False
) -> list[SourceVersion]:
    """``n`` ingestion-shaped commits of one row each (one source each, in the ledger)."""
    target = open_target(settings, store, ref)
    sources = [
        SourceVersion("landing", f"{key}{i}.csv", f"e{i}", f"{i + 1:016X}") for i in range(n)
    ]
    for i, src in enumerate(sources):
        columns: dict[str, Any] = {"id": pa.array([i], pa.int64())}
        if with_name:
            columns["name"] = [f"n{i}"]
        data = pa.table(columns)
        target.write(
            pa.RecordBatchReader.from_batches(data.schema, data.to_batches()),
            [src],
            WriteSpec(),
            [],
        )
    return sources


def test_200_one_row_appends_compact_to_a_handful_of_files_and_vacuum_guards_retention(
    env: tuple[Settings, ObjectStore],
) -> None:
    settings, store = env
    ref = TableRef("delta", "default", "small_files")
    uri = delta_table_uri(settings, store, ref)
    for i in range(200):
        write_deltalake(uri, pa.table({"id": [i], "name": [f"n{i}"]}), mode="append")
    before = _rows(uri)
    assert len(DeltaTable(uri).file_uris()) == 200

    report = optimize(settings, store, ref)
    assert report.files_before == 200 and report.files_after <= 5
    assert _rows(uri) == before  # every query result unchanged
    assert pl.read_delta(uri, version=199).height == 200  # time travel still reads old files

    with pytest.raises(MaintenanceRefused, match="below the minimum 168 h"):
        vacuum(settings, store, ref, retention_hours=1)
    kept = vacuum(settings, store, ref)  # the default 7 days removes nothing this young
    assert kept.detail["removed_files"] == 0
    forced = vacuum(settings, store, ref, retention_hours=0, force=True)
    assert forced.detail["removed_files"] == 200
    assert _rows(uri) == before


def test_maintenance_job_records_files_before_and_after(env: tuple[Settings, ObjectStore]) -> None:
    settings, store = env
    ref = TableRef("delta", "default", "job_table")
    uri = delta_table_uri(settings, store, ref)
    for i in range(20):
        write_deltalake(uri, pa.table({"id": [i], "name": [f"n{i}"]}), mode="append")
    with instance_for_test() as instance:
        run_config = {"ops": {"maintain_table": {"config": {"table": ref.qualified}}}}
        mat = _maintain(instance, settings, run_config)
    assert mat.metadata["files_before"].value == 20
    assert mat.metadata["files_after"].value == 1
    assert len(_rows(uri)) == 20


def test_iceberg_snapshot_expiry_keeps_rows_and_the_ingestion_ledger(
    env: tuple[Settings, ObjectStore],
) -> None:
    settings, store = env
    ref = TableRef("iceberg", "default", "snaps")
    sources = _one_row_commits(settings, store, ref, 10, "k")
    target = open_target(settings, store, ref)
    assert target.row_count() == 10
    with pytest.raises(MaintenanceRefused):
        expire_snapshots(settings, store, ref, retention_hours=0)
    report = expire_snapshots(
        settings, store, ref, older_than=datetime.now(UTC) + timedelta(seconds=1)
    )
    assert report.files_before == 10 and report.files_after == 1
    target = open_target(settings, store, ref)
    assert target.row_count() == 10
    ledger = target.ledger([s.app_id for s in sources])
    assert all(ledger[s.app_id] == s.version for s in sources), ledger


def test_maintain_cli(env: tuple[Settings, ObjectStore], monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from lakewire.cli import app

    settings, store = env
    monkeypatch.setenv("LAKEWIRE_DATA_DIR", str(settings.data_dir))
    ref = TableRef("delta", "default", "cli_table")
    uri = delta_table_uri(settings, store, ref)
    for i in range(5):
        write_deltalake(uri, pa.table({"id": [i], "name": [f"n{i}"]}), mode="append")
    runner = CliRunner()
    r = runner.invoke(app, ["maintain", "optimize", ref.qualified])
    assert r.exit_code == 0 and "files 5 -> 1" in r.output, r.output
    r = runner.invoke(app, ["maintain", "vacuum", ref.qualified, "--retention-hours", "0"])
    assert r.exit_code == 1 and "below the minimum" in r.output
    r = runner.invoke(
        app, ["maintain", "vacuum", ref.qualified, "--retention-hours", "0", "--force"]
    )
    assert r.exit_code == 0 and '"removed_files": 5' in r.output, r.output


def test_iceberg_orphan_files_go_referenced_and_young_files_stay(
    env: tuple[Settings, ObjectStore],
) -> None:
    from lakehouse.iceberg import load_table

    settings, store = env
    ref = TableRef("iceberg", "default", "orphans")
    _one_row_commits(settings, store, ref, 3, "o")
    table = load_table(settings, store, ref)
    assert table is not None
    prefix = table.location().removeprefix(store.url(settings.lake_bucket) + "/")
    # What a crashed writer leaves: a data file no snapshot ever referenced.
    stray = f"{prefix}/data/00000-crashed-writer.parquet"
    store.put(settings.lake_bucket, stray, b"PAR1 half a file")
    keys_before = {o.key for o in store.iter_objects(settings.lake_bucket, prefix)}

    with pytest.raises(MaintenanceRefused, match="below the minimum"):
        remove_orphan_files(settings, store, ref, retention_hours=0)
    # Within the retention the stray file may belong to a commit in flight: it stays.
    young = remove_orphan_files(settings, store, ref)
    assert young.detail["removed_files"] == 0
    # Past it (forced to 0 h here), only the stray goes; every snapshot still reads.
    report = remove_orphan_files(settings, store, ref, retention_hours=0, force=True)
    assert report.detail["removed_files"] == 1
    keys_after = {o.key for o in store.iter_objects(settings.lake_bucket, prefix)}
    assert keys_before - keys_after == {stray}
    table = load_table(settings, store, ref)
    assert table is not None
    for snap in table.snapshots():
        assert len(table.scan(snapshot_id=snap.snapshot_id).to_arrow()) >= 1
    assert open_target(settings, store, ref).row_count() == 3


ROUTES_WITH_MAINTENANCE = """
version: 2
routes:
  - name: orders
    glob: "orders/*.csv"
    table: default.route_kept
    maintenance:
      retention_hours: 720
      z_order: [name]
"""


def test_route_retention_and_z_order_drive_the_scheduled_maintenance(
    env: tuple[Settings, ObjectStore],
) -> None:
    from lakehouse.routes import parse_routes
    from pipelines.maintenance import maintenance_schedules

    settings, store = env
    (route,) = parse_routes(ROUTES_WITH_MAINTENANCE)
    ref = TableRef("delta", "default", "route_kept")
    uri = delta_table_uri(settings, store, ref)
    for i in range(12):
        write_deltalake(uri, pa.table({"id": [i], "name": [f"n{11 - i}"]}), mode="append")
    before = _rows(uri)
    (schedule,) = maintenance_schedules(settings, {ref: route})
    with instance_for_test() as instance:
        tick = schedule.evaluate_tick(build_schedule_context(instance))
        (request,) = tick.run_requests or []
        config = request.run_config["ops"]["maintain_table"]["config"]
        assert config == {"table": ref.qualified, "retention_hours": 720, "z_order": ["name"]}
        mat = _maintain(instance, settings, request.run_config)
    reports: list[dict[str, Any]] = mat.metadata["reports"].value
    optimized, vacuumed = reports
    assert optimized["files_after"] == 1
    # Z-ordered by name: the one file's rows are in name order (plain compaction keeps ids)
    (path,) = DeltaTable(uri).file_uris()
    assert pl.read_parquet(path)["name"].to_list() == sorted(n for _, n in before)
    assert vacuumed["detail"]["retention_hours"] == 720
    assert _rows(uri) == before


def test_route_maintenance_settings_are_validated_naming_route_and_field() -> None:
    from lakehouse.routes import RoutesError, parse_routes

    iceberg_z = ROUTES_WITH_MAINTENANCE.replace("glob:", "format: iceberg\n    glob:")
    with pytest.raises(RoutesError, match="z_order is for Delta") as exc:
        parse_routes(iceberg_z)
    assert exc.value.issues[0].route == "orders"
    with pytest.raises(RoutesError) as exc:
        parse_routes(ROUTES_WITH_MAINTENANCE.replace("720", "0"))
    assert exc.value.issues[0].field == "maintenance.retention_hours"
    (plain,) = parse_routes(ROUTES_WITH_MAINTENANCE.replace("      z_order: [name]\n", ""))
    assert plain.maintenance.z_order == []


def test_iceberg_compaction_rewrites_small_files_keeps_rows_ledger_and_old_snapshots(
    env: tuple[Settings, ObjectStore],
) -> None:
    from lakehouse.iceberg import load_table
    from pipelines.maintenance import compact_iceberg

    settings, store = env
    ref = TableRef("iceberg", "default", "small_files")
    sources = _one_row_commits(settings, store, ref, 12, "s", with_name=True)
    table = load_table(settings, store, ref)
    assert table is not None
    before_snapshot = table.current_snapshot()
    assert before_snapshot is not None

    report = compact_iceberg(settings, store, ref)
    assert (report.files_before, report.files_after) == (12, 1), report
    table = load_table(settings, store, ref)
    assert table is not None
    rows = table.scan().to_arrow().sort_by("id")
    assert rows["id"].to_pylist() == list(range(12))
    assert rows["name"].to_pylist() == [f"n{i}" for i in range(12)]
    # A query on the snapshot before the compaction still reads its files and its rows.
    old = table.scan(snapshot_id=before_snapshot.snapshot_id).to_arrow()
    assert sorted(old["id"].to_pylist()) == list(range(12))
    # Nothing is ingested twice after it: the ledger still knows every source.
    target = open_target(settings, store, ref)
    assert all(v is not None for v in target.ledger([s.app_id for s in sources]).values())
    # One file left: nothing to do, and it says so.
    again = compact_iceberg(settings, store, ref)
    assert again.files_after == 1 and again.detail["skipped"] == "nothing to compact"
