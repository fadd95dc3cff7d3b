"""Quarantine: where a bad landing object goes, with the reason beside it.

``<bucket>/<prefix><key>`` holds a copy of the object as it was when it failed, and
``<bucket>/<prefix><key>.reason.json`` says why, for which table and run. The original stays
where it landed (it may be fixed in place or re-driven by ``lakewire replay``). Keys under the
prefix are never routed or reconciled, so the copy does not feed a table.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from lakehouse.objectstore import MAX_KEY_BYTES, MAX_SEGMENT_BYTES, ObjectNotFound, ObjectStore
from lakehouse.settings import Settings
from lakehouse.tables import SourceVersion

REASON_SUFFIX = ".reason.json"
LONG_KEYS_FOLDER = "_long-keys"


@dataclass(frozen=True)
class QuarantineRecord:
    bucket: str
    key: str
    etag: str
    sequencer: str
    kind: str
    reason: str
    table: str
    route: str
    run_id: str
    quarantined_at: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def source(self) -> SourceVersion:
        return SourceVersion(self.bucket, self.key, self.etag, self.sequencer)


def is_quarantine_key(settings: Settings, key: str) -> bool:
    return key.startswith(settings.quarantine_prefix)


def quarantine_key(settings: Settings, key: str) -> str:
    """Where an object's quarantined copy goes: under the prefix by its own key, or, when that
    key plus the prefix and the reason suffix would break a key limit (1,024 bytes in all,
    255 a segment locally), by a digest of the key, so no key is too long to quarantine. The
    reason file records the original key either way."""
    plain = f"{settings.quarantine_prefix}{key}"
    last = plain.rsplit("/", 1)[-1]
    if (
        len((plain + REASON_SUFFIX).encode()) <= MAX_KEY_BYTES
        and len((last + REASON_SUFFIX).encode()) <= MAX_SEGMENT_BYTES
    ):
        return plain
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{settings.quarantine_prefix}{LONG_KEYS_FOLDER}/{digest}"


def quarantine_object(
    settings: Settings,
    store: ObjectStore,
    src: SourceVersion,
    *,
    kind: str,
    reason: str,
    table: str,
    route: str,
    run_id: str,
) -> QuarantineRecord:
    """Copy the object under the quarantine prefix (streamed) and write its reason beside it.

    Idempotent: a re-run that quarantines the same object again overwrites both files.
    """
    record = QuarantineRecord(
        bucket=src.bucket,
        key=src.key,
        etag=src.etag,
        sequencer=src.sequencer,
        kind=kind,
        reason=reason,
        table=table,
        route=route,
        run_id=run_id,
        quarantined_at=datetime.now(tz=UTC).isoformat(),
    )
    qkey = quarantine_key(settings, src.key)
    try:
        # Staged through a temp file: bounded memory for any size, and obstore cannot feed a
        # put from one of its own get streams.
        with tempfile.TemporaryDirectory(prefix="lakewire-quarantine-") as tmp:
            staged = Path(tmp) / "object"
            with staged.open("wb") as fh:
                for chunk in store.get_stream(src.bucket, src.key):
                    fh.write(chunk)
            store.put(src.bucket, qkey, staged)
    except ObjectNotFound:
        pass  # gone since the event: the reason alone still explains what happened
    store.put(
        src.bucket,
        qkey + REASON_SUFFIX,
        json.dumps(asdict(record), indent=2).encode(),
    )
    return record


def list_quarantined(settings: Settings, store: ObjectStore, bucket: str) -> list[QuarantineRecord]:
    out = []
    for info in store.iter_objects(bucket, settings.quarantine_prefix):
        if not info.key.endswith(REASON_SUFFIX):
            continue
        try:
            data = json.loads(store.get_bytes(bucket, info.key))
            out.append(QuarantineRecord(**data))
        except (ObjectNotFound, ValueError, TypeError):
            continue
    return sorted(out, key=lambda r: r.key)


def find_quarantined(
    settings: Settings, store: ObjectStore, bucket: str, key: str
) -> QuarantineRecord | None:
    try:
        data = store.get_bytes(bucket, quarantine_key(settings, key) + REASON_SUFFIX)
    except ObjectNotFound:
        return None
    return QuarantineRecord(**json.loads(data))


def release(settings: Settings, store: ObjectStore, bucket: str, key: str) -> None:
    """Remove an object's quarantine entry (after a replay re-drives it)."""
    qkey = quarantine_key(settings, key)
    for k in (qkey + REASON_SUFFIX, qkey):
        with contextlib.suppress(ObjectNotFound, FileNotFoundError):
            store.delete(bucket, k)
