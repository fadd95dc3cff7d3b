"""Lifecycle through the service and Dagster: the rules API (both backends), GET of a
transitioned object, the lifecycle job, and its events, which ingestion ignores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from dagster import DagsterEventType, instance_for_test

from lakehouse.lifecycle import apply, plan
from lakehouse.routes import parse_routes
from pipelines.batches import pending_by_table
from pipelines.definitions import build_definitions
from pipelines.lifecycle import lifecycle_job, schedule_name
from pipelines.resources import LakewireResource
from storage_service.events import BucketEvent
from storage_service.stream import read_after_sync
from tests.helpers import NatsServer, Service, local_settings, wait_for

RULES = {
    "Rules": [
        {
            "ID": "temp",
            "Status": "Enabled",
            "Filter": {"Prefix": "temp/"},
            "Expiration": {"Days": 30},
        },
        {
            "ID": "warm",
            "Status": "Enabled",
            "Filter": {"Prefix": "checkpoints/"},
            "Transitions": [{"Days": 30, "StorageClass": "WARM"}],
        },
    ]
}


def test_rules_api_validates_refuses_table_locations_and_serves_transitioned_objects(
    service: Service,
) -> None:
    c = service.client
    url = "/api/buckets/landing/lifecycle"
    assert c.get(url).status_code == 404
    r = c.put(url, json=RULES)
    assert r.status_code == 200, r.text
    assert c.get(url).json()["Rules"][0]["ID"] == "temp"
    bad = {"Rules": [{"ID": "oops", "Status": "Enabled", "Expiration": {"Days": -1}}]}
    r = c.put(url, json=bad)
    assert r.status_code == 422
    assert r.json()["detail"][0]["rule"] == "oops"
    assert r.json()["detail"][0]["field"] == "Expiration.Days"
    unknown = {
        "Rules": [
            {
                "ID": "t",
                "Status": "Enabled",
                "Transitions": [{"Days": 1, "StorageClass": "GLACIER"}],
            }
        ]
    }
    r = c.put(url, json=unknown)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "Transitions.0.StorageClass"
    r = c.put("/api/buckets/lake/lifecycle", json=RULES)
    assert r.status_code == 422 and "table" in r.json()["detail"]
    assert c.put("/api/buckets/nope/lifecycle", json=RULES).status_code == 404
    assert c.get("/api/buckets/landing/lifecycle").json()["Rules"][1]["ID"] == "warm"

    c.put("/api/buckets/landing/objects/checkpoints/c.bin", content=b"checkpoint-bytes")
    c.put("/api/buckets/landing/objects/temp/t.bin", content=b"tmp")
    future = (datetime.now(UTC) + timedelta(days=40)).isoformat()
    planned = c.get("/api/buckets/landing/lifecycle/plan", params={"at": future}).json()
    assert [(p["object"], p["action"]) for p in planned] == [
        ("landing/checkpoints/c.bin", "transition"),
        ("landing/temp/t.bin", "expire"),
    ]
    assert (
        c.get("/api/buckets/landing/objects/temp/t.bin").status_code == 200
    )  # plan changed nothing

    rt = service.runtime
    at = datetime.now(UTC) + timedelta(days=40)
    apply(rt.settings, rt.store, plan(rt.settings, rt.store, "landing", at=at), clock=lambda: at)
    got = c.get("/api/buckets/landing/objects/checkpoints/c.bin")
    assert got.status_code == 200 and got.content == b"checkpoint-bytes"
    assert got.headers["x-amz-storage-class"] == "WARM"
    head = c.head("/api/buckets/landing/objects/checkpoints/c.bin")
    assert head.status_code == 200 and head.headers["x-amz-storage-class"] == "WARM"
    assert c.get("/api/buckets/landing/objects/temp/t.bin").status_code == 404

    assert c.delete(url).status_code == 204
    assert c.get(url).status_code == 404


def test_lifecycle_job_announces_actions_as_lifecycle_and_ingestion_ignores_them(
    tmp_path: Path, nats: NatsServer
) -> None:
    settings = local_settings(tmp_path, nats)
    with Service(settings) as svc:
        c = svc.client
        assert c.put("/api/buckets/landing/lifecycle", json=RULES).status_code == 200
        c.put("/api/buckets/landing/objects/temp/t.csv", content=b"a\n1\n")
        c.put("/api/buckets/landing/objects/checkpoints/c.csv", content=b"a\n2\n")
        wait_for(lambda: len(read_after_sync(settings, 0, 100, 2).events) >= 2, 20, "writes")
        first = read_after_sync(settings, 0, 100, 2).last_seq

        defs = build_definitions(settings)
        assert defs.get_schedule_def(schedule_name("landing")).cron_schedule == "0 3 * * *"

        at = (datetime.now(UTC) + timedelta(days=40)).isoformat()
        resource = LakewireResource(data_dir=str(settings.data_dir), nats_url=settings.nats_url)
        with instance_for_test() as instance:
            run = lifecycle_job.execute_in_process(
                run_config={
                    "ops": {"apply_lifecycle": {"config": {"bucket": "landing", "at": at}}}
                },
                instance=instance,
                resources={"lakewire": resource},
            )
            assert run.success
            (mat,) = [
                e.event_specific_data.materialization  # type: ignore[union-attr]
                for e in run.all_events
                if e.event_type == DagsterEventType.ASSET_MATERIALIZATION
            ]
            assert mat.metadata["expired"].value == 1
            assert mat.metadata["transitioned"].value == 1
            assert mat.metadata["misplaced"].value == []

        def lifecycle_events() -> list[BucketEvent] | None:
            evs = [
                e for e in read_after_sync(settings, first, 100, 2).events if e.bucket == "landing"
            ]
            names = {(e.event_name, e.key) for e in evs}
            want = {
                ("s3:ObjectRemoved:Delete", "temp/t.csv"),
                ("s3:ObjectRemoved:Delete", "checkpoints/c.csv"),
                ("s3:ObjectTransition:Complete", "checkpoints/c.csv"),
            }
            return evs if want <= names else None

        evs = wait_for(lifecycle_events, 20, "lifecycle events")
        assert all(e.is_lifecycle for e in evs), [(e.event_name, e.key, e.user_agent) for e in evs]
        expiry = next(e for e in evs if e.key == "temp/t.csv")
        assert expiry.user_agent == "Internal: [ILM-Expiry]"
        routes = parse_routes(
            'routes:\n  - {name: all, bucket: landing, glob: "*/**", table: "default.{dataset}", '
            "on_delete: delete_rows}\n"
        )
        assert pending_by_table(settings, routes, evs) == {}
        got = c.get("/api/buckets/landing/objects/checkpoints/c.csv")
        assert got.status_code == 200 and got.content == b"a\n2\n"


def test_rules_sensor_replans_a_bucket_when_its_rules_change(tmp_path: Path) -> None:
    from dagster import build_sensor_context

    from lakehouse.lifecycle import RulesStore, parse_config
    from lakehouse.objectstore import open_object_store
    from lakehouse.settings import Settings
    from pipelines.lifecycle import build_rules_sensor

    settings = Settings(data_dir=tmp_path / "data")
    store = open_object_store(settings)
    store.create_bucket("landing")
    store.put("landing", "temp/t.csv", b"x")
    resource = LakewireResource(data_dir=str(settings.data_dir))
    sensor_def = build_rules_sensor()
    with instance_for_test() as instance:

        def tick(cursor: str | None) -> tuple[list[str], str | None]:
            ctx = build_sensor_context(
                instance=instance, cursor=cursor, resources={"lakewire": resource}
            )
            result = sensor_def.evaluate_tick(ctx)
            buckets = [r.tags["lakewire/lifecycle"] for r in result.run_requests or []]
            return buckets, result.cursor

        assert tick(None)[0] == []
        RulesStore(store).put("landing", parse_config(RULES))
        buckets, cursor = tick(None)
        assert buckets == ["landing"]
        assert tick(cursor)[0] == []  # unchanged rules: nothing
        changed = {"Rules": RULES["Rules"][:1]}
        RulesStore(store).put("landing", parse_config(changed))
        buckets, _ = tick(cursor)
        assert buckets == ["landing"]
        run = lifecycle_job.execute_in_process(
            run_config={
                "ops": {"apply_lifecycle": {"config": {"bucket": "landing", "plan_only": True}}}
            },
            instance=instance,
            resources={"lakewire": resource},
        )
        assert run.success
    assert store.head("landing", "temp/t.csv")  # a plan-only run changes nothing
