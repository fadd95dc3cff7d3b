"""Who may touch a bucket right now: writers in flight versus a delete or rename of it.

A bucket delete or rename must never overlap a write into that bucket, or the write's
acknowledged object ends up outside any bucket (or recreates the deleted one). Every mutating
request passes this gate: writers share a bucket, a delete or rename holds it alone, and a
rename also holds its target name from the moment it is accepted, so no ``create`` or second
rename can take that name meanwhile. Every check-and-claim is one step under one lock. A
request that cannot enter gets a 409 at once rather than waiting, as S3 answers a conflicting
bucket operation.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from lakehouse.objectstore import StorageError


class BucketBusy(StorageError):
    """The bucket is being deleted or renamed, or has writes in flight (HTTP 409)."""


class BucketGate:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._writers: Counter[str] = Counter()
        self._held: dict[str, str] = {}  # bucket name -> what holds it alone

    def writers(self, bucket: str) -> int:
        """Writes into ``bucket`` in flight right now."""
        with self._lock:
            return self._writers[bucket]

    def busy_reason(self, bucket: str) -> str | None:
        with self._lock:
            return self._held.get(bucket)

    @contextmanager
    def writing(self, bucket: str) -> Iterator[None]:
        """Held for the whole of a write into ``bucket``."""
        with self._lock:
            if bucket in self._held:
                raise BucketBusy(
                    f"bucket '{bucket}' is {self._held[bucket]}; try again when it is done"
                )
            self._writers[bucket] += 1
        try:
            yield
        finally:
            with self._lock:
                self._writers[bucket] -= 1
                if not self._writers[bucket]:
                    del self._writers[bucket]

    def claim(self, reason: str, *buckets: str) -> None:
        """Hold ``buckets`` alone (all or none); refused while any has writers or a holder."""
        with self._lock:
            for bucket in buckets:
                if bucket in self._held:
                    raise BucketBusy(f"bucket '{bucket}' is {self._held[bucket]}")
                if self._writers[bucket]:
                    raise BucketBusy(
                        f"bucket '{bucket}' has {self._writers[bucket]} write(s) in flight; "
                        "try again when they are done"
                    )
            for bucket in buckets:
                self._held[bucket] = reason

    def release(self, *buckets: str) -> None:
        with self._lock:
            for bucket in buckets:
                self._held.pop(bucket, None)

    @contextmanager
    def alone(self, reason: str, *buckets: str) -> Iterator[None]:
        self.claim(reason, *buckets)
        try:
            yield
        finally:
            self.release(*buckets)
