"""Where tables live, and the ledger that makes every write exactly-once.

Delta tables are ``<lake bucket>/<schema>/<table>``; Iceberg tables are in the catalog with
their warehouse at ``<lake bucket>/iceberg``. Each source object that feeds a table is recorded
in the same commit as its rows: as a Delta application transaction (``txn`` action, app id =
source URI + etag, version = the object's sequencer) or as an Iceberg snapshot property. The
etag is the object's content identity (MD5 on both backends, as S3 and MinIO compute it), so a
replayed event, a re-run or a re-upload of the same bytes finds its ledger entry and adds no
rows, while new content under the same key is new data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from lakehouse.objectstore import LocalObjectStore, S3ObjectStore
from lakehouse.settings import Settings

LINEAGE_COLUMNS = ("_source_uri", "_source_etag", "_run_id", "_ingested_at")


@dataclass(frozen=True)
class SourceVersion:
    """One version of one source object: the unit of exactly-once."""

    bucket: str
    key: str
    etag: str
    sequencer: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def app_id(self) -> str:
        return f"lakewire:{self.bucket}/{self.key}#{self.etag}"

    @property
    def version(self) -> int:
        """Sequencers are nanosecond timestamps in hex: newer versions compare greater."""
        try:
            return int(self.sequencer, 16)
        except ValueError:
            return int(hashlib.sha256(self.etag.encode()).hexdigest()[:15], 16)


@dataclass(frozen=True)
class TableRef:
    format: str  # "delta" | "iceberg"
    schema: str
    name: str

    @property
    def qualified(self) -> str:
        return f"{self.format}.{self.schema}.{self.name}"


def delta_table_uri(
    settings: Settings, store: LocalObjectStore | S3ObjectStore, ref: TableRef
) -> str:
    return store.url(settings.lake_bucket, f"{ref.schema}/{ref.name}")
