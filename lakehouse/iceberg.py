"""Iceberg tables through pyiceberg: SQL catalog (SQLite) embedded, REST catalog on the platform."""

from __future__ import annotations

from typing import Any

from lakehouse.objectstore import LocalObjectStore, S3ObjectStore
from lakehouse.settings import Settings
from lakehouse.tables import TableRef


def catalog(settings: Settings, store: LocalObjectStore | S3ObjectStore) -> Any:
    from pyiceberg.catalog.sql import SqlCatalog

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    props: dict[str, str] = {
        "uri": settings.iceberg_catalog_uri,
        "warehouse": store.url(settings.lake_bucket, "iceberg"),
    }
    if isinstance(store, S3ObjectStore):
        s = settings
        props.update(
            {
                "s3.endpoint": s.s3_endpoint or "",
                "s3.access-key-id": s.s3_access_key.get_secret_value() if s.s3_access_key else "",
                "s3.secret-access-key": (
                    s.s3_secret_key.get_secret_value() if s.s3_secret_key else ""
                ),
                "s3.region": s.s3_region,
            }
        )
    return SqlCatalog("lakewire", **props)


def load_table(
    settings: Settings, store: LocalObjectStore | S3ObjectStore, ref: TableRef
) -> Any | None:
    from pyiceberg.exceptions import NoSuchTableError

    try:
        return catalog(settings, store).load_table((ref.schema, ref.name))
    except NoSuchTableError:
        return None
