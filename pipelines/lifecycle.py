"""Object lifecycle run by Dagster: a job per bucket with rules, on a daily schedule and on demand.

Each run plans (``lakehouse.lifecycle.plan``), applies the plan and announces every action on
the bucket events stream, then records the plan and the outcome (objects and bytes expired and
transitioned, per rule) as metadata of the ``lifecycle/<bucket>`` asset. The run fails if the
apply left an object in two places or none (the exactly-one-place check).

No ``from __future__ import annotations`` here: Dagster reads config types from annotations.
"""

import asyncio
import contextlib
import json
import re
from datetime import UTC, datetime
from typing import Any

from dagster import (
    AssetMaterialization,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Failure,
    MetadataValue,
    OpExecutionContext,
    RunRequest,
    ScheduleDefinition,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    job,
    op,
    sensor,
)
from dagster import Config as DagsterConfig

from lakehouse.lifecycle import (
    RULES_PREFIX,
    Action,
    Clock,
    Outcome,
    RulesStore,
    abort_due_uploads,
    apply,
    placements,
    plan,
    utcnow,
)
from lakehouse.objectstore import ObjectNotFound, ObjectStore
from lakehouse.settings import Settings
from lakehouse.tiers import SYSTEM_BUCKET
from pipelines.resources import LakewireResource
from pipelines.run_logs import with_json_logs
from storage_service.events import BucketEvent, sequencer_for
from storage_service.stream import publish_events


def lifecycle_events(store: ObjectStore, outcome: Outcome, now: datetime) -> list[BucketEvent]:
    """The notifications an apply owes. On the local backend the watcher announces removals
    itself (it reads lifecycle's markers, so they carry ``Internal: [ILM-Expiry]``); the
    ``s3:ObjectTransition:Complete`` of a verified copy is always Lakewire's to publish."""
    watched = not store.native_events  # the service's watcher announces this store's changes
    out = []
    for i, (name, bucket, key, size, etag, agent) in enumerate(outcome.events):
        if watched and name.startswith("s3:ObjectRemoved:"):
            continue
        out.append(
            BucketEvent(
                event_name=name,
                bucket=bucket,
                key=key,
                size=size,
                etag=etag,
                sequencer=sequencer_for(int(now.timestamp() * 1e9) + i),
                event_time=now,
                user_agent=agent,
            )
        )
    return out


def run_lifecycle(
    settings: Settings,
    store: ObjectStore,
    bucket: str,
    at: datetime | None = None,
    clock: Clock = utcnow,
    announce: bool = True,
) -> tuple[list[Action], Outcome]:
    now = at or clock()
    actions = plan(settings, store, bucket, at=now)
    outcome = apply(settings, store, actions, clock=lambda: now)
    config = RulesStore(store).get(bucket)
    if config is not None and any(r.AbortIncompleteMultipartUpload for r in config.Rules):
        outcome.aborted_uploads = len(abort_due_uploads(store, bucket, config, now))
    events = lifecycle_events(store, outcome, now)
    if announce and events and settings.nats_url:
        asyncio.run(publish_events(settings, events))
    return actions, outcome


def misplaced(store: ObjectStore, bucket: str, actions: list[Action]) -> list[str]:
    """Acted-on objects not where the plan put them: a transitioned one in exactly one place
    (its tier), an expired one nowhere."""
    bad = []
    where = placements(store, bucket, [a.key for a in actions])
    for a in actions:
        places = where[a.key]
        if (a.action == "expire" and places) or (a.action == "transition" and len(places) != 1):
            bad.append(f"{a.bucket}/{a.key}: {places}")
    return bad


class LifecycleConfig(DagsterConfig):
    bucket: str
    at: str | None = None  # ISO 8601: apply as of this time (default: now)
    plan_only: bool = False  # record the plan, change nothing (the rules sensor's runs)


@op(description="Plan and apply a bucket's lifecycle rules; announce each action.")
def apply_lifecycle(
    context: OpExecutionContext, config: LifecycleConfig, lakewire: LakewireResource
) -> None:
    settings = lakewire.settings()
    store = lakewire.object_store()
    at = datetime.fromisoformat(config.at) if config.at else None
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    if config.plan_only:
        actions, outcome = plan(settings, store, config.bucket, at=at), Outcome()
    else:
        actions, outcome = run_lifecycle(settings, store, config.bucket, at=at)
    done = [] if config.plan_only else [a for a in actions if a.rule != "(resume)"]
    bad = misplaced(store, config.bucket, done)
    metadata: dict[str, Any] = {
        "plan_only": config.plan_only,
        "plan": MetadataValue.json([a.as_dict() for a in actions][:1000]),
        "actions": len(actions),
        "outcome": MetadataValue.json(outcome.as_dict()),
        "expired": outcome.expired,
        "expired_bytes": outcome.expired_bytes,
        "transitioned": outcome.transitioned,
        "transitioned_bytes": outcome.transitioned_bytes,
        "aborted_uploads": outcome.aborted_uploads,
        "misplaced": MetadataValue.json(bad),
    }
    context.log_event(
        AssetMaterialization(asset_key=["lifecycle", config.bucket], metadata=metadata)
    )
    if bad:
        raise Failure(f"apply left objects in two places or none: {bad[:20]}", metadata=metadata)


@job(description="Object lifecycle of one bucket (config: bucket, optional at).")
def lifecycle_job() -> None:
    apply_lifecycle()


def schedule_name(bucket: str) -> str:
    return "lifecycle_" + re.sub(r"[^A-Za-z0-9_]", "_", bucket)


def lifecycle_schedules(settings: Settings, store: ObjectStore) -> list[ScheduleDefinition]:
    """One daily schedule per bucket that has rules (read when the code location loads)."""
    return [
        ScheduleDefinition(
            name=schedule_name(bucket),
            job=lifecycle_job,
            cron_schedule=settings.lifecycle_schedule,
            run_config=with_json_logs({"ops": {"apply_lifecycle": {"config": {"bucket": bucket}}}}),
            default_status=DefaultScheduleStatus.RUNNING,
            description=f"Daily lifecycle of bucket {bucket}.",
        )
        for bucket in RulesStore(store).buckets()
    ]


def rules_versions(store: ObjectStore) -> dict[str, str]:
    """Each bucket with rules and the etag of its rules document."""
    out = {}
    for bucket in RulesStore(store).buckets():
        with contextlib.suppress(ObjectNotFound):
            out[bucket] = store.head(SYSTEM_BUCKET, f"{RULES_PREFIX}{bucket}.json").etag
    return out


def build_rules_sensor(interval_seconds: int = 30) -> SensorDefinition:
    """Re-plans a bucket when its rules change: a plan-only run whose metadata is the new plan
    (nothing moves until the schedule, or an on-demand run, applies it)."""

    @sensor(
        name="lifecycle_rules",
        job=lifecycle_job,
        minimum_interval_seconds=interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description="Plans a bucket's lifecycle again when its rules change.",
    )
    def lifecycle_rules(
        context: SensorEvaluationContext, lakewire: LakewireResource
    ) -> SensorResult | SkipReason:
        seen: dict[str, str] = json.loads(context.cursor or "{}")
        now = rules_versions(lakewire.object_store())
        changed = sorted(b for b, etag in now.items() if seen.get(b) != etag)
        if not changed and now == seen:
            return SkipReason("no lifecycle rules changed")
        requests = [
            RunRequest(
                run_key=f"lifecycle-plan:{b}:{now[b]}",
                run_config=with_json_logs(
                    {"ops": {"apply_lifecycle": {"config": {"bucket": b, "plan_only": True}}}}
                ),
                tags={"lakewire/lifecycle": b},
            )
            for b in changed
        ]
        return SensorResult(run_requests=requests, cursor=json.dumps(now))

    return lifecycle_rules
