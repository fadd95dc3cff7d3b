"""The service's long-lived parts, started and stopped together with the HTTP app.

Event emission (watcher -> outbox -> JetStream) runs inside the service process so that the
service is the one place that decides what a bucket change is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from lakehouse.objectstore import BucketExists, LocalObjectStore, S3ObjectStore, open_object_store
from lakehouse.settings import Settings
from storage_service.auth import load_or_create_api_key
from storage_service.index import ObjectIndex
from storage_service.notifications import NotificationStore, default_notifications
from storage_service.outbox import Outbox, run_publisher
from storage_service.watcher import DirectoryWatcher

log = logging.getLogger(__name__)


@dataclass
class ServiceRuntime:
    settings: Settings
    store: LocalObjectStore | S3ObjectStore = field(init=False)
    index: ObjectIndex = field(init=False)
    outbox: Outbox = field(init=False)
    notifications: NotificationStore = field(init=False)
    api_key: str = field(init=False)
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

    def ensure_default_buckets(self) -> None:
        for name in self.settings.default_buckets:
            with contextlib.suppress(BucketExists):
                if not self.store.bucket_exists(name):
                    self.store.create_bucket(name)

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
        if isinstance(self.store, LocalObjectStore):
            self.watcher = DirectoryWatcher(
                self.settings, self.store, self.index, self.outbox, self.notifications
            )
            self._tasks.append(asyncio.create_task(self.watcher.run(self._stop)))

    async def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self.outbox.close()
        self.index.close()
