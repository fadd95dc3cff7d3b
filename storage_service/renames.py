"""Bucket rename: neither S3 nor a folder-per-bucket store can rename a bucket, so we move it.

The new bucket is created, every object is copied (streamed; server-side on S3), counts and
bytes are verified, and only then is the original emptied and removed. The state of each
rename is persisted after every step, so a service that dies mid-way resumes at start; a copy
that fails rolls back by removing only the new bucket. An object is deleted from the source only
after its copy in the target is confirmed, so no step ever loses one.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from lakehouse.objectstore import (
    BucketExists,
    BucketNotFound,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    StorageError,
    validate_bucket_name,
)
from storage_service.buckets import BucketCatalog
from storage_service.gate import BucketGate

log = logging.getLogger(__name__)

Phase = Literal["copying", "verifying", "deleting", "done", "rolled_back"]
ACTIVE_PHASES = ("copying", "verifying", "deleting")
MAX_COPY_PASSES = 3
PERSIST_EVERY_SECONDS = 0.5


class RenameConflict(StorageError):
    pass


class _Halted(Exception):
    """The service is stopping: leave the state as it is so the next start resumes it."""


class RenameState(BaseModel):
    source: str
    target: str
    phase: Phase = "copying"
    created_target: bool = False
    total_objects: int = 0
    total_bytes: int = 0
    copied_objects: int = 0
    copied_bytes: int = 0
    deleted_objects: int = 0
    error: str | None = None
    started_at: str
    finished_at: str | None = None


# Called before a copy lands (so the watcher can announce it as a Copy), and after, with the
# facts the store returned for the copy.
BeforeCopy = Callable[[str, str], None]
AfterCopy = Callable[[str, str, ObjectInfo], None]


class Renamer:
    def __init__(
        self,
        path: Path,
        store: ObjectStore,
        catalog: BucketCatalog,
        gate: BucketGate,
        before_copy: BeforeCopy | None = None,
        after_copy: AfterCopy | None = None,
    ) -> None:
        self.path = path
        self.store = store
        self.catalog = catalog
        self.gate = gate
        self.before_copy = before_copy
        self.after_copy = after_copy
        self._lock = threading.Lock()
        self._file_lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self._states: dict[str, RenameState] = {}
        if path.exists():
            raw = json.loads(path.read_text())
            self._states = {k: RenameState.model_validate(v) for k, v in raw.items()}
        for state in self._states.values():  # an unfinished rename still holds both names
            if state.phase in ACTIVE_PHASES:
                self.gate.claim(self._reason(state), state.source, state.target)
        self._last_persist = 0.0
        self._halt = threading.Event()

    # -- state -----------------------------------------------------------------------------------
    def _persist(self, force: bool = True) -> None:
        now = time.monotonic()
        if not force and now - self._last_persist < PERSIST_EVERY_SECONDS:
            return
        with self._file_lock:  # renames run in their own threads; one writer at a time
            with self._lock:
                data = {k: v.model_dump() for k, v in self._states.items()}
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data))
            tmp.replace(self.path)
            self._last_persist = now

    def status(self, source: str) -> RenameState | None:
        with self._lock:
            state = self._states.get(source)
            return state.model_copy() if state else None

    def busy(self, bucket: str) -> bool:
        """True while ``bucket`` is the source or target of a rename (writes get 409)."""
        with self._lock:
            return any(
                s.phase in ACTIVE_PHASES and bucket in (s.source, s.target)
                for s in self._states.values()
            )

    # -- starting --------------------------------------------------------------------------------
    @staticmethod
    def _reason(state: RenameState) -> str:
        return f"being renamed ('{state.source}' -> '{state.target}')"

    def start(self, source: str, target: str) -> RenameState:
        """Check and claim both names in one step, so two renames (or a rename and a create,
        delete or upload) can never both be accepted for the same bucket."""
        validate_bucket_name(target)
        if source == target:
            raise RenameConflict("the new name is the same as the current name")
        state = RenameState(
            source=source, target=target, started_at=datetime.now(tz=UTC).isoformat()
        )
        self.gate.claim(self._reason(state), source, target)
        try:
            if not self.store.bucket_exists(source):
                raise BucketNotFound(f"bucket '{source}' does not exist")
            if self.store.bucket_exists(target):
                raise BucketExists(f"bucket '{target}' already exists")
            with self._lock:
                self._states[source] = state
            self._persist()
        except BaseException:
            self.gate.release(source, target)
            raise
        self._launch(source)
        return state.model_copy()

    def resume_all(self) -> list[str]:
        """Continue every rename a previous run of the service left unfinished."""
        with self._lock:
            pending = [k for k, s in self._states.items() if s.phase in ACTIVE_PHASES]
        for source in pending:
            log.info("resuming rename of %s", source)
            self._launch(source)
        return pending

    def _launch(self, source: str) -> None:
        thread = threading.Thread(target=self.run, args=(source,), daemon=True)
        self._threads[source] = thread
        thread.start()

    def shutdown(self, timeout: float = 10.0) -> None:
        self._halt.set()
        for thread in list(self._threads.values()):
            thread.join(timeout)

    def _check_halt(self) -> None:
        if self._halt.is_set():
            raise _Halted()

    def wait(self, source: str, timeout: float | None = None) -> RenameState | None:
        thread = self._threads.get(source)
        if thread is not None:
            thread.join(timeout)
        return self.status(source)

    # -- running ---------------------------------------------------------------------------------
    def run(self, source: str) -> None:
        state = self._states[source]
        try:
            if state.phase == "copying":
                self._create_target(state)
                self._copy_until_verified(state)
            if state.phase == "verifying":
                self._copy_until_verified(state)
            if state.phase == "deleting":
                self._delete_source(state)
                state.phase = "done"
                state.finished_at = datetime.now(tz=UTC).isoformat()
                self._persist()
        except _Halted:
            self._persist()
            return  # the next start resumes it, still holding both names
        except Exception as exc:
            log.warning("rename %s -> %s failed: %s", state.source, state.target, exc)
            state.error = str(exc)
            if state.phase in ("copying", "verifying"):
                self._rollback(state)
            self._persist()
        if state.phase not in ACTIVE_PHASES:
            self.gate.release(state.source, state.target)

    def _create_target(self, state: RenameState) -> None:
        """Create the target; never adopt a bucket this rename did not create."""
        if not state.created_target:
            try:
                self.store.create_bucket(state.target)
            except BucketExists as exc:
                raise RenameConflict(
                    f"bucket '{state.target}' was created outside the service meanwhile; "
                    "the rename stopped and left both buckets as they are"
                ) from exc
            self.catalog.created(state.target)
            state.created_target = True
            self._persist()
        # The new bucket behaves like the old one from its first object on.
        config = self.catalog.notification_config(state.source)
        if config.rules:
            self.catalog.set_notification_config(state.target, config)

    def _same(self, key: str, size: int, target: str) -> bool:
        try:
            return self.store.head(target, key).size == size
        except ObjectNotFound:
            return False

    def _copy_one(self, state: RenameState, key: str) -> None:
        self._check_halt()
        if self.before_copy:
            self.before_copy(state.target, key)
        info = self.store.copy_object(state.source, key, state.target)
        if self.after_copy:
            self.after_copy(state.target, key, info)

    def _copy_until_verified(self, state: RenameState) -> None:
        """Copy what the target lacks, then compare counts and bytes; repeat if writers raced."""
        for _ in range(MAX_COPY_PASSES):
            state.phase = "copying"
            objects = list(self.store.iter_objects(state.source))
            state.total_objects = len(objects)
            state.total_bytes = sum(o.size for o in objects)
            state.copied_objects = state.copied_bytes = 0
            for obj in objects:
                self._check_halt()
                if not self._same(obj.key, obj.size, state.target):
                    try:
                        self._copy_one(state, obj.key)
                    except ObjectNotFound:
                        continue  # deleted from the source meanwhile: nothing to keep
                state.copied_objects += 1
                state.copied_bytes += obj.size
                self._persist(force=False)
            state.phase = "verifying"
            self._persist()
            src = [(o.key, o.size) for o in self.store.iter_objects(state.source)]
            dst = {o.key: o.size for o in self.store.iter_objects(state.target)}
            missing = [k for k, size in src if dst.get(k) != size]
            if not missing and len(src) == len(dst) and sum(s for _, s in src) == sum(dst.values()):
                state.total_objects, state.total_bytes = len(src), sum(s for _, s in src)
                state.phase = "deleting"
                self._persist()
                return
        raise StorageError(
            f"verification failed after {MAX_COPY_PASSES} passes: "
            f"{len(missing)} objects differ (is something still writing to '{state.source}'?)"
        )

    def _delete_source(self, state: RenameState) -> None:
        for obj in list(self.store.iter_objects(state.source)):
            self._check_halt()
            if not self._same(obj.key, obj.size, state.target):
                self._copy_one(state, obj.key)  # arrived after verification: move it too
            self.store.delete(state.source, obj.key)
            state.deleted_objects += 1
            self._persist(force=False)
        if self.store.bucket_exists(state.source):
            self.store.delete_bucket(state.source)
        self.catalog.bucket_deleted(state.source)
        self.catalog.forget(state.target)

    def _rollback(self, state: RenameState) -> None:
        """Undo a failed copy: the source was never touched, so drop only what we created."""
        try:
            if state.created_target and self.store.bucket_exists(state.target):
                self.store.delete_bucket(state.target)
                self.catalog.bucket_deleted(state.target)
            state.phase = "rolled_back"
            state.finished_at = datetime.now(tz=UTC).isoformat()
        except Exception as exc:  # stay resumable rather than pretend
            log.warning("rollback of rename %s failed: %s", state.source, exc)
