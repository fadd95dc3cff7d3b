"""The service's long-lived parts, started and stopped together with the HTTP app.

Event emission (watcher -> outbox -> JetStream) runs inside the service process so that the
service is the one place that decides what a bucket change is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from lakehouse.audit_table import flush_audit
from lakehouse.objectstore import LocalObjectStore, ObjectInfo, ObjectStore, open_object_store
from lakehouse.settings import Settings
from lakehouse.tenants import Tenant
from lakehouse.trino_rules import write_rules
from storage_service.auth import load_or_create_api_key
from storage_service.buckets import BucketCatalog
from storage_service.events import OBJECT_CREATED_COPY
from storage_service.gate import BucketGate
from storage_service.index import ObjectIndex
from storage_service.minio_users import MinioTenants, open_minio_tenants
from storage_service.notifications import NotificationStore, default_notifications
from storage_service.outbox import Outbox, run_publisher
from storage_service.presign import UrlSigner, load_or_create_signing_key
from storage_service.renames import Renamer
from storage_service.sqs import run_sqs_drain
from storage_service.stream import read_after
from storage_service.tenants import TenantRegistry
from storage_service.unrouted import Unrouted, count_unrouted
from storage_service.unrouted import save as save_unrouted
from storage_service.watcher import DirectoryWatcher

log = logging.getLogger(__name__)


@dataclass
class ServiceRuntime:
    settings: Settings
    store: ObjectStore = field(init=False)
    index: ObjectIndex = field(init=False)
    outbox: Outbox = field(init=False)
    notifications: NotificationStore = field(init=False)
    api_key: str = field(init=False)
    tenants: TenantRegistry = field(init=False)
    minio_users: MinioTenants | None = field(init=False, default=None)
    catalog: BucketCatalog = field(init=False)
    renamer: Renamer = field(init=False)
    signer: UrlSigner = field(init=False)
    gate: BucketGate = field(init=False)
    uploads: asyncio.Semaphore = field(init=False)
    watcher: DirectoryWatcher | None = field(init=False, default=None)
    _stop: asyncio.Event | None = field(init=False, default=None)
    _tasks: list[asyncio.Task[None]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        s = self.settings
        s.state_dir.mkdir(parents=True, exist_ok=True)
        self.store = open_object_store(s)
        self.index = ObjectIndex(s.state_dir / "index.db")
        self.outbox = Outbox(s.state_dir / "outbox.db")
        self.notifications = NotificationStore(
            s.state_dir / "notifications.json", default_notifications(s.landing_bucket)
        )
        self.api_key = load_or_create_api_key(s)
        self.tenants = TenantRegistry(s, self.store, on_change=self._tenants_changed)
        self.minio_users = open_minio_tenants(s)
        self.catalog = BucketCatalog(s, self.store, self.index, self.notifications)
        self.unrouted: dict[str, Unrouted] = {}
        self.signer = UrlSigner(load_or_create_signing_key(s))
        self.gate = BucketGate()
        self.uploads = asyncio.Semaphore(s.max_concurrent_uploads)
        if isinstance(self.store, LocalObjectStore):  # composition: the watcher needs the folder
            self.watcher = DirectoryWatcher(
                self.settings, self.store, self.index, self.outbox, self.notifications
            )
        self.renamer = Renamer(
            s.state_dir / "renames.json",
            self.store,
            self.catalog,
            self.gate,
            before_copy=self._before_copy,
            after_copy=self._after_copy,
        )

    def _tenants_changed(self, tenants: list[Tenant]) -> None:
        """Trino's rules follow the registry (platform: LAKEWIRE_TRINO_RULES_FILE is set)."""
        if self.settings.trino_rules_file is not None:
            write_rules(self.settings.trino_rules_file, self.settings, tenants)

    def sync_trino_rules(self) -> None:
        """At start: tenants changed by another replica, or a file lost with its volume."""
        self._tenants_changed(self.tenants.all())

    def ensure_default_buckets(self) -> None:
        self.catalog.ensure_default_buckets()

    # -- the watcher stays the one emitter; the API only tells it what kind of write it made ---
    def _before_copy(self, bucket: str, key: str) -> None:
        if self.watcher is not None:
            self.watcher.hint_start(bucket, key, OBJECT_CREATED_COPY)

    def _after_copy(self, bucket: str, key: str, info: ObjectInfo) -> None:
        self.announce_write(bucket, key, info)

    def announce_write(self, bucket: str, key: str, info: ObjectInfo) -> None:
        """A write the service made is in place: its event (local) and stats go out now."""
        if self.watcher is not None:
            self.watcher.write_done(bucket, key, info)
        else:
            self.catalog.record_write(bucket, key, info.size, info.etag)

    def announce_delete(self, bucket: str, key: str, principal: str | None = None) -> None:
        if self.watcher is not None:
            self.watcher.delete_done(bucket, key, principal)
        else:
            self.catalog.record_delete(bucket, key)

    async def start(self) -> None:
        self._stop = asyncio.Event()
        self.outbox.bind(asyncio.get_running_loop())
        try:
            await asyncio.to_thread(self.ensure_default_buckets)
        except Exception as exc:  # an unreachable S3 backend is reported, not fatal
            log.warning("could not create default buckets: %s", exc)
        self._tasks.append(
            asyncio.create_task(run_publisher(self.settings, self.outbox, self._stop))
        )
        if self.watcher is not None:
            self._tasks.append(asyncio.create_task(self.watcher.run(self._stop)))
        if self.settings.sqs_queue_url:
            self._tasks.append(
                asyncio.create_task(run_sqs_drain(self.settings, self.outbox, self._stop))
            )
        self._tasks.append(asyncio.create_task(self._count_unrouted(self._stop)))
        if self.store.native_events:
            self._tasks.append(asyncio.create_task(self._count_s3_buckets(self._stop)))
            self._tasks.append(asyncio.create_task(self._follow_s3_events(self._stop)))
        if self.settings.trino_rules_file is not None:
            try:
                await asyncio.to_thread(self.sync_trino_rules)
            except Exception as exc:
                log.error("could not write Trino's rules file: %s", exc)
        try:
            self.renamer.resume_all()
        except Exception as exc:
            log.warning("could not resume renames: %s", exc)

    async def _count_unrouted(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                counts = await asyncio.to_thread(count_unrouted, self.settings, self.store)
                self.unrouted = counts
                await asyncio.to_thread(save_unrouted, self.settings, counts)
            except Exception as exc:  # a routes or backend problem is reported elsewhere
                log.warning("could not count unrouted objects: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.settings.unrouted_refresh_seconds)

    def flush_audit(self) -> int:
        """Copy the audit lines not yet in ``delta.system.audit`` into it (before a query of it)."""
        return flush_audit(self.settings, self.store)

    async def _count_s3_buckets(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.catalog.refresh_s3_stats)
            except Exception as exc:  # unreachable backend: the summary says DISCONNECTED
                log.warning("could not count S3 buckets: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.settings.s3_stats_refresh_seconds)

    async def _follow_s3_events(self, stop: asyncio.Event) -> None:
        """Read the bucket events MinIO publishes and apply them to the S3 stats."""
        cursor_file = self.settings.state_dir / "stats_stream_cursor"
        cursor = int(cursor_file.read_text()) if cursor_file.exists() else 0
        while not stop.is_set():
            idle = True
            try:
                batch = await read_after(self.settings, cursor, 1000, 2.0)
                if batch.stream_last_seq < cursor:  # the stream was re-created: start over
                    cursor = 0
                    continue
                if batch.events:
                    await asyncio.to_thread(self.catalog.apply_events, batch.events)
                if batch.last_seq > cursor:
                    cursor = batch.last_seq
                    cursor_file.write_text(str(cursor))
                    idle = False
            except Exception as exc:  # NATS away: the periodic count still corrects the stats
                log.debug("stats follower: %s", exc)
            if idle:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)

    async def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
        await asyncio.to_thread(self.renamer.shutdown)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self.outbox.close()
        self.index.close()
