"""Object lifecycle: rules model, plan (injectable clock) and a resumable apply, local backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lakehouse.lifecycle import (
    LifecycleError,
    RulesStore,
    apply,
    due_at,
    parse_config,
    placements,
    plan,
)
from lakehouse.objectstore import ObjectStore
from lakehouse.settings import Settings
from lakehouse.tiers import TierMap, get_resolved

DAY = timedelta(days=1)

CHAIN = {
    "Rules": [
        {
            "ID": "age-out",
            "Status": "Enabled",
            "Filter": {"Prefix": "checkpoints/"},
            "Transitions": [
                {"Days": 30, "StorageClass": "WARM"},
                {"Days": 90, "StorageClass": "COLD"},
            ],
            "Expiration": {"Days": 365},
        },
        {
            "ID": "temp",
            "Status": "Enabled",
            "Filter": {"Prefix": "temp/"},
            "Expiration": {"Days": 30},
        },
    ]
}


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def _run(st: Settings, store: ObjectStore, at: datetime) -> list[tuple[str, str, str | None]]:
    actions = plan(st, store, "landing", at=at)
    apply(st, store, actions, clock=lambda: at)
    return [(a.key, a.action, a.storage_class) for a in actions]


def test_rules_validate_with_rule_and_field_named() -> None:
    parse_config(CHAIN, tiers=["WARM", "COLD"])
    bad = {"Rules": [{"ID": "r1", "Status": "Enabled", "Expiration": {"Days": 0}}]}
    with pytest.raises(LifecycleError) as exc:
        parse_config(bad)
    assert exc.value.issues[0]["rule"] == "r1"
    assert exc.value.issues[0]["field"] == "Expiration.Days"
    with pytest.raises(LifecycleError, match="rule 'r2' field Status"):
        parse_config([{"ID": "r2", "Status": "On", "Expiration": {"Days": 3}}])
    with pytest.raises(LifecycleError, match=r"Transitions\.0\.StorageClass"):
        parse_config(
            [{"ID": "r3", "Status": "Enabled", "Transitions": [{"Days": 1, "StorageClass": "X"}]}],
            tiers=["WARM"],
        )
    with pytest.raises(LifecycleError, match="duplicate"):
        parse_config([{"ID": "a", "Status": "Enabled", "Expiration": {"Days": 1}}] * 2)
    with pytest.raises(LifecycleError, match="And"):
        parse_config(
            [
                {
                    "ID": "f",
                    "Status": "Enabled",
                    "Filter": {"Prefix": "a/", "ObjectSizeGreaterThan": 3},
                    "Expiration": {"Days": 1},
                }
            ]
        )


def test_days_round_up_to_next_midnight_utc() -> None:
    created = datetime(2026, 1, 1, 15, 30, tzinfo=UTC)
    assert due_at(created, 30) == datetime(2026, 2, 1, tzinfo=UTC)


def test_expiry_and_the_30_90_365_chain(tmp_path: Path, store: ObjectStore) -> None:
    st = _settings(tmp_path)
    RulesStore(store).put("landing", parse_config(CHAIN))
    store.put("landing", "temp/t.bin", b"tmp")
    store.put("landing", "checkpoints/c.bin", b"checkpoint")
    store.put("landing", "keep/k.bin", b"keep")
    t0 = datetime.now(UTC)
    assert plan(st, store, "landing", at=t0) == []
    assert _run(st, store, t0 + 32 * DAY) == [
        ("checkpoints/c.bin", "transition", "WARM"),
        ("temp/t.bin", "expire", None),
    ]
    assert store.head("archive-warm", "landing/checkpoints/c.bin").size == 10
    assert get_resolved(store, "landing", "checkpoints/c.bin") == b"checkpoint"
    assert _run(st, store, t0 + 32 * DAY) == []  # idempotent: nothing left to do
    assert _run(st, store, t0 + 92 * DAY) == [("checkpoints/c.bin", "transition", "COLD")]
    assert TierMap(store).resolve("landing", "checkpoints/c.bin") == (
        "archive-cold",
        "landing/checkpoints/c.bin",
        "COLD",
    )
    assert placements(store, "landing", ["checkpoints/c.bin"]) == {
        "checkpoints/c.bin": ["archive-cold/landing/checkpoints/c.bin"]
    }
    assert get_resolved(store, "landing", "checkpoints/c.bin") == b"checkpoint"
    assert _run(st, store, t0 + 367 * DAY) == [("checkpoints/c.bin", "expire", None)]
    assert placements(store, "landing", ["checkpoints/c.bin"]) == {"checkpoints/c.bin": []}
    assert TierMap(store).get("landing", "checkpoints/c.bin") is None
    assert [o.key for o in store.iter_objects("landing")] == ["keep/k.bin"]


def test_a_late_plan_jumps_straight_to_the_coldest_due_and_expiry_wins(
    tmp_path: Path, store: ObjectStore
) -> None:
    st = _settings(tmp_path)
    RulesStore(store).put("landing", parse_config(CHAIN))
    store.put("landing", "checkpoints/c.bin", b"c")
    t0 = datetime.now(UTC)
    assert [(a.action, a.storage_class) for a in plan(st, store, "landing", at=t0 + 100 * DAY)] == [
        ("transition", "COLD")
    ]
    assert [a.action for a in plan(st, store, "landing", at=t0 + 400 * DAY)] == ["expire"]


def test_prefix_size_filters_disabled_and_overlapping_rules(
    tmp_path: Path, store: ObjectStore
) -> None:
    st = _settings(tmp_path)
    rules = [
        {
            "ID": "big-logs",
            "Status": "Enabled",
            "Filter": {"And": {"Prefix": "logs/", "ObjectSizeGreaterThan": 5}},
            "Transitions": [{"Days": 10, "StorageClass": "WARM"}],
        },
        {
            "ID": "small",
            "Status": "Enabled",
            "Filter": {"ObjectSizeLessThan": 3},
            "Expiration": {"Days": 20},
        },
        {"ID": "off", "Status": "Disabled", "Expiration": {"Days": 1}},
        {
            "ID": "logs-expire",
            "Status": "Enabled",
            "Filter": {"Prefix": "logs/"},
            "Expiration": {"Days": 10},
        },
    ]
    config = parse_config(rules)
    store.put("landing", "logs/big.log", b"0123456789")
    store.put("landing", "logs/s.log", b"01")
    store.put("landing", "other/big.bin", b"0123456789")
    store.put("landing", "other/s.bin", b"01")
    t0 = datetime.now(UTC)
    assert plan(st, store, "landing", at=t0 + 5 * DAY, config=config) == []  # "off" does nothing
    got = {(a.key, a.action, a.rule) for a in plan(st, store, "landing", t0 + 12 * DAY, config)}
    # overlapping: expiration beats the transition on logs/big.log
    assert got == {
        ("logs/big.log", "expire", "logs-expire"),
        ("logs/s.log", "expire", "logs-expire"),
    }
    no_expiry = parse_config(rules[:3])
    later = {(a.key, a.action) for a in plan(st, store, "landing", t0 + 25 * DAY, no_expiry)}
    assert later == {
        ("logs/big.log", "transition"),
        ("logs/s.log", "expire"),
        ("other/s.bin", "expire"),
    }


@pytest.mark.parametrize("stop_after", range(0, 12))
def test_an_apply_killed_midway_resumes_and_every_object_is_in_one_place(
    tmp_path: Path, store: ObjectStore, stop_after: int
) -> None:
    st = _settings(tmp_path)
    RulesStore(store).put("landing", parse_config(CHAIN))
    keys = [f"checkpoints/{i}.bin" for i in range(3)]
    for i, k in enumerate(keys):
        store.put("landing", k, f"payload-{i}".encode())
    at = datetime.now(UTC) + 40 * DAY
    actions = plan(st, store, "landing", at=at)
    with pytest.raises(InterruptedError):
        apply(st, store, actions, clock=lambda: at, stop_after=stop_after)
    for k, places in placements(store, "landing", keys).items():
        assert len(places) <= 1 or places[0].startswith("landing/"), (k, places)
        assert get_resolved(store, "landing", k)  # readable at every point
    resumed = plan(st, store, "landing", at=at)
    outcome = apply(st, store, resumed, clock=lambda: at)
    assert outcome.transitioned + (len(keys) - len(resumed)) == len(keys)
    assert placements(store, "landing", keys) == {k: [f"archive-warm/landing/{k}"] for k in keys}
    assert plan(st, store, "landing", at=at) == []
    for i, k in enumerate(keys):
        assert get_resolved(store, "landing", k) == f"payload-{i}".encode()


def test_ingestion_reads_an_object_lifecycle_moved_to_a_tier(tmp_path: Path) -> None:
    """The tier map is the store layer's: a replay of a transitioned object still finds it."""
    from lakehouse.objectstore import open_object_store
    from lakehouse.routes import parse_routes
    from lakehouse.tables import SourceVersion, open_target
    from pipelines.ingestion import ingest_batch

    st = _settings(tmp_path)
    store = open_object_store(st)
    for b in ("landing", "lake"):
        store.create_bucket(b)
    info = store.put("landing", "checkpoints/c.csv", b"a,b\n1,x\n2,y\n")
    RulesStore(store).put("landing", parse_config(CHAIN))
    at = datetime.now(UTC) + 40 * DAY
    apply(st, store, plan(st, store, "landing", at=at), clock=lambda: at)
    assert TierMap(store).resolve("landing", "checkpoints/c.csv") is not None
    (route,) = parse_routes(
        'routes:\n  - {name: c, bucket: landing, glob: "checkpoints/*.csv", table: default.c}\n'
    )
    src = SourceVersion("landing", "checkpoints/c.csv", info.etag, "0000000000000001")
    ref = route.table_for(src.key)
    report = ingest_batch(st, store, ref, [src], "run-1", route=route)
    assert report.rows == 2 and report.ingested
    assert open_target(st, store, ref).row_count() == 2
