"""Runtime routes: versioned routes documents in the system bucket, read by every process.

The live routes are the newest of ``lakewire-system/routes/versions/<n>.json``; each version
holds the routes YAML exactly as submitted, who submitted it, when, why, and what it came from
(``seed``, ``api``, ``cli``, ``rollback``). Nothing is overwritten, so the history is the list
of versions and a rollback is a new version with an old text. The storage service seeds
version 1 from the routes file on its first start; until then, and whenever the system bucket
holds no routes, readers use the routes file.

The storage service (``PUT /api/routes``), the Dagster code location (every sensor tick and
run) and the CLI read and write through this module on both backends, so a change needs no
image rebuild and no restart: the next event is routed by the new version.
"""

from __future__ import annotations

import difflib
import json
import threading
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from lakehouse.objectstore import BucketNotFound, ObjectNotFound, ObjectStore, open_object_store
from lakehouse.routes import SYSTEM_BUCKET, RoutesError, RouteSet, check_routes, read_routes_file
from lakehouse.settings import Settings
from lakehouse.tenants import tenant_ids

PREFIX = "routes/versions/"
Source = Literal["seed", "api", "cli", "rollback"]
_write_lock = threading.Lock()  # one writer per process; across processes see save()


class RoutesConflict(RoutesError):
    """The live routes changed since the version the caller based its change on."""


@dataclass(frozen=True)
class RoutesVersion:
    version: int
    text: str
    author: str
    at: str  # ISO 8601, UTC
    comment: str
    source: Source

    @property
    def key(self) -> str:
        return version_key(self.version)


def version_key(version: int) -> str:
    return f"{PREFIX}{version:09d}.json"


class RoutesStore:
    """The routes versions in the system bucket of one object store."""

    def __init__(self, settings: Settings, store: ObjectStore | None = None) -> None:
        self.settings = settings
        self.store = store or open_object_store(settings)

    def _versions(self) -> list[int]:
        try:
            infos = list(self.store.iter_objects(SYSTEM_BUCKET, PREFIX))
        except BucketNotFound:
            return []
        out = []
        for info in infos:
            stem = info.key.removeprefix(PREFIX).removesuffix(".json")
            if stem.isdigit():
                out.append(int(stem))
        return sorted(out)

    def get(self, version: int) -> RoutesVersion:
        try:
            data = json.loads(self.store.get_bytes(SYSTEM_BUCKET, version_key(version)))
        except (ObjectNotFound, BucketNotFound):
            raise RoutesError(f"there is no routes version {version}") from None
        return RoutesVersion(**data)

    def latest(self) -> RoutesVersion | None:
        versions = self._versions()
        return self.get(versions[-1]) if versions else None

    def history(self) -> list[RoutesVersion]:
        return [self.get(v) for v in self._versions()]

    def save(
        self,
        text: str,
        author: str,
        source: Source,
        comment: str = "",
        expected: int | None = None,
    ) -> RoutesVersion:
        """Validate ``text`` (RoutesError naming route and field) and store it as the newest
        version. ``expected`` is the version the change was based on: if the live routes moved
        on meanwhile, RoutesConflict. Writers in one process are serialised; of two processes
        saving the same version at once, the one whose write was overwritten usually sees it
        when it reads the version back (no conditional write is used: the local backend has
        none)."""
        check_routes(text, "routes", self.settings.quarantine_prefix)
        with _write_lock:
            versions = self._versions()
            current = versions[-1] if versions else 0
            if expected is not None and expected != current:
                raise RoutesConflict(
                    f"the routes are at version {current}, not {expected}: reload and retry"
                )
            if not self.store.bucket_exists(SYSTEM_BUCKET):
                self.store.create_bucket(SYSTEM_BUCKET)
            entry = RoutesVersion(
                version=current + 1,
                text=text,
                author=author,
                at=datetime.now(UTC).isoformat(timespec="seconds"),
                comment=comment,
                source=source,
            )
            self.store.put(SYSTEM_BUCKET, entry.key, json.dumps(asdict(entry)).encode())
            if self.get(entry.version) != entry:
                raise RoutesConflict("another writer saved the same routes version: retry")
            return entry

    def seed(self) -> RoutesVersion | None:
        """First start: the routes file becomes version 1 (nothing happens once there is one)."""
        if self._versions():
            return None
        text, origin = read_routes_file(self.settings.routes_file)
        return self.save(text, f"seed from {origin}", "seed", "seeded from the routes file", 0)

    def rollback(self, version: int, author: str, comment: str = "") -> RoutesVersion:
        old = self.get(version)
        return self.save(old.text, author, "rollback", comment or f"rollback to version {version}")


def diff(before: str, after: str, version: int) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            f"routes v{version - 1}",
            f"routes v{version}",
        )
    )


def history_with_diffs(store: RoutesStore) -> list[tuple[RoutesVersion, str]]:
    out = []
    previous = ""
    for v in store.history():
        out.append((v, diff(previous, v.text, v.version)))
        previous = v.text
    return out


@dataclass
class LiveRoutes:
    routes: RouteSet
    source: str  # 'lakewire-system v3' or the routes file's path
    version: RoutesVersion | None


def live(settings: Settings, store: ObjectStore | None = None) -> LiveRoutes:
    """The routes every process uses now: the system bucket's newest version, else the file,
    knowing the tenants registered now (so ``{tenant}`` routes a new tenant's next object)."""
    versions = RoutesStore(settings, store)
    current = versions.latest()
    if current is not None:
        origin = f"{SYSTEM_BUCKET} routes v{current.version}"
        checked = check_routes(current.text, origin, settings.quarantine_prefix)
    else:
        text, origin = read_routes_file(settings.routes_file)
        checked = check_routes(text, origin, settings.quarantine_prefix)
    tenants = tenant_ids(versions.store)
    if tenants:
        checked = replace(checked, routes=[r.with_tenants(tenants) for r in checked.routes])
    return LiveRoutes(checked, origin, current)


def live_routes(settings: Settings, store: ObjectStore | None = None) -> RouteSet:
    return live(settings, store).routes
