"""Where transitioned objects went, and which changes lifecycle made: the store layer's records.

Every reader (the HTTP API, ingestion, replay, notebook helpers) resolves an object through
:func:`TierMap.resolve` when it is not in its bucket any more, so a transitioned object is still
found. The records live in the system bucket (``lakewire-system``) of the same object store,
read by the storage service, the Dagster code location and the CLI alike:

- ``lifecycle/tiers/<bucket>/<key>.json``: the object's tier location (storage class, tier
  bucket, tier key, size, etag, original last-modified) and ``state``: ``copying`` while a copy is
  in flight, ``copied`` once the copy is verified, ``done`` once the source is gone.
- ``lifecycle/actions/<bucket>/<key>.json``: the etag of an object lifecycle is about to remove
  or create, and why; the directory watcher (local backend) reads it to announce the change as
  lifecycle's (``Internal: [ILM-Expiry]``), never as a user delete.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lakehouse.objectstore import BucketNotFound, ObjectNotFound, ObjectStore

SYSTEM_BUCKET = "lakewire-system"  # same as lakehouse.routes.SYSTEM_BUCKET
TIERS_PREFIX = "lifecycle/tiers/"
VERSIONS_PREFIX = "lifecycle/versions/"
ACTIONS_PREFIX = "lifecycle/actions/"
MARKER_MAX_AGE = timedelta(days=1)

# The user agent a lifecycle change is announced with (MinIO's ILM names; DECISIONS).
EXPIRY_AGENT = "Internal: [ILM-Expiry]"
TRANSITION_AGENT = "Internal: [ILM-Transition]"


@dataclass(frozen=True)
class TierRecord:
    bucket: str  # where the object lives for its users
    key: str
    storage_class: str
    tier_bucket: str
    tier_key: str
    size: int
    etag: str
    last_modified: str  # ISO 8601: the original object's, so later rules age it from there
    state: str = "done"  # copying | copied | done
    # while moving tier to tier: where it still is until the new copy is verified
    from_bucket: str | None = None
    from_key: str | None = None
    version_id: str | None = None  # a noncurrent version moved by NoncurrentVersionTransitions
    created: str | None = None  # ... and that version's own creation (ISO 8601), for listings

    @property
    def modified(self) -> datetime:
        return datetime.fromisoformat(self.last_modified)


def tier_key(bucket: str, key: str) -> str:
    """An object's key in a tier bucket: its bucket first, so buckets never collide there."""
    return f"{bucket}/{key}"


def version_tier_key(bucket: str, key: str, version_id: str) -> str:
    """A noncurrent version's key in a tier bucket: under ``~versions/``, which no bucket name
    can spell (so it never meets :func:`tier_key`), then its bucket, version and key."""
    return f"~versions/{bucket}/{version_id}/{key}"


class TierMap:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def _ensure(self) -> None:
        if not self.store.bucket_exists(SYSTEM_BUCKET):
            self.store.create_bucket(SYSTEM_BUCKET)

    # -- tier records ---------------------------------------------------------------------
    def get(self, bucket: str, key: str) -> TierRecord | None:
        try:
            raw = self.store.get_bytes(SYSTEM_BUCKET, f"{TIERS_PREFIX}{bucket}/{key}.json")
        except (ObjectNotFound, BucketNotFound):
            return None
        return TierRecord(**json.loads(raw))

    def put(self, rec: TierRecord) -> None:
        self._ensure()
        body = json.dumps(asdict(rec)).encode()
        path = f"{TIERS_PREFIX}{rec.bucket}/{rec.key}.json"
        if rec.version_id is not None:
            path = self._version_path(rec.bucket, rec.key, rec.version_id)
        self.store.put(SYSTEM_BUCKET, path, body)

    def drop(self, bucket: str, key: str) -> None:
        with contextlib.suppress(ObjectNotFound, BucketNotFound):
            self.store.delete(SYSTEM_BUCKET, f"{TIERS_PREFIX}{bucket}/{key}.json")

    def records(self, bucket: str) -> list[TierRecord]:
        if not self.store.bucket_exists(SYSTEM_BUCKET):
            return []
        out = []
        for info in self.store.iter_objects(SYSTEM_BUCKET, f"{TIERS_PREFIX}{bucket}/"):
            if info.key.endswith(".json"):
                out.append(TierRecord(**json.loads(self.store.get_bytes(SYSTEM_BUCKET, info.key))))
        return out

    # -- noncurrent versions in a tier -----------------------------------------------------
    def _version_path(self, bucket: str, key: str, version_id: str) -> str:
        return f"{VERSIONS_PREFIX}{bucket}/{version_id}/{key}.json"

    def get_version(self, bucket: str, key: str, version_id: str) -> TierRecord | None:
        try:
            raw = self.store.get_bytes(SYSTEM_BUCKET, self._version_path(bucket, key, version_id))
        except (ObjectNotFound, BucketNotFound):
            return None
        return TierRecord(**json.loads(raw))

    def version_records(self, bucket: str) -> list[TierRecord]:
        if not self.store.bucket_exists(SYSTEM_BUCKET):
            return []
        prefix = f"{VERSIONS_PREFIX}{bucket}/"
        return [
            TierRecord(**json.loads(self.store.get_bytes(SYSTEM_BUCKET, i.key)))
            for i in self.store.iter_objects(SYSTEM_BUCKET, prefix)
            if i.key.endswith(".json")
        ]

    def tiered_versions(self, bucket: str, key: str) -> list[TierRecord]:
        """The noncurrent versions of one key that lifecycle moved to a tier (and finished)."""
        return [r for r in self.version_records(bucket) if r.key == key and r.state == "done"]

    def resolve(self, bucket: str, key: str) -> tuple[str, str, str] | None:
        """``(tier bucket, tier key, storage class)`` of an object that was transitioned."""
        rec = self.get(bucket, key)
        if rec is None:
            return None
        if rec.state != "done" and rec.from_bucket and rec.from_key:
            # mid-move: the source until it is removed (only after the copy verified)
            try:
                self.store.head(rec.from_bucket, rec.from_key)
                return rec.from_bucket, rec.from_key, rec.storage_class
            except (ObjectNotFound, BucketNotFound):
                pass
        return rec.tier_bucket, rec.tier_key, rec.storage_class

    # -- action markers ---------------------------------------------------------------------
    def mark(self, bucket: str, key: str, etag: str, agent: str, now: datetime) -> None:
        self._ensure()
        body = json.dumps({"etag": etag, "agent": agent, "at": now.isoformat()}).encode()
        self.store.put(SYSTEM_BUCKET, f"{ACTIONS_PREFIX}{bucket}/{key}.json", body)


def locate(store: ObjectStore, bucket: str, key: str) -> tuple[str, str, str]:
    """``(bucket, key, storage class)`` where an object's bytes are now: its own bucket, or the
    tier lifecycle moved it to. ``ObjectNotFound`` when it is in neither."""
    try:
        store.head(bucket, key)
        return bucket, key, "STANDARD"
    except ObjectNotFound:
        where = TierMap(store).resolve(bucket, key)
        if where is None:
            raise
        return where


def get_resolved(store: ObjectStore, bucket: str, key: str) -> bytes:
    """An object's bytes wherever lifecycle put it (its bucket first, then its tier)."""
    try:
        return store.get_bytes(bucket, key)
    except ObjectNotFound:
        where = TierMap(store).resolve(bucket, key)
        if where is None:
            raise
        return store.get_bytes(where[0], where[1])


def marker_agent(root: Path, bucket: str, key: str, etag: str) -> str | None:
    """Local backend: the lifecycle user agent for a change the watcher is about to announce,
    if lifecycle marked this object (same etag, recent) before making it."""
    path = root / SYSTEM_BUCKET / f"{ACTIONS_PREFIX}{bucket}/{key}.json"
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    at = datetime.fromisoformat(raw.get("at", "1970-01-01T00:00:00+00:00"))
    if raw.get("etag") not in (etag, "") or datetime.now(UTC) - at > MARKER_MAX_AGE:
        return None
    agent = raw.get("agent")
    return agent if isinstance(agent, str) else None
