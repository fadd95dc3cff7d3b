"""Objects in watched buckets that no route takes, counted so a user learns why no table appeared.

An object no route matches is not an error (a bucket holds more than landing files), but it is
the usual answer to "I put a file and nothing happened". The storage service counts them per
bucket in the background (a full listing is too slow for every bucket list), and the bucket
cards, ``GET /api/buckets`` and ``lakewire status`` (through ``unrouted.json`` in the state
dir) show the count with a few example keys. The sensor logs the same objects as they arrive.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lakehouse.objectstore import BucketNotFound, ObjectStore
from lakehouse.routes import route_for, settings_routes
from lakehouse.settings import Settings

log = logging.getLogger(__name__)
EXAMPLES = 5


@dataclass
class Unrouted:
    objects: int = 0
    examples: list[str] = field(default_factory=list)


def state_file(settings: Settings) -> Path:
    return settings.state_dir / "unrouted.json"


def count_unrouted(settings: Settings, store: ObjectStore) -> dict[str, Unrouted]:
    """Per bucket that a route watches: the objects no route matches (quarantined copies and
    their reasons are not counted: they have their own report)."""
    routes = settings_routes(settings)
    out: dict[str, Unrouted] = {}
    for bucket in sorted({r.bucket for r in routes}):
        found = Unrouted()
        try:
            for info in store.iter_objects(bucket):
                if info.key.startswith(settings.quarantine_prefix):
                    continue
                if route_for(routes, bucket, info.key, settings) is None:
                    found.objects += 1
                    if len(found.examples) < EXAMPLES:
                        found.examples.append(info.key)
        except BucketNotFound:
            continue
        out[bucket] = found
    return out


def save(settings: Settings, counts: dict[str, Unrouted]) -> None:
    """Written whole and renamed in, so ``lakewire status`` never reads half a file."""
    path = state_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({b: asdict(u) for b, u in counts.items()}))
    os.replace(tmp, path)


def load(settings: Settings) -> dict[str, Unrouted] | None:
    """The last count the storage service saved; ``None`` before its first."""
    try:
        raw = json.loads(state_file(settings).read_text())
        return {b: Unrouted(int(u["objects"]), list(u["examples"])) for b, u in raw.items()}
    except (OSError, ValueError, KeyError, TypeError):
        return None
