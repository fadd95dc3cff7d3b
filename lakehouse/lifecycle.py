"""Object lifecycle: rules in the S3 lifecycle JSON shape, a plan, and an apply that resumes.

- The rules model is the ``LifecycleConfiguration`` JSON that AWS and ``mc ilm rule import``
  accept (``{"Rules": [{"ID", "Status", "Filter", "Expiration", "Transitions", ...}]}``).
  :func:`parse_config` validates it and names the rule and field of every problem.
- Rules are stored per bucket in the system bucket (``lifecycle/rules/<bucket>.json``), so the
  service, the Dagster code location and the CLI read the same rules on both backends.
- :func:`plan` lists what is due at a given time (the clock is a parameter) and changes nothing;
  :func:`apply` executes a plan idempotently: a transition is recorded, copied, verified (size
  and etag) and only then is the source removed, so an apply killed at any point resumes from
  its records and every object ends in exactly one place.
- S3 precedence: expiration wins over any transition; among due transitions the coldest class
  wins; a disabled rule does nothing. Days count from the object's creation, rounded up to the
  next midnight UTC, as S3 does.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lakehouse.objectstore import BucketNotFound, ObjectInfo, ObjectNotFound, ObjectStore
from lakehouse.settings import Settings
from lakehouse.tiers import (
    EXPIRY_AGENT,
    SYSTEM_BUCKET,
    TRANSITION_AGENT,
    TierMap,
    TierRecord,
    tier_key,
    version_tier_key,
)

RULES_PREFIX = "lifecycle/rules/"
# What an S3/MinIO store's own notifications carry as source.userAgent for lifecycle's requests
# (DECISIONS): consumers, ingestion first, tell lifecycle from user deletes by it.
USER_AGENT = "lakewire-lifecycle/0.1.0"
SPOOL_ABOVE_BYTES = 8 * 1024**2  # local copies of larger objects go through a spool file
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class LifecycleError(ValueError):
    """Invalid rules; ``issues`` name the rule and the field of each problem."""

    def __init__(self, issues: list[dict[str, str]]) -> None:
        self.issues = issues
        super().__init__(
            "; ".join(f"rule {i['rule']!r} field {i['field']}: {i['message']}" for i in issues)
        )


# -- the model (S3 names, exactly) ------------------------------------------------------------
class _S3(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TagFilter(_S3):
    Key: str = Field(min_length=1)
    Value: str = ""


class AndFilter(_S3):
    Prefix: str | None = None
    Tags: list[TagFilter] = []
    ObjectSizeGreaterThan: int | None = Field(default=None, ge=0)
    ObjectSizeLessThan: int | None = Field(default=None, gt=0)


class ObjectFilter(_S3):
    Prefix: str | None = None
    Tag: TagFilter | None = None
    ObjectSizeGreaterThan: int | None = Field(default=None, ge=0)
    ObjectSizeLessThan: int | None = Field(default=None, gt=0)
    And: AndFilter | None = None

    @model_validator(mode="after")
    def _one(self) -> ObjectFilter:
        given = [
            n
            for n in ("Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan", "And")
            if getattr(self, n) is not None
        ]
        if len(given) > 1:
            raise ValueError(f"one of {', '.join(given)} only; combine conditions with And")
        return self

    @property
    def tags(self) -> list[TagFilter]:
        if self.And is not None:
            return self.And.Tags
        return [self.Tag] if self.Tag is not None else []

    def matches(self, key: str, size: int, tags: Mapping[str, str]) -> bool:
        """Prefix and size are checked first: ``tags`` may be :class:`LazyTags`, fetched from
        the store only for an object the rest of the filter already matched."""
        prefix, gt, lt = self.Prefix, self.ObjectSizeGreaterThan, self.ObjectSizeLessThan
        want_tags: list[TagFilter] = []
        if self.Tag is not None:
            want_tags = [self.Tag]
        if self.And is not None:
            prefix, want_tags = self.And.Prefix, self.And.Tags
            gt, lt = self.And.ObjectSizeGreaterThan, self.And.ObjectSizeLessThan
        if prefix and not key.startswith(prefix):
            return False
        if gt is not None and not size > gt:
            return False
        if lt is not None and not size < lt:
            return False
        return all(tags.get(t.Key) == t.Value for t in want_tags)


class ExpirationAction(_S3):
    Days: int | None = Field(default=None, gt=0)
    Date: datetime | None = None
    ExpiredObjectDeleteMarker: bool | None = None

    @model_validator(mode="after")
    def _one(self) -> ExpirationAction:
        n = sum(x is not None for x in (self.Days, self.Date, self.ExpiredObjectDeleteMarker))
        if n != 1:
            raise ValueError("exactly one of Days, Date, ExpiredObjectDeleteMarker")
        return self


class TransitionAction(_S3):
    Days: int | None = Field(default=None, ge=0)
    Date: datetime | None = None
    StorageClass: str = Field(min_length=1)

    @model_validator(mode="after")
    def _one(self) -> TransitionAction:
        if (self.Days is None) == (self.Date is None):
            raise ValueError("exactly one of Days, Date")
        return self


class NoncurrentExpiration(_S3):
    NoncurrentDays: int = Field(gt=0)
    NewerNoncurrentVersions: int | None = Field(default=None, gt=0)


class NoncurrentTransition(_S3):
    NoncurrentDays: int = Field(ge=0)
    StorageClass: str = Field(min_length=1)
    NewerNoncurrentVersions: int | None = Field(default=None, gt=0)


class AbortIncompleteUploads(_S3):
    DaysAfterInitiation: int = Field(gt=0)


class Rule(_S3):
    ID: str = Field(min_length=1, max_length=255)
    Status: Literal["Enabled", "Disabled"]
    Filter: ObjectFilter | None = None
    Prefix: str | None = None  # the legacy top-level prefix AWS still accepts
    Expiration: ExpirationAction | None = None
    Transitions: list[TransitionAction] = []
    NoncurrentVersionExpiration: NoncurrentExpiration | None = None
    NoncurrentVersionTransitions: list[NoncurrentTransition] = []
    AbortIncompleteMultipartUpload: AbortIncompleteUploads | None = None

    @model_validator(mode="after")
    def _has_action(self) -> Rule:
        if not (
            self.Expiration
            or self.Transitions
            or self.NoncurrentVersionExpiration
            or self.NoncurrentVersionTransitions
            or self.AbortIncompleteMultipartUpload
        ):
            raise ValueError("a rule needs at least one action")
        if self.Filter is not None and self.Prefix is not None:
            raise ValueError("Filter and the legacy Prefix are exclusive")
        if self.AbortIncompleteMultipartUpload is not None and self.Filter and self.Filter.tags:
            # as AWS: an unfinished upload has no tags yet, so a tag filter could never match
            raise ValueError("AbortIncompleteMultipartUpload cannot be combined with a tag filter")
        return self

    @property
    def enabled(self) -> bool:
        return self.Status == "Enabled"

    def matches(self, key: str, size: int, tags: Mapping[str, str]) -> bool:
        if self.Filter is not None:
            return self.Filter.matches(key, size, tags)
        return key.startswith(self.Prefix or "")


class LifecycleConfiguration(_S3):
    Rules: list[Rule] = []

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=False)


def parse_config(raw: Any, tiers: Iterable[str] | None = None) -> LifecycleConfiguration:
    """Validated rules; :class:`LifecycleError` names the rule (its ID, or its index) and field.

    ``tiers``: the storage classes a transition may name (settings); others are refused."""
    if isinstance(raw, (bytes, str)):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise LifecycleError([{"rule": "-", "field": "-", "message": str(exc)}]) from exc
    if isinstance(raw, list):
        raw = {"Rules": raw}
    try:
        config = LifecycleConfiguration.model_validate(raw)
    except ValidationError as exc:
        issues = []
        rules = raw.get("Rules") if isinstance(raw, dict) else None
        for err in exc.errors():
            loc = list(err["loc"])
            name = "-"
            if len(loc) >= 2 and loc[0] == "Rules" and isinstance(loc[1], int):
                name = f"#{loc[1] + 1}"
                if isinstance(rules, list) and isinstance(rules[loc[1]], dict):
                    name = str(rules[loc[1]].get("ID") or name)
                loc = loc[2:]
            issues.append(
                {
                    "rule": name,
                    "field": ".".join(str(p) for p in loc) or "(rule)",
                    "message": err["msg"],
                }
            )
        raise LifecycleError(issues) from exc
    issues = []
    seen: set[str] = set()
    known = set(tiers) if tiers is not None else None
    for rule in config.Rules:
        if rule.ID in seen:
            issues.append({"rule": rule.ID, "field": "ID", "message": "duplicate rule ID"})
        seen.add(rule.ID)
        for i, t in enumerate(rule.Transitions):
            if known is not None and t.StorageClass not in known:
                issues.append(
                    {
                        "rule": rule.ID,
                        "field": f"Transitions.{i}.StorageClass",
                        "message": f"unknown storage class {t.StorageClass!r} "
                        f"(tiers: {', '.join(sorted(known)) or 'none'})",
                    }
                )
    if issues:
        raise LifecycleError(issues)
    return config


# -- where rules may not go ---------------------------------------------------------------------
def refused_bucket(settings: Settings, bucket: str) -> str | None:
    """Why lifecycle rules are refused on a bucket, or None: tables age by table maintenance."""
    if bucket == settings.lake_bucket:
        return f"'{bucket}' holds the lake's tables; tables age through table maintenance"
    if bucket == SYSTEM_BUCKET:
        return f"'{bucket}' is Lakewire's system bucket"
    if bucket in settings.lifecycle_tiers.values():
        return f"'{bucket}' is a lifecycle tier; rules apply to an object's own bucket"
    return None


# -- storage ---------------------------------------------------------------------------------
class RulesStore:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def get(self, bucket: str) -> LifecycleConfiguration | None:
        try:
            raw = self.store.get_bytes(SYSTEM_BUCKET, f"{RULES_PREFIX}{bucket}.json")
        except (ObjectNotFound, BucketNotFound):
            return None
        return LifecycleConfiguration.model_validate_json(raw)

    def put(self, bucket: str, config: LifecycleConfiguration) -> None:
        if not self.store.bucket_exists(SYSTEM_BUCKET):
            self.store.create_bucket(SYSTEM_BUCKET)
        body = json.dumps(config.to_json()).encode()
        self.store.put(SYSTEM_BUCKET, f"{RULES_PREFIX}{bucket}.json", body)

    def delete(self, bucket: str) -> bool:
        try:
            self.store.delete(SYSTEM_BUCKET, f"{RULES_PREFIX}{bucket}.json")
        except (ObjectNotFound, BucketNotFound):
            return False
        return True

    def buckets(self) -> list[str]:
        if not self.store.bucket_exists(SYSTEM_BUCKET):
            return []
        return sorted(
            i.key[len(RULES_PREFIX) : -len(".json")]
            for i in self.store.iter_objects(SYSTEM_BUCKET, RULES_PREFIX)
            if i.key.endswith(".json")
        )


class LazyTags(Mapping[str, str]):
    """An object's tags, read from the store on first use: a plan over 100,000 objects asks
    for tags (one request each on S3) only where a tag filter is what is left to decide."""

    def __init__(self, fetch: Callable[[], dict[str, str]]) -> None:
        self._fetch = fetch
        self._tags: dict[str, str] | None = None

    def _get(self) -> dict[str, str]:
        if self._tags is None:
            try:
                self._tags = self._fetch()
            except (ObjectNotFound, BucketNotFound):
                self._tags = {}  # gone since the listing: nothing matches a tag
        return self._tags

    def __getitem__(self, key: str) -> str:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


def _tags_of(store: ObjectStore, bucket: str, key: str) -> LazyTags:
    return LazyTags(lambda: store.get_tags(bucket, key))


# -- planning -------------------------------------------------------------------------------------
ActionKind = Literal["expire", "transition"]


@dataclass(frozen=True)
class Action:
    bucket: str
    key: str
    rule: str
    action: ActionKind
    size: int
    etag: str
    storage_class: str | None = None  # transition: the class it moves to
    target: str | None = None  # transition: tier bucket
    current_class: str = "STANDARD"
    version_id: str | None = None  # a noncurrent version (NoncurrentVersionTransitions)
    noncurrent_since: datetime | None = None  # ... and when it became noncurrent

    @property
    def target_key(self) -> str:
        if self.version_id is not None:
            return version_tier_key(self.bucket, self.key, self.version_id)
        return tier_key(self.bucket, self.key)

    def as_dict(self) -> dict[str, Any]:
        return {
            "object": f"{self.bucket}/{self.key}",
            "version_id": self.version_id,
            "rule": self.rule,
            "action": self.action,
            "bytes": self.size,
            "target": self.target and f"{self.target}/{self.target_key}",
            "storage_class": self.storage_class,
            "from_class": self.current_class,
        }


def due_at(created: datetime, days: int) -> datetime:
    """S3: creation + days, rounded up to the next midnight UTC."""
    t = created.astimezone(UTC) + timedelta(days=days)
    midnight = t.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight if midnight == t else midnight + timedelta(days=1)


def _is_due(days: int | None, date: datetime | None, created: datetime, now: datetime) -> bool:
    if date is not None:
        return now >= (date if date.tzinfo else date.replace(tzinfo=UTC))
    return days is not None and now >= due_at(created, days)


@dataclass(frozen=True)
class _Obj:
    key: str
    size: int
    etag: str
    created: datetime
    storage_class: str


def decide(
    rules: list[Rule],
    obj: _Obj,
    now: datetime,
    order: list[str],
    bucket: str,
    tiers: dict[str, str],
    tags: Mapping[str, str] | None = None,
) -> Action | None:
    """The one action due for an object under S3 precedence, or None."""
    live = [r for r in rules if r.enabled and r.matches(obj.key, obj.size, tags or {})]
    for r in live:  # expiration beats every transition
        e = r.Expiration
        if e is not None and _is_due(e.Days, e.Date, obj.created, now):
            return Action(
                bucket,
                obj.key,
                r.ID,
                "expire",
                obj.size,
                obj.etag,
                current_class=obj.storage_class,
            )
    rank = {c: i for i, c in enumerate(order)}
    here = rank.get(obj.storage_class, -1)
    best: tuple[int, str, str] | None = None  # (rank, class, rule)
    for r in live:
        for t in r.Transitions:
            if not _is_due(t.Days, t.Date, obj.created, now):
                continue
            cls_rank = rank.get(t.StorageClass, -1)
            if cls_rank > here and (best is None or cls_rank > best[0]):
                best = (cls_rank, t.StorageClass, r.ID)
    if best is None:
        return None
    return Action(
        bucket,
        obj.key,
        best[2],
        "transition",
        obj.size,
        obj.etag,
        storage_class=best[1],
        target=tiers[best[1]],
        current_class=obj.storage_class,
    )


def plan(
    settings: Settings,
    store: ObjectStore,
    bucket: str,
    at: datetime | None = None,
    config: LifecycleConfiguration | None = None,
) -> list[Action]:
    """Every action due in ``bucket`` at ``at`` (now by default). Changes nothing."""
    now = at or utcnow()
    config = config if config is not None else RulesStore(store).get(bucket)
    if config is None or not config.Rules:
        return []
    tiers = settings.lifecycle_tiers
    order = list(tiers)
    tmap = TierMap(store)
    records = {r.key: r for r in tmap.records(bucket)}
    out: list[Action] = []
    for info in store.iter_objects(bucket):
        rec = records.pop(info.key, None)
        if rec is not None and rec.state == "done":
            rec = None  # the key was written again after its transition: a new object
        if rec is not None:  # a transition in flight: finish it first
            out.append(
                Action(
                    bucket,
                    info.key,
                    "(resume)",
                    "transition",
                    info.size,
                    info.etag,
                    rec.storage_class,
                    rec.tier_bucket,
                )
            )
            continue
        obj = _Obj(info.key, info.size, info.etag, info.last_modified, "STANDARD")
        tags = _tags_of(store, bucket, info.key)
        act = decide(config.Rules, obj, now, order, bucket, tiers, tags)
        if act is not None:
            out.append(act)
    for rec in records.values():  # objects that live in a tier
        if rec.state != "done":
            out.append(
                Action(
                    bucket,
                    rec.key,
                    "(resume)",
                    "transition",
                    rec.size,
                    rec.etag,
                    rec.storage_class,
                    rec.tier_bucket,
                    current_class=rec.storage_class,
                )
            )
            continue
        obj = _Obj(rec.key, rec.size, rec.etag, rec.modified, rec.storage_class)
        tags = _tags_of(store, rec.tier_bucket, rec.tier_key)  # they moved with the object
        act = decide(config.Rules, obj, now, order, bucket, tiers, tags)
        if act is not None:
            out.append(act)
    if store.kind == "s3" and any(
        r.enabled and r.NoncurrentVersionTransitions for r in config.Rules
    ):
        out += plan_noncurrent(settings, store, bucket, now, config)
    out.sort(key=lambda a: (a.key, a.action, a.version_id or ""))
    return out


# -- noncurrent versions (S3 backend, versioned buckets) ----------------------------------------
@dataclass(frozen=True)
class _Version:
    key: str
    version_id: str
    size: int
    etag: str
    since: datetime  # when it became noncurrent: its successor's creation
    newer: int  # noncurrent versions newer than this one (NewerNoncurrentVersions)


def _noncurrent_versions(store: ObjectStore, bucket: str) -> Iterator[_Version]:
    """Every noncurrent version of every key, with the moment it became noncurrent (S3 counts
    ``NoncurrentDays`` from there) and how many noncurrent versions are newer."""
    client = store.client  # type: ignore[attr-defined]
    by_key: dict[str, list[dict[str, Any]]] = {}
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in page.get("Versions", []):
            by_key.setdefault(v["Key"], []).append(v)
        for m in page.get("DeleteMarkers", []):
            by_key.setdefault(m["Key"], []).append({**m, "marker": True})
    for key, entries in by_key.items():
        # newest first; a stable sort keeps the server's order where timestamps tie
        entries.sort(key=lambda e: (not e["IsLatest"], -e["LastModified"].timestamp()))
        newer = 0
        for successor, e in pairwise(entries):
            if e.get("marker"):
                continue
            yield _Version(
                key,
                e["VersionId"],
                int(e["Size"]),
                e["ETag"].strip('"'),
                successor["LastModified"],
                newer,
            )
            newer += 1


def _version_tags(client: Any, bucket: str, key: str, version_id: str) -> dict[str, str]:
    resp = client.get_object_tagging(Bucket=bucket, Key=key, VersionId=version_id)
    return {t["Key"]: t["Value"] for t in resp.get("TagSet", [])}


def decide_noncurrent(
    rules: list[Rule],
    v: _Version,
    now: datetime,
    order: list[str],
    here: str,
    tags: Mapping[str, str],
) -> tuple[str, str] | None:
    """``(rule, storage class)`` a noncurrent version moves to now, or None: a due
    ``NoncurrentVersionExpiration`` wins (the store enforces it), then the coldest due class."""
    live = [r for r in rules if r.enabled and r.matches(v.key, v.size, tags)]
    for r in live:
        ne = r.NoncurrentVersionExpiration
        keep = ne.NewerNoncurrentVersions if ne is not None else None
        if ne and now >= due_at(v.since, ne.NoncurrentDays) and (keep is None or v.newer >= keep):
            return None
    rank = {c: i for i, c in enumerate(order)}
    best: tuple[int, str, str] | None = None
    for r in live:
        for t in r.NoncurrentVersionTransitions:
            keep = t.NewerNoncurrentVersions
            if now < due_at(v.since, t.NoncurrentDays) or (keep is not None and v.newer < keep):
                continue
            cls_rank = rank.get(t.StorageClass, -1)
            if cls_rank > rank.get(here, -1) and (best is None or cls_rank > best[0]):
                best = (cls_rank, t.StorageClass, r.ID)
    return (best[2], best[1]) if best else None


def plan_noncurrent(
    settings: Settings,
    store: ObjectStore,
    bucket: str,
    now: datetime,
    config: LifecycleConfiguration,
) -> list[Action]:
    """Noncurrent versions due a ``NoncurrentVersionTransitions`` move, those already in a
    tier that are due a colder one, and moves in flight (resumed first)."""
    tiers = settings.lifecycle_tiers
    order = list(tiers)
    tmap = TierMap(store)
    client = store.client  # type: ignore[attr-defined]
    out: list[Action] = []

    def act(v: _Version, rule: str, cls: str, current: str) -> Action:
        return Action(
            bucket,
            v.key,
            rule,
            "transition",
            v.size,
            v.etag,
            cls,
            tiers[cls],
            current,
            v.version_id,
            v.since,
        )

    records = tmap.version_records(bucket)
    recorded = {(r.key, r.version_id) for r in records}
    for rec in records:
        assert rec.version_id is not None
        v = _Version(rec.key, rec.version_id, rec.size, rec.etag, rec.modified, 1 << 30)
        if rec.state != "done":
            out.append(act(v, "(resume)", rec.storage_class, rec.storage_class))
            continue
        tags = _tags_of(store, rec.tier_bucket, rec.tier_key)
        due = decide_noncurrent(config.Rules, v, now, order, rec.storage_class, tags)
        if due is not None:
            out.append(act(v, due[0], due[1], rec.storage_class))
    for v in _noncurrent_versions(store, bucket):
        if (v.key, v.version_id) in recorded:
            continue  # a move in flight, listed above
        tags = LazyTags(partial(_version_tags, client, bucket, v.key, v.version_id))
        due = decide_noncurrent(config.Rules, v, now, order, "STANDARD", tags)
        if due is not None:
            out.append(act(v, due[0], due[1], "STANDARD"))
    return out


# -- applying --------------------------------------------------------------------------------
@dataclass
class Outcome:
    expired: int = 0
    expired_bytes: int = 0
    transitioned: int = 0
    transitioned_bytes: int = 0
    aborted_uploads: int = 0
    skipped: list[str] = field(default_factory=list)
    per_rule: dict[str, dict[str, int]] = field(default_factory=dict)
    # (event name, bucket, key, size, etag, user agent): what the caller announces
    events: list[tuple[str, str, str, int, str, str]] = field(default_factory=list)

    def count(self, act: Action) -> None:
        r = self.per_rule.setdefault(act.rule, {"objects": 0, "bytes": 0})
        r["objects"] += 1
        r["bytes"] += act.size
        if act.action == "expire":
            self.expired += 1
            self.expired_bytes += act.size
        else:
            self.transitioned += 1
            self.transitioned_bytes += act.size

    def as_dict(self) -> dict[str, Any]:
        return {
            "expired": self.expired,
            "expired_bytes": self.expired_bytes,
            "transitioned": self.transitioned,
            "transitioned_bytes": self.transitioned_bytes,
            "aborted_uploads": self.aborted_uploads,
            "skipped": self.skipped,
            "per_rule": self.per_rule,
        }


def _head(store: ObjectStore, bucket: str, key: str) -> ObjectInfo | None:
    try:
        return store.head(bucket, key)
    except (ObjectNotFound, BucketNotFound):
        return None


def _verified(copy: ObjectInfo | None, size: int, etag: str) -> bool:
    if copy is None or copy.size != size:
        return False
    # a multipart etag ("...-N") is not the content MD5; size alone then
    return copy.etag == etag or "-" in copy.etag or "-" in etag


def lifecycle_client(settings: Settings) -> Any:
    """A boto3 client for the S3 backend whose requests say they are lifecycle's."""
    import boto3
    from botocore.config import Config

    s = settings
    return boto3.client(
        "s3",
        endpoint_url=s.s3_endpoint,
        aws_access_key_id=s.s3_access_key.get_secret_value() if s.s3_access_key else None,
        aws_secret_access_key=s.s3_secret_key.get_secret_value() if s.s3_secret_key else None,
        region_name=s.s3_region,
        config=Config(
            s3={"addressing_style": "path" if s.s3_path_style else "auto"},
            user_agent=USER_AGENT,
            retries={"max_attempts": 3},
        ),
    )


class Applier:
    """Executes actions; every step is recorded before the next, so a rerun resumes.

    On the local backend changes go through the store after a marker the watcher reads; on S3
    they are made with :func:`lifecycle_client` (server-side copy, delete), so the store's own
    notifications name ``lakewire-lifecycle/<version>`` as their user agent."""

    def __init__(self, settings: Settings, store: ObjectStore, clock: Clock = utcnow) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.tiers = TierMap(store)
        self._s3: Any = (
            lifecycle_client(settings) if getattr(store, "kind", "local") == "s3" else None
        )

    def _delete(self, bucket: str, key: str) -> None:
        if self._s3 is not None:
            self._s3.delete_object(Bucket=bucket, Key=key)
        else:
            self.store.delete(bucket, key)

    def apply(
        self, actions: list[Action], outcome: Outcome | None = None, stop_after: int | None = None
    ) -> Outcome:
        """``stop_after``: steps to run before stopping as if killed (tests of resume)."""
        out = outcome or Outcome()
        self._budget = stop_after
        for act in actions:
            if act.action == "expire":
                self._expire(act, out)
            elif act.version_id is not None:
                self._transition_version(act, out)
            else:
                self._transition(act, out)
        return out

    def _step(self) -> None:
        if self._budget is not None:
            if self._budget <= 0:
                raise InterruptedError("apply stopped (test)")
            self._budget -= 1

    def _where(self, act: Action) -> tuple[str, str, TierRecord | None]:
        rec = self.tiers.get(act.bucket, act.key)
        if rec is not None and rec.state == "done":
            return rec.tier_bucket, rec.tier_key, rec
        return act.bucket, act.key, rec

    def _expire(self, act: Action, out: Outcome) -> None:
        bucket, key, rec = self._where(act)
        info = _head(self.store, bucket, key)
        if info is None:
            if rec is not None:
                self.tiers.drop(act.bucket, act.key)
            out.skipped.append(f"{act.bucket}/{act.key}: gone already")
            return
        if rec is None and info.etag != act.etag:
            out.skipped.append(f"{act.bucket}/{act.key}: changed since the plan")
            return
        self._step()
        self.tiers.mark(bucket, key, info.etag, EXPIRY_AGENT, self.clock())
        self._delete(bucket, key)
        self._step()
        if rec is not None:
            self.tiers.drop(act.bucket, act.key)
        out.count(act)
        out.events.append(("s3:ObjectRemoved:Delete", act.bucket, act.key, 0, "", EXPIRY_AGENT))

    def _transition(self, act: Action, out: Outcome) -> None:
        assert act.storage_class is not None and act.target is not None
        rec = self.tiers.get(act.bucket, act.key)
        if rec is not None and rec.state == "done":
            if rec.storage_class == act.storage_class:
                out.skipped.append(f"{act.bucket}/{act.key}: in {rec.storage_class} already")
                return
            src_bucket, src_key = rec.tier_bucket, rec.tier_key  # tier to colder tier
            modified = rec.last_modified
        elif rec is not None:  # in flight: resume with what was recorded
            src_bucket = rec.from_bucket or act.bucket
            src_key = rec.from_key or act.key
            modified = rec.last_modified
        else:
            src_bucket, src_key = act.bucket, act.key
            info = _head(self.store, src_bucket, src_key)
            if info is None or info.etag != act.etag:
                out.skipped.append(f"{act.bucket}/{act.key}: changed since the plan")
                return
            modified = info.last_modified.isoformat()
        storage_class = rec.storage_class if rec and rec.state != "done" else act.storage_class
        target = rec.tier_bucket if rec and rec.state != "done" else act.target
        dst_key = tier_key(act.bucket, act.key)
        src = _head(self.store, src_bucket, src_key)
        if src is None:
            # the source is gone: finished unless the copy is missing too
            dst = _head(self.store, target, dst_key)
            if dst is not None and rec is not None:
                self.tiers.put(self._record(act, rec.size, rec.etag, modified, target, "done"))
                out.count(act)
            else:
                out.skipped.append(f"{act.bucket}/{act.key}: gone")
            return
        copying = TierRecord(
            act.bucket,
            act.key,
            storage_class,
            target,
            dst_key,
            src.size,
            src.etag,
            modified,
            "copying",
            src_bucket,
            src_key,
        )
        if rec is None or rec.state == "done":
            self.tiers.put(copying)
            self._step()
        if not self.store.bucket_exists(target):
            self.store.create_bucket(target)
        dst = _head(self.store, target, dst_key)
        if not _verified(dst, src.size, src.etag):
            self.tiers.mark(target, dst_key, src.etag, TRANSITION_AGENT, self.clock())
            self._copy(src_bucket, src_key, target, dst_key)
            self._step()
            dst = _head(self.store, target, dst_key)
        if not _verified(dst, src.size, src.etag):
            out.skipped.append(f"{act.bucket}/{act.key}: copy did not verify; source kept")
            return
        # the tags go with the object (a multipart copy does not carry them; the local copy
        # is a new file): later rules with tag filters must still match it in its tier
        tags = self.store.get_tags(src_bucket, src_key)
        if tags:
            self.store.set_tags(target, dst_key, tags)
        self._step()
        self.tiers.mark(src_bucket, src_key, src.etag, TRANSITION_AGENT, self.clock())
        self._delete(src_bucket, src_key)
        self._step()
        self.tiers.put(
            self._record(act, src.size, src.etag, modified, target, "done", storage_class)
        )
        out.count(act)
        out.events.append(
            (
                "s3:ObjectTransition:Complete",
                act.bucket,
                act.key,
                src.size,
                src.etag,
                TRANSITION_AGENT,
            )
        )

    def _transition_version(self, act: Action, out: Outcome) -> None:
        """A noncurrent version to a tier (S3): recorded, copied by version id, verified, its
        tags carried, and only then is that version deleted; a rerun resumes from the record."""
        assert act.version_id is not None and act.storage_class is not None and act.target
        vid, client = act.version_id, self._s3
        rec = self.tiers.get_version(act.bucket, act.key, vid)
        src_vid: str | None = vid
        if rec is not None and rec.state == "done":
            if rec.storage_class == act.storage_class:
                out.skipped.append(f"{act.bucket}/{act.key}@{vid}: in {rec.storage_class} already")
                return
            src_bucket, src_key, src_vid = rec.tier_bucket, rec.tier_key, None
        elif rec is not None:
            src_bucket, src_key = rec.from_bucket or act.bucket, rec.from_key or act.key
            src_vid = vid if src_bucket == act.bucket else None
        else:
            src_bucket, src_key = act.bucket, act.key
        storage_class = rec.storage_class if rec and rec.state != "done" else act.storage_class
        target = rec.tier_bucket if rec and rec.state != "done" else act.target
        dst_key = act.target_key
        source: dict[str, str] = {"Bucket": src_bucket, "Key": src_key}
        if src_vid is not None:
            source["VersionId"] = src_vid
        try:
            head = client.head_object(**source)
        except Exception as exc:  # only a missing source counts as gone, never a failed call
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code not in ("404", "NoSuchKey", "NoSuchVersion"):
                raise
            head = None
        if head is None:  # the source is gone: finished if the copy is there
            dst = _head(self.store, target, dst_key)
            if dst is not None and rec is not None:
                self.tiers.put(replace(rec, state="done", from_bucket=None, from_key=None))
                out.count(act)
            else:
                out.skipped.append(f"{act.bucket}/{act.key}@{vid}: gone")
            return
        size, etag = int(head["ContentLength"]), head["ETag"].strip('"')
        if rec is None and etag != act.etag:
            out.skipped.append(f"{act.bucket}/{act.key}@{vid}: changed since the plan")
            return
        # colder moves age from when it became noncurrent: the record keeps that moment
        since = rec.last_modified if rec else (act.noncurrent_since or self.clock()).isoformat()
        copying = TierRecord(
            act.bucket,
            act.key,
            storage_class,
            target,
            dst_key,
            size,
            etag,
            since,
            "copying",
            src_bucket,
            src_key,
            vid,
            rec.created if rec else head["LastModified"].isoformat(),
        )
        if rec is None or rec.state == "done":
            self.tiers.put(copying)
            self._step()
        if not self.store.bucket_exists(target):
            self.store.create_bucket(target)
        dst = _head(self.store, target, dst_key)
        if not _verified(dst, size, etag):
            client.copy(source, target, dst_key)
            self._step()
            dst = _head(self.store, target, dst_key)
        if not _verified(dst, size, etag):
            out.skipped.append(f"{act.bucket}/{act.key}@{vid}: copy did not verify; kept")
            return
        tags = client.get_object_tagging(**source).get("TagSet", [])
        if tags:
            self.store.set_tags(target, dst_key, {t["Key"]: t["Value"] for t in tags})
        self._step()
        client.delete_object(**source)  # that version (or the warmer tier's copy) only
        self._step()
        self.tiers.put(replace(copying, state="done", from_bucket=None, from_key=None))
        out.count(act)
        out.events.append(
            ("s3:ObjectTransition:Complete", act.bucket, act.key, size, etag, TRANSITION_AGENT)
        )

    def _copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> None:
        """S3: a server-side copy. Local: through a spool file (a store's stream cannot feed
        its own put: one runtime)."""
        if self._s3 is not None:
            self._s3.copy({"Bucket": src_bucket, "Key": src_key}, dst_bucket, dst_key)
            return
        if self.store.head(src_bucket, src_key).size <= SPOOL_ABOVE_BYTES:
            self.store.put(dst_bucket, dst_key, self.store.get_bytes(src_bucket, src_key))
            return
        with tempfile.TemporaryDirectory(prefix="lakewire-ilm-") as tmp:
            path = Path(tmp) / "object"
            with path.open("wb") as fh:
                for block in self.store.get_stream(src_bucket, src_key):
                    fh.write(block)
            self.store.put(dst_bucket, dst_key, path)

    def _record(
        self,
        act: Action,
        size: int,
        etag: str,
        modified: str,
        target: str,
        state: str,
        storage_class: str | None = None,
    ) -> TierRecord:
        return TierRecord(
            act.bucket,
            act.key,
            storage_class or act.storage_class or "",
            target,
            tier_key(act.bucket, act.key),
            size,
            etag,
            modified,
            state,
        )


def apply(
    settings: Settings,
    store: ObjectStore,
    actions: list[Action],
    clock: Clock = utcnow,
    stop_after: int | None = None,
) -> Outcome:
    return Applier(settings, store, clock).apply(actions, stop_after=stop_after)


def placements(store: ObjectStore, bucket: str, keys: Iterable[str]) -> dict[str, list[str]]:
    """Where each key's bytes are (its bucket and/or a tier): the exactly-one-place check."""
    tmap = TierMap(store)
    out: dict[str, list[str]] = {}
    for key in keys:
        places = []
        if _head(store, bucket, key) is not None:
            places.append(f"{bucket}/{key}")
        rec = tmap.get(bucket, key)
        if rec is not None and rec.state == "done" and _head(store, rec.tier_bucket, rec.tier_key):
            places.append(f"{rec.tier_bucket}/{rec.tier_key}")
        out[key] = places
    return out


# -- what an S3 store enforces itself -----------------------------------------------------------
NATIVE_ACTIONS = ("Expiration", "NoncurrentVersionExpiration", "AbortIncompleteMultipartUpload")
LAKEWIRE_ACTIONS = ("Expiration", "Transitions", "NoncurrentVersionTransitions")


def delegable(rule: Rule) -> list[str]:
    """The actions of a rule the store can enforce itself: the native ones, unless the filter
    names an object size (the bucket lifecycle the ``minio`` SDK writes has no size filter, so
    such a rule stays Lakewire's whole)."""
    f = rule.Filter
    if f is not None:
        sizes = f.And if f.And is not None else f
        if sizes.ObjectSizeGreaterThan is not None or sizes.ObjectSizeLessThan is not None:
            return []
    return [a for a in NATIVE_ACTIONS if getattr(rule, a)]


def enforcement(config: LifecycleConfiguration, backend: str) -> list[dict[str, Any]]:
    """Per rule: which actions the store enforces natively (S3 backend) and which Lakewire
    runs (transitions to Lakewire's tiers, and expiration, which also covers tiered objects)."""
    out = []
    for r in config.Rules:
        present = [a for a in (*NATIVE_ACTIONS, *LAKEWIRE_ACTIONS) if getattr(r, a)]
        store = delegable(r) if backend == "s3" else []
        runs = [a for a in present if a in LAKEWIRE_ACTIONS or a not in store]
        out.append({"ID": r.ID, "store": store, "lakewire": sorted(set(runs))})
    return out


def native_rules(config: LifecycleConfiguration) -> list[Any]:
    """The part of the rules an S3 store enforces, as ``minio`` SDK lifecycle rules
    (transitions are Lakewire's: its tiers are buckets, not the store's storage classes)."""
    from minio.commonconfig import AndOperator, Filter, Tags
    from minio.commonconfig import Tag as MinioTag
    from minio.lifecycleconfig import (
        AbortIncompleteMultipartUpload,
        Expiration,
        NoncurrentVersionExpiration,
    )
    from minio.lifecycleconfig import Rule as MinioRule

    out = []
    for r in config.Rules:
        actions = delegable(r)
        if not actions:
            continue
        f = r.Filter
        if f is None or (f.And is None and f.Tag is None):
            flt = Filter(prefix=(f.Prefix if f is not None else r.Prefix) or "")
        elif f.Tag is not None:
            flt = Filter(tag=MinioTag(f.Tag.Key, f.Tag.Value))
        else:
            assert f.And is not None
            tags = Tags()
            tags.update({t.Key: t.Value for t in f.And.Tags})
            flt = Filter(and_operator=AndOperator(f.And.Prefix, tags or None))
        e, nc, ab = r.Expiration, r.NoncurrentVersionExpiration, r.AbortIncompleteMultipartUpload
        out.append(
            MinioRule(
                r.Status,
                rule_filter=flt,
                rule_id=r.ID,
                expiration=(Expiration(e.Date, e.Days, e.ExpiredObjectDeleteMarker) if e else None),
                noncurrent_version_expiration=(
                    NoncurrentVersionExpiration(nc.NoncurrentDays, nc.NewerNoncurrentVersions)
                    if nc
                    else None
                ),
                abort_incomplete_multipart_upload=(
                    AbortIncompleteMultipartUpload(ab.DaysAfterInitiation) if ab else None
                ),
            )
        )
    return out


def minio_client(settings: Settings) -> Any:
    """A ``minio`` SDK client for the S3 backend, announcing itself as lifecycle's."""
    from urllib.parse import urlsplit

    from minio import Minio

    s = settings
    url = urlsplit(s.s3_endpoint or f"https://s3.{s.s3_region}.amazonaws.com")
    client = Minio(
        url.netloc,
        access_key=s.s3_access_key.get_secret_value() if s.s3_access_key else None,
        secret_key=s.s3_secret_key.get_secret_value() if s.s3_secret_key else None,
        secure=url.scheme == "https",
        region=s.s3_region,
    )
    name, version = USER_AGENT.split("/", 1)
    client.set_app_info(name, version)
    return client


def write_native(
    settings: Settings, store: ObjectStore, bucket: str, config: LifecycleConfiguration | None
) -> bool:
    """Write (or, with no native rules, delete) the bucket's native lifecycle configuration on
    the S3 backend with the ``minio`` SDK's ``set_bucket_lifecycle``; False on the local
    backend, which has none."""
    if store.kind != "s3":
        return False
    from minio.lifecycleconfig import LifecycleConfig

    client = minio_client(settings)
    rules = native_rules(config) if config is not None else []
    if rules:
        client.set_bucket_lifecycle(bucket, LifecycleConfig(rules))
    else:
        client.delete_bucket_lifecycle(bucket)
    return True


def restore_tiered_version(
    store: ObjectStore, bucket: str, key: str, version_id: str
) -> ObjectInfo | None:
    """Copy a noncurrent version lifecycle moved to a tier back over its key (it becomes the
    newest version, as restoring any version does); None when no tier holds that version."""
    rec = next(
        (r for r in TierMap(store).tiered_versions(bucket, key) if r.version_id == version_id),
        None,
    )
    if rec is None or store.kind != "s3":
        return None
    source = {"Bucket": rec.tier_bucket, "Key": rec.tier_key}
    store.client.copy(source, bucket, key)  # type: ignore[attr-defined]
    return store.head(bucket, key)


@dataclass(frozen=True)
class Upload:
    key: str
    upload_id: str
    initiated: datetime

    def as_dict(self) -> dict[str, str]:
        return {
            "key": self.key,
            "upload_id": self.upload_id,
            "initiated": self.initiated.isoformat(),
        }


def incomplete_uploads(store: ObjectStore, bucket: str, prefix: str = "") -> list[Upload]:
    """Multipart uploads started and never completed (S3 backend; the local one has none)."""
    if getattr(store, "kind", "local") != "s3":
        return []
    client = store.client  # type: ignore[attr-defined]
    out = []
    for page in client.get_paginator("list_multipart_uploads").paginate(
        Bucket=bucket, Prefix=prefix
    ):
        for u in page.get("Uploads", []):
            out.append(Upload(u["Key"], u["UploadId"], u["Initiated"]))
    return out


def abort_upload(store: ObjectStore, bucket: str, key: str, upload_id: str) -> None:
    store.client.abort_multipart_upload(  # type: ignore[attr-defined]
        Bucket=bucket, Key=key, UploadId=upload_id
    )


def abort_due_uploads(
    store: ObjectStore, bucket: str, config: LifecycleConfiguration, now: datetime
) -> list[Upload]:
    """Abort the incomplete uploads an enabled ``AbortIncompleteMultipartUpload`` rule covers."""
    aborted = []
    for u in incomplete_uploads(store, bucket):
        for r in config.Rules:
            a = r.AbortIncompleteMultipartUpload
            if a is None or not r.enabled or not r.matches(u.key, 0, {}):
                continue
            if now >= due_at(u.initiated, a.DaysAfterInitiation):
                abort_upload(store, bucket, u.key, u.upload_id)
                aborted.append(u)
                break
    return aborted
