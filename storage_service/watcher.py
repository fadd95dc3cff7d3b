"""Bucket events for the local-directory backend: watch the folder, announce settled files.

Any writer counts (the API, ``lakewire put``, a notebook, a plain ``cp`` into the folder), so
the folder itself is the source of truth. A file is announced only once its size and mtime have
held still for ``watch_settle_seconds``, so a partially written file never produces an event;
names starting with ``.`` and obstore's ``#<n>`` staging files are in-progress by convention.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from watchfiles import Change, awatch

from lakehouse.objectstore import (
    BUCKET_NAME_RE,
    STAGING_RE,
    LocalObjectStore,
    ObjectInfo,
    StorageError,
)
from lakehouse.settings import Settings
from lakehouse.tiers import marker_agent
from storage_service.events import (
    OBJECT_CREATED_PUT,
    OBJECT_REMOVED_DELETE,
    BucketEvent,
    sequencer_for,
)
from storage_service.index import IndexedObject, ObjectIndex
from storage_service.notifications import NotificationStore
from storage_service.outbox import Outbox

log = logging.getLogger(__name__)


def _is_announceable(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return not name.startswith(".") and not STAGING_RE.search(name)


@dataclass
class _Pending:
    size: int
    mtime_ns: int
    seen_at: float


@dataclass
class WriteHint:
    """A write the API has started: the watcher holds that key back until it is told how the
    write ended, so its one event carries the right name (a rename's copy is a ``Copy``)."""

    event_name: str
    started: float
    principal: str | None = None  # who asked for the write (the event's userIdentity)


# A hint whose write never finished (the request died) stops holding its file back after this.
HINT_MAX_AGE_SECONDS = 3600.0


@dataclass
class DirectoryWatcher:
    settings: Settings
    store: LocalObjectStore
    index: ObjectIndex
    outbox: Outbox
    notifications: NotificationStore
    rescan_seconds: float = 30.0
    _pending: dict[tuple[str, str], _Pending] = field(default_factory=dict)
    _hints: dict[tuple[str, str], WriteHint] = field(default_factory=dict)
    _hint_lock: threading.Lock = field(default_factory=threading.Lock)
    # scan() and settle() run in worker threads from two tasks; one at a time, or a removal
    # could be announced twice (each with its own sequencer, so no dedupe would catch it).
    _work_lock: threading.Lock = field(default_factory=threading.Lock)

    # -- hints from the API --------------------------------------------------------------------
    def hint_start(
        self, bucket: str, key: str, event_name: str, principal: str | None = None
    ) -> None:
        with self._hint_lock:
            self._hints[(bucket, key)] = WriteHint(event_name, time.monotonic(), principal)

    def write_done(self, bucket: str, key: str, info: ObjectInfo) -> None:
        """Announce a write the service made as soon as it is in place, with the facts the
        store returned for it (no settle wait, no re-hash); the bucket's stats move at once.

        If the file was replaced since (its size or mtime differ), the newer write is left to
        the watcher's own observation."""
        with self._hint_lock:
            hint = self._hints.pop((bucket, key), None)
        name = hint.event_name if hint is not None else OBJECT_CREATED_PUT
        path = self.store.root / bucket / key
        with self._work_lock:
            try:
                st = os.stat(path, follow_symlinks=False)
            except OSError:
                return
            if (st.st_size, st.st_mtime_ns) != (info.size, info.mtime_ns):
                return
            self._pending.pop((bucket, key), None)
            item = (bucket, key, IndexedObject(st.st_size, st.st_mtime_ns, info.etag))
            who = {(bucket, key): hint.principal} if hint and hint.principal else None
            self._emit_created([item], {(bucket, key): name}, who)

    def hint_cancel(self, bucket: str, key: str) -> None:
        with self._hint_lock:
            self._hints.pop((bucket, key), None)

    def delete_done(self, bucket: str, key: str, principal: str | None = None) -> None:
        """Announce a removal the service made at once, unless the key is back already."""
        with self._work_lock:
            if os.path.lexists(self.store.root / bucket / key):
                return
            self._pending.pop((bucket, key), None)
            prev = self.index.get(bucket, key)
            if prev is not None:
                self._emit_removed([(bucket, key, prev)], principal)

    def _hint_for(self, bucket: str, key: str) -> WriteHint | None:
        with self._hint_lock:
            return self._hints.pop((bucket, key), None)

    def _write_in_progress(self, bucket: str, key: str) -> bool:
        with self._hint_lock:
            hint = self._hints.get((bucket, key))
            if hint is None:
                return False
            if time.monotonic() - hint.started > HINT_MAX_AGE_SECONDS:
                del self._hints[(bucket, key)]
                return False
            return True

    # -- mapping ------------------------------------------------------------------------------
    def _split(self, path: Path) -> tuple[str, str] | None:
        try:
            rel = path.relative_to(self.store.root).as_posix()
        except ValueError:
            return None
        if "/" not in rel:
            return None
        bucket, key = rel.split("/", 1)
        if not BUCKET_NAME_RE.match(bucket) or not _is_announceable(key):
            return None
        return bucket, key

    # -- scanning ------------------------------------------------------------------------------
    def scan(self) -> None:
        """Diff every bucket folder against the index; queue what changed, drop what vanished."""
        with self._work_lock:
            self._scan()

    def _scan(self) -> None:
        removed: list[tuple[str, str, IndexedObject]] = []
        buckets = {b.name for b in self.store.list_buckets()}
        for bucket in buckets | set(self.index.buckets()):
            known = self.index.snapshot(bucket)
            seen: set[str] = set()
            root = self.store.root / bucket
            if root.is_dir():
                for dirpath, _dirs, files in os.walk(root):
                    for name in files:
                        full = Path(dirpath) / name
                        key = full.relative_to(root).as_posix()
                        if not _is_announceable(key):
                            continue
                        try:
                            st = os.stat(full, follow_symlinks=False)
                        except FileNotFoundError:
                            continue
                        if not stat.S_ISREG(st.st_mode):
                            continue  # a link is not an object: never followed, never announced
                        seen.add(key)
                        prev = known.get(key)
                        if prev is None or (prev.size, prev.mtime_ns) != (
                            st.st_size,
                            st.st_mtime_ns,
                        ):
                            self._observe(bucket, key, st.st_size, st.st_mtime_ns)
            for key, prev in known.items():
                if key not in seen:
                    removed.append((bucket, key, prev))
        if removed:
            self._emit_removed(removed)
        self._forget_deleted_buckets()

    def _forget_deleted_buckets(self) -> None:
        """A deleted bucket's rules go only after its removals were announced under them."""
        for bucket in self.notifications.configured():
            if not self.store.bucket_exists(bucket) and not self.index.stats(bucket).objects:
                self.notifications.drop(bucket)

    def _observe(self, bucket: str, key: str, size: int, mtime_ns: int) -> None:
        cur = self._pending.get((bucket, key))
        if cur is None or (cur.size, cur.mtime_ns) != (size, mtime_ns):
            # Files already old when first seen (found at start) need no extra settle time.
            age = time.time() - mtime_ns / 1e9
            seen_at = time.monotonic() - (age if age > 0 else 0.0)
            self._pending[(bucket, key)] = _Pending(size, mtime_ns, seen_at)

    def settle(self) -> int:
        """Announce pending files that held still; returns how many were announced."""
        with self._work_lock:
            return self._settle()

    def _settle(self) -> int:
        now = time.monotonic()
        ready: list[tuple[str, str, IndexedObject]] = []
        gone: list[tuple[str, str, IndexedObject]] = []
        names: dict[tuple[str, str], str] = {}
        principals: dict[tuple[str, str], str] = {}
        for (bucket, key), p in list(self._pending.items()):
            full = self.store.root / bucket / key
            try:
                st = os.stat(full, follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError):
                del self._pending[(bucket, key)]
                prev = self.index.get(bucket, key)
                if prev is not None:
                    gone.append((bucket, key, prev))
                continue
            if (st.st_size, st.st_mtime_ns) != (p.size, p.mtime_ns):
                self._pending[(bucket, key)] = _Pending(st.st_size, st.st_mtime_ns, now)
                continue
            if now - p.seen_at < self.settings.watch_settle_seconds:
                continue
            if self._write_in_progress(bucket, key):
                continue
            del self._pending[(bucket, key)]
            prev = self.index.get(bucket, key)
            if prev is not None and (prev.size, prev.mtime_ns) == (st.st_size, st.st_mtime_ns):
                continue
            hint = self._hint_for(bucket, key)
            try:
                # The store gives size, mtime and MD5 of one opened file (stamped: no re-hash).
                info = self.store.head(bucket, key)
            except StorageError as exc:
                if not isinstance(exc, LookupError):
                    log.warning("not announcing %s/%s: %s", bucket, key, exc)
                continue
            if (info.size, info.mtime_ns) != (st.st_size, st.st_mtime_ns):
                assert info.mtime_ns is not None
                self._pending[(bucket, key)] = _Pending(info.size, info.mtime_ns, now)
                continue
            ready.append((bucket, key, IndexedObject(info.size, st.st_mtime_ns, info.etag)))
            if hint is not None and hint.event_name != OBJECT_CREATED_PUT:
                names[(bucket, key)] = hint.event_name
            if hint is not None and hint.principal:
                principals[(bucket, key)] = hint.principal
        if ready:
            self._emit_created(ready, names, principals)
        if gone:
            self._emit_removed(gone)
            self._forget_deleted_buckets()
        return len(ready)

    # -- emitting ------------------------------------------------------------------------------
    def _emit_created(
        self,
        items: list[tuple[str, str, IndexedObject]],
        names: dict[tuple[str, str], str] | None = None,
        principals: dict[tuple[str, str], str] | None = None,
    ) -> None:
        events = []
        for bucket, key, obj in items:
            name = (names or {}).get((bucket, key), OBJECT_CREATED_PUT)
            if self.notifications.get(bucket).wants(name, key):
                events.append(
                    BucketEvent(
                        event_name=name,
                        bucket=bucket,
                        key=key,
                        size=obj.size,
                        etag=obj.etag,
                        sequencer=sequencer_for(obj.mtime_ns),
                        event_time=datetime.fromtimestamp(obj.mtime_ns / 1e9, tz=UTC),
                        content_type=_content_type(key),
                        user_agent=marker_agent(self.store.root, bucket, key, obj.etag),
                        principal=(principals or {}).get((bucket, key)),
                    )
                )
        # Outbox first, index second: a crash in between re-announces (deduplicated by msg id)
        # rather than forgetting.
        if events:
            self.outbox.add(self.settings, events)
        self.index.apply(items, [])

    def _emit_removed(
        self, items: list[tuple[str, str, IndexedObject]], principal: str | None = None
    ) -> None:
        now = datetime.now(tz=UTC)
        events = [
            BucketEvent(
                event_name=OBJECT_REMOVED_DELETE,
                bucket=bucket,
                key=key,
                size=0,
                etag="",
                sequencer=sequencer_for(time.time_ns()),
                event_time=now,
                # lifecycle marked it before removing it (issue 12): announced as ILM's
                user_agent=marker_agent(self.store.root, bucket, key, prev.etag),
                principal=principal,
            )
            for bucket, key, prev in items
            if self.notifications.get(bucket).wants(OBJECT_REMOVED_DELETE, key)
        ]
        if events:
            self.outbox.add(self.settings, events)
        self.index.apply([], [(b, k) for b, k, _ in items])

    # -- running -------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.to_thread(self.scan)
        await asyncio.to_thread(self.settle)
        settle_task = asyncio.create_task(self._settle_loop(stop))
        try:
            async for changes in awatch(
                self.store.root,
                stop_event=stop,
                debounce=50,
                step=20,
                recursive=True,
                force_polling=False,
            ):
                for change, raw in changes:
                    path = Path(raw)
                    if change == Change.deleted:
                        mapped = self._split(path)
                        if mapped is not None:
                            self._pending[mapped] = _Pending(-1, -1, time.monotonic())
                        else:
                            # a folder went away: let the next scan reconcile it
                            await asyncio.to_thread(self.scan)
                        continue
                    if path.is_dir():
                        await asyncio.to_thread(self.scan)
                        continue
                    mapped = self._split(path)
                    if mapped is None:
                        continue
                    with contextlib.suppress(FileNotFoundError):
                        st = os.stat(path, follow_symlinks=False)
                        self._observe(*mapped, st.st_size, st.st_mtime_ns)
        finally:
            settle_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await settle_task

    async def _settle_loop(self, stop: asyncio.Event) -> None:
        last_scan = time.monotonic()
        interval = max(0.05, self.settings.watch_settle_seconds / 2)
        while not stop.is_set():
            try:
                if self._pending:
                    await asyncio.to_thread(self.settle)
                if time.monotonic() - last_scan > self.rescan_seconds:
                    await asyncio.to_thread(self.scan)
                    last_scan = time.monotonic()
            except Exception:  # keep watching; the next scan reconciles
                log.exception("watcher settle failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)


def _content_type(key: str) -> str:
    import mimetypes

    return mimetypes.guess_type(key)[0] or "application/octet-stream"
