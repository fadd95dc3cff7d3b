"""A CSV landed in a fresh embedded data dir, described exactly as the watcher would announce it.

The in-process benchmarks call ``pipelines.ingestion.ingest_batch`` directly, so they need the
``SourceVersion`` an event would carry: the content MD5 as etag (what the store reports) and
the mtime-based sequencer.
"""

from __future__ import annotations

from pathlib import Path

from lakehouse.objectstore import LocalObjectStore, open_object_store
from lakehouse.settings import Settings
from lakehouse.tables import SourceVersion
from storage_service.events import sequencer_for


def fresh_lake(data_dir: Path) -> tuple[Settings, LocalObjectStore]:
    settings = Settings(data_dir=data_dir)
    store = open_object_store(settings)
    assert isinstance(store, LocalObjectStore)
    for bucket in (settings.landing_bucket, settings.lake_bucket):
        if not store.bucket_exists(bucket):
            store.create_bucket(bucket)
    return settings, store


def landing_path(settings: Settings, store: LocalObjectStore, key: str) -> Path:
    """Where a plain ``cp`` into the data dir would put the object."""
    path = store.bucket_path(settings.landing_bucket) / key
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def source_for(settings: Settings, store: LocalObjectStore, key: str) -> SourceVersion:
    info = store.head(settings.landing_bucket, key)  # the store's etag: the content MD5
    assert info.mtime_ns is not None
    return SourceVersion(settings.landing_bucket, key, info.etag, sequencer_for(info.mtime_ns))
