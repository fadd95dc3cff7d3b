"""The sensor against a real nats-server, ticked as the daemon ticks it, and its runs executed
in-process on a real Dagster instance: grouping, caps, run keys, and no doubled rows from a
duplicate event, a reset cursor or a re-executed run."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    build_sensor_context,
    instance_for_test,
)

from lakehouse.settings import Settings
from lakehouse.tables import SourceVersion, TableRef, open_target
from pipelines.definitions import build_definitions
from pipelines.jobs import ingest_job
from pipelines.resources import LakewireResource
from pipelines.sensors import build_event_sensor
from storage_service.events import OBJECT_CREATED_PUT, OBJECT_REMOVED_DELETE, BucketEvent
from storage_service.stream import parse_cursor, publish_events
from tests.helpers import csv_bytes, delete_stream, land

ROUTES = """
routes:
  - name: per_dataset
    glob: "*/*.csv"
    table: "default.{dataset}"
  - name: audit
    glob: "audit/*.json"
    format: iceberg
    file_format: ndjson
    table: ops.audit
"""


@pytest.fixture
def env(pipeline_env: Callable[[str | None], Any]) -> Iterator[Any]:
    s, store = pipeline_env(ROUTES)
    with instance_for_test() as instance:
        yield s, store, instance


def event(src: SourceVersion, size: int = 100, name: str = OBJECT_CREATED_PUT) -> BucketEvent:
    from datetime import UTC, datetime

    return BucketEvent(name, src.bucket, src.key, size, src.etag, src.sequencer, datetime.now(UTC))


def publish(settings: Settings, events: list[BucketEvent], suffix: str = "") -> None:
    asyncio.run(publish_events(settings, events, suffix))


def tick(instance: DagsterInstance, cursor: str | None) -> Any:
    """One evaluation, as the daemon runs it: returns run_requests, cursor, skip_message."""
    sensor = build_event_sensor(5)
    ctx = build_sensor_context(
        instance=instance, cursor=cursor, resources={"lakewire": LakewireResource()}
    )
    return sensor.evaluate_tick(ctx)


def run_all(instance: DagsterInstance, result: Any) -> list[Any]:
    out = []
    for rr in result.run_requests:
        out.append(
            ingest_job.execute_in_process(
                run_config=rr.run_config,
                instance=instance,
                resources={"lakewire": LakewireResource()},
                tags=rr.tags,
                raise_on_error=False,
            )
        )
    return out


def test_tick_groups_by_route_and_table_caps_batches_and_keys_runs(env: Any, monkeypatch) -> None:
    settings, store, instance = env
    shop = [land(store, "landing", f"shop/{i}.csv", csv_bytes(2, start=i * 2)) for i in range(25)]
    web = [land(store, "landing", f"web/{i}.csv", csv_bytes(1)) for i in range(3)]
    stray = land(store, "landing", "loose.txt", b"x")
    publish(settings, [event(s) for s in [*shop, *web, stray]])
    publish(settings, [event(web[0], name=OBJECT_REMOVED_DELETE)])  # policy: ignore

    result = tick(instance, None)
    assert seq(result.cursor) == 30
    tables = sorted(r.tags["lakewire/table"] for r in result.run_requests)
    assert tables == ["delta.default.shop", "delta.default.web"]

    # One run per table whatever the caps: the run commits its backlog in capped commits.
    monkeypatch.setenv("LAKEWIRE_BATCH_MAX_OBJECTS", "10")
    capped = tick(instance, None)
    sizes = sorted(int(r.tags["lakewire/objects"]) for r in capped.run_requests)
    assert sizes == [3, 25]
    # Run keys come from the batch identity: the same tick gives the same keys.
    again = tick(instance, None)
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in capped.run_requests]

    shop_run = next(r for r in capped.run_requests if r.tags["lakewire/table"].endswith("shop"))
    (done,) = run_all(instance, _only(capped, shop_run))
    assert done.success
    materialized = [
        e for e in done.all_events if e.event_type == DagsterEventType.ASSET_MATERIALIZATION
    ]
    assert len(materialized) == 3  # 10 + 10 + 5 objects, one commit each
    assert open_target(settings, store, TableRef.parse("delta.default.shop")).row_count() == 50

    idle = tick(instance, "30")
    assert not idle.run_requests and "no new events after stream sequence 30" in idle.skip_message


def _only(result: Any, request: Any) -> Any:
    class One:
        run_requests = [request]

    return One()


def test_a_table_with_a_queued_run_gets_no_second_one_and_the_run_drains_to_the_tail(
    env: Any,
) -> None:
    settings, store, instance = env
    first = [land(store, "landing", f"shop/a{i}.csv", csv_bytes(1, start=i)) for i in range(3)]
    publish(settings, [event(s) for s in first])
    one = tick(instance, None)
    (request,) = one.run_requests
    # The daemon would submit it: queued, not started yet.
    instance.create_run_for_job(ingest_job, run_config=request.run_config, tags=request.tags)
    later = [land(store, "landing", f"shop/b{i}.csv", csv_bytes(1, start=10 + i)) for i in range(4)]
    publish(settings, [event(s) for s in later])
    two = tick(instance, one.cursor)
    assert seq(two.cursor) == 7 and two.run_requests == []  # the waiting run will take them
    # When the queued run starts it takes everything up to the stream's tail.
    (done,) = run_all(instance, one)
    assert done.success
    assert open_target(settings, store, TableRef.parse("delta.default.shop")).row_count() == 7


def test_duplicate_event_reset_cursor_and_rerun_never_double_rows(env: Any) -> None:
    settings, store, instance = env
    srcs = [land(store, "landing", f"shop/{i}.csv", csv_bytes(10, start=i * 10)) for i in range(5)]
    publish(settings, [event(s) for s in srcs])
    publish(settings, [event(srcs[0])])  # same Nats-Msg-Id: JetStream drops it
    publish(settings, [event(srcs[1])], "/again")  # a real second copy in the stream

    first = tick(instance, None)
    assert seq(first.cursor) == 6
    assert all(r.success for r in run_all(instance, first))
    ref = TableRef("delta", "default", "shop")
    assert open_target(settings, store, ref).row_count() == 50

    # A reset cursor replays the whole log: the successful run drained all of it, so nothing
    # is asked for; the same run executed again (the daemon would dedupe it by run key) and the
    # duplicate on its own add no rows either.
    replay = tick(instance, "0")
    assert replay.run_requests == []
    assert all(r.success for r in run_all(instance, first))
    assert tick(instance, "5").run_requests == []
    assert open_target(settings, store, ref).row_count() == 50

    mat = instance.get_latest_materialization_event(AssetKey(["delta", "default", "shop"]))
    assert mat is not None and mat.asset_materialization is not None
    md = mat.asset_materialization.metadata
    assert md["row_count"].value == 50 and md["route"].value == "per_dataset"
    assert "dagster/column_schema" in md and "last_source_objects" in md
    assert "created with" in str(md["schema_changes"].value)  # the schema history starts


def test_failed_run_re_executed_adds_rows_once(env: Any) -> None:
    settings, store, instance = env
    src = land(store, "landing", "shop/a.csv", csv_bytes(7))
    publish(settings, [event(src)])
    result = tick(instance, None)
    # The run fails before its commit (the routes file is broken while it runs) ...
    good = settings.routes_file.read_text()
    settings.routes_file.write_text("routes: [")
    failed = run_all(instance, result)
    assert not failed[0].success
    settings.routes_file.write_text(good)
    # ... and is executed again, twice: the rows land once.
    assert run_all(instance, result)[0].success
    assert run_all(instance, result)[0].success
    assert open_target(settings, store, TableRef("delta", "default", "shop")).row_count() == 7


def test_bad_object_fails_the_asset_check_and_good_ones_commit(env: Any) -> None:
    settings, store, instance = env
    good = land(store, "landing", "shop/good.csv", csv_bytes(4))
    bad = land(store, "landing", "shop/bad.csv", b"")
    publish(settings, [event(good), event(bad)])
    (run,) = run_all(instance, tick(instance, None))
    assert run.success
    assert open_target(settings, store, TableRef("delta", "default", "shop")).row_count() == 4
    checks = [
        e.dagster_event.event_specific_data
        for e in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    ]
    assert len(checks) == 1 and not checks[0].passed
    assert checks[0].check_name == "no_quarantined_objects"
    assert "shop/bad.csv: empty" in checks[0].description

    # The code location now declares the table with its check.
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    key = AssetKey(["delta", "default", "shop"])
    assert key in graph.get_all_asset_keys()
    assert any(k.asset_key == key for k in graph.asset_check_keys)


def test_removed_object_follows_route_policy_and_lifecycle_deletes_are_ignored(
    env: Any, tmp_path: Path
) -> None:
    settings, store, instance = env
    settings.routes_file.write_text(
        "routes:\n  - {name: shop, glob: 'shop/*.csv', table: default.shop, "
        "on_delete: delete_rows}\n"
        "  - {name: rest, glob: '*/*.csv', table: 'default.{dataset}'}\n"
    )
    shop = [land(store, "landing", f"shop/{i}.csv", csv_bytes(3, start=i * 3)) for i in range(3)]
    web = land(store, "landing", "web/a.csv", csv_bytes(4))
    publish(settings, [event(s) for s in [*shop, web]])
    assert all(r.success for r in run_all(instance, tick(instance, None)))

    store.delete("landing", "shop/0.csv")
    store.delete("landing", "web/a.csv")
    later = lambda s: SourceVersion(s.bucket, s.key, "", f"{int(s.sequencer, 16) + 1:016X}")  # noqa: E731
    publish(
        settings,
        [
            event(later(shop[0]), name=OBJECT_REMOVED_DELETE),
            event(later(web), name=OBJECT_REMOVED_DELETE),  # route policy: ignore
            event(later(shop[1]), name="s3:LifecycleExpiration:Delete"),  # never acted on
        ],
    )
    result = tick(instance, "4")
    assert [r.tags["lakewire/table"] for r in result.run_requests] == ["delta.default.shop"]
    assert all(r.success for r in run_all(instance, result))
    assert all(r.success for r in run_all(instance, tick(instance, "4")))  # re-run: idempotent
    assert open_target(settings, store, TableRef("delta", "default", "shop")).row_count() == 6
    assert open_target(settings, store, TableRef("delta", "default", "web")).row_count() == 4


def test_invalid_routes_file_fails_the_tick_and_keeps_the_cursor(env: Any) -> None:
    settings, store, instance = env
    src = land(store, "landing", "shop/a.csv", csv_bytes(2))
    publish(settings, [event(src)])
    settings.routes_file.write_text("routes:\n  - {name: a, glob: '*', table: nodot}\n")
    with pytest.raises(Exception, match="route 1 'a': table"):
        tick(instance, None)
    # The code location still loads (jobs, sensor, schedule), declaring no tables meanwhile.
    defs = build_definitions(settings)
    assert defs.resolve_job_def("ingest_job") is not None
    settings.routes_file.write_text(ROUTES)
    assert seq(tick(instance, None).cursor) == 1


def test_cursor_beyond_a_recreated_stream_starts_over(env: Any) -> None:
    settings, store, instance = env
    src = land(store, "landing", "shop/a.csv", csv_bytes(2))
    publish(settings, [event(src)])
    result = tick(instance, "1000")  # a cursor from before the stream was recreated
    assert seq(result.cursor) == 1 and len(result.run_requests) == 1


def test_trino_that_cannot_see_a_table_fails_its_check_not_the_ingestion(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers import free_port

    settings, store, instance = env
    # The platform's Trino, unreachable: registration is retried, then reported.
    monkeypatch.setenv("LAKEWIRE_TRINO_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("LAKEWIRE_TRINO_REGISTER_ATTEMPTS", "1")
    src = land(store, "landing", "shop/t.csv", csv_bytes(3))
    publish(settings, [event(src)])
    (run,) = run_all(instance, tick(instance, None))
    assert run.success
    assert open_target(settings, store, TableRef.parse("delta.default.shop")).row_count() == 3
    checks = [
        e.dagster_event.event_specific_data
        for e in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
        if e.dagster_event is not None
    ]
    trino = [c for c in checks if getattr(c, "check_name", None) == "visible_in_trino"]
    assert len(trino) == 1 and trino[0].passed is False
    assert "registering delta.default.shop in Trino" in (trino[0].description or "")


def test_events_a_run_drained_ahead_of_the_cursor_ask_for_no_second_run(env: Any) -> None:
    settings, store, instance = env
    first = [land(store, "landing", f"shop/f{i}.csv", csv_bytes(1, start=i)) for i in range(3)]
    publish(settings, [event(s) for s in first])
    one = tick(instance, None)
    later = [land(store, "landing", f"shop/l{i}.csv", csv_bytes(1, start=10 + i)) for i in range(2)]
    publish(settings, [event(s) for s in later])
    (done,) = run_all(instance, one)  # starts after the later events: drains all five
    assert done.success
    assert open_target(settings, store, TableRef.parse("delta.default.shop")).row_count() == 5
    two = tick(instance, one.cursor)
    assert seq(two.cursor) == 5 and two.run_requests == []  # nothing left that no run took
    # A new object after that is asked for as usual.
    publish(settings, [event(land(store, "landing", "shop/n.csv", csv_bytes(1, start=99)))])
    three = tick(instance, two.cursor)
    assert [r.tags["lakewire/table"] for r in three.run_requests] == ["delta.default.shop"]


def seq(cursor: str | None) -> int:
    return parse_cursor(cursor)[0]


def test_a_recreated_stream_is_read_whatever_the_old_streams_runs_drained(env: Any) -> None:
    """A drain mark is a sequence in one incarnation of the stream: after the stream is
    deleted and recreated, new events numbered below an old mark still get their run (the
    fault suite found them ignored until the new stream outgrew the old marks)."""
    settings, store, instance = env
    old = [land(store, "landing", f"shop/o{i}.csv", csv_bytes(1, start=i)) for i in range(4)]
    publish(settings, [event(s) for s in old])
    one = tick(instance, None)
    assert all(r.success for r in run_all(instance, one))  # drained to 4 in the old stream
    delete_stream(settings)
    new = land(store, "landing", "shop/new.csv", csv_bytes(1, start=50))
    publish(settings, [event(new)])  # sequence 1 of the new stream
    two = tick(instance, one.cursor)
    assert [r.tags["lakewire/table"] for r in two.run_requests] == ["delta.default.shop"]
    assert all(r.success for r in run_all(instance, two))
    assert open_target(settings, store, TableRef.parse("delta.default.shop")).row_count() == 5


def test_objects_of_a_tables_failed_first_run_are_taken_by_its_next_run(env: Any) -> None:
    """No run of the table ever succeeded, so there is no drain mark to start after: the next
    run starts where the failed one did (the fault suite's killed first run lost its objects
    to the next runs, which started at their own events)."""
    settings, store, instance = env
    a, b = (
        land(store, "landing", f"shop/{n}.csv", csv_bytes(2, start=i * 2))
        for i, n in enumerate("ab")
    )
    publish(settings, [event(a)])
    one = tick(instance, None)
    good = settings.routes_file.read_text()
    settings.routes_file.write_text("routes: [")  # the run fails before it commits
    assert not run_all(instance, one)[0].success
    settings.routes_file.write_text(good)
    publish(settings, [event(b)])
    two = tick(instance, one.cursor)
    (request,) = two.run_requests
    assert request.run_config["ops"]["ingest_objects"]["config"]["drain_from_seq"] == 1
    assert all(r.success for r in run_all(instance, two))
    assert open_target(settings, store, TableRef.parse("delta.default.shop")).row_count() == 4


def test_objects_of_a_failed_run_are_taken_by_the_next_run_of_the_table(env: Any) -> None:
    settings, store, instance = env
    ref = TableRef.parse("delta.default.shop")
    a, b, c = (
        land(store, "landing", f"shop/{n}.csv", csv_bytes(2, start=i * 2))
        for i, n in enumerate("abc")
    )
    publish(settings, [event(a)])
    one = tick(instance, None)
    assert all(r.success for r in run_all(instance, one))
    publish(settings, [event(b)])
    two = tick(instance, one.cursor)
    good = settings.routes_file.read_text()
    settings.routes_file.write_text("routes: [")  # the run fails before it commits
    assert not run_all(instance, two)[0].success
    settings.routes_file.write_text(good)
    publish(settings, [event(c)])
    three = tick(instance, two.cursor)
    (request,) = three.run_requests
    assert request.run_config["ops"]["ingest_objects"]["config"]["drain_from_seq"] == 2
    assert all(r.success for r in run_all(instance, three))
    assert open_target(settings, store, ref).row_count() == 6  # a, b and c, each once
