"""Delta Lake writes with the ingestion ledger in the same commit (application transactions)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import TableNotFoundError

from lakehouse.tables import SourceVersion


def open_table(uri: str, storage_options: dict[str, str]) -> DeltaTable | None:
    try:
        return DeltaTable(uri, storage_options=storage_options or None)
    except TableNotFoundError:
        return None


def ingested_versions(
    uri: str, storage_options: dict[str, str], sources: Iterable[SourceVersion]
) -> dict[SourceVersion, int | None]:
    """The ledger's version for each source (``None`` when the object was never ingested)."""
    dt = open_table(uri, storage_options)
    return {s: (dt.transaction_version(s.app_id) if dt else None) for s in sources}


def pending_sources(
    uri: str, storage_options: dict[str, str], sources: Iterable[SourceVersion]
) -> list[SourceVersion]:
    """Sources whose content (bucket, key, etag) the ledger has never seen."""
    done = ingested_versions(uri, storage_options, sources)
    return [s for s, v in done.items() if v is None]


def commit_batch(
    uri: str,
    storage_options: dict[str, str],
    data: pa.Table | Any,
    sources: list[SourceVersion],
    *,
    mode: str = "append",
    partition_by: list[str] | None = None,
    schema_mode: str | None = "merge",
    extra_metadata: dict[str, str] | None = None,
) -> int:
    """Write rows and record every source in one commit; returns the new table version."""
    props = CommitProperties(
        app_transactions=[Transaction(app_id=s.app_id, version=s.version) for s in sources],
        custom_metadata={"lakewire.sources": str(len(sources)), **(extra_metadata or {})},
    )
    write_deltalake(
        uri,
        data,
        mode=mode,  # type: ignore[arg-type]
        partition_by=partition_by,
        schema_mode=schema_mode,  # type: ignore[arg-type]
        storage_options=storage_options or None,
        commit_properties=props,
    )
    dt = DeltaTable(uri, storage_options=storage_options or None)
    return dt.version()
