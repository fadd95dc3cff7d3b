"""The one settings object of Lakewire (env prefix ``LAKEWIRE_``).

It lives in the bottom layer because every layer (the service, the Dagster code location, the
CLI) runs in its own process and must read the same configuration; putting it higher would
force imports to point up. Everything that differs between the embedded default and the
platform is a field here, never a second implementation.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_API_KEY_CHARS = 24


class Settings(BaseSettings):
    # On the platform, generated credentials are files named after the field
    # (``lakewire_s3_secret_key``...) in LAKEWIRE_SECRETS_DIR, never values in compose.
    model_config = SettingsConfigDict(
        env_prefix="LAKEWIRE_",
        extra="ignore",
        hide_input_in_errors=True,  # a refused credential must not be echoed into logs
        secrets_dir=os.environ.get("LAKEWIRE_SECRETS_DIR") or None,
    )

    data_dir: Path = Field(default=Path(".lakewire"), description="All embedded state lives here.")

    # --- object storage -------------------------------------------------------------------
    storage_backend: Literal["local", "s3"] = "local"
    s3_endpoint: str | None = None
    s3_access_key: SecretStr | None = None
    s3_secret_key: SecretStr | None = None
    s3_region: str = "us-east-1"
    s3_path_style: bool = True
    s3_allow_http: bool = True
    default_buckets: list[str] = Field(
        default=[
            "datasets",
            "co2-data",
            "results",
            "ais-data",
            "synthetic-data",
            "dagster",
            "landing",
            "lake",
            "models",
        ],
        description="Created on first start: the common buckets users document (datasets, "
        "co2-data, results, ais-data, synthetic-data, dagster), the landing and lake buckets "
        "ingestion uses, and models (trained models and their evaluations).",
    )
    landing_bucket: str = "landing"
    lake_bucket: str = "lake"
    max_object_bytes: int = 5 * 1024**3
    presign_max_seconds: int = 3600
    upload_part_bytes: int = Field(
        default=8 * 1024**2,
        description="Uploads larger than this go up in parts of this size (multipart on S3), "
        "so the service never holds a whole body in memory.",
    )
    max_concurrent_uploads: int = Field(
        default=32,
        ge=1,
        description="Uploads the service streams at once; more get 503 with Retry-After (as S3 "
        "answers SlowDown), so memory and file descriptors stay bounded.",
    )
    public_url: str | None = Field(
        default=None,
        description="The service's address as clients reach it; presigned links are built on "
        "it, never on a request's Host header. Unset means http://<host>:<storage_port>.",
    )
    s3_notification_arn: str = Field(
        default="arn:minio:sqs::_:nats",
        description="Queue target that bucket notification rules are applied to on S3 (MinIO's "
        "NATS target by default).",
    )
    unrouted_refresh_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How often the storage service re-counts the objects no route takes in the "
        "buckets routes watch (bucket cards, lakewire status).",
    )
    s3_stats_refresh_seconds: float = Field(
        default=300.0,
        description="S3 backend: how often bucket statistics are re-counted from a listing; "
        "between counts they follow the service's own writes.",
    )

    # --- events ---------------------------------------------------------------------------
    nats_url: str | None = None
    nats_port: int = 4222
    stream_name: str = "STORAGE_EVENTS"
    subject_prefix: str = "storage.events"
    watch_settle_seconds: float = Field(
        default=0.25,
        description="A file must keep its size and mtime this long before it is announced, so "
        "a partially copied file never produces an event.",
    )

    # --- services -------------------------------------------------------------------------
    host: str = "127.0.0.1"
    storage_port: int = 9400
    dagster_port: int = 3000
    api_key: SecretStr | None = Field(
        default=None,
        description="The admin API key; unset means one generated on first start. At least 24 "
        "characters, so it cannot be guessed.",
    )

    webhook_token: SecretStr | None = Field(
        default=None,
        description="Token S3-format event webhooks (POST /api/events/s3) must send; unset means "
        "one generated on first start (state/webhook_token, 0600).",
    )

    minio_admin_access_key: SecretStr | None = Field(
        default=None,
        description="MinIO only: an admin credential, held by the tenants endpoint alone, to "
        "make each tenant a MinIO user with a policy limited to its scope (docs/tenants.md). "
        "Unset: no MinIO users (the API still enforces every tenant's scope).",
    )
    minio_admin_secret_key: SecretStr | None = None
    minio_kms: bool = Field(
        default=False,
        description="MinIO only: the store has a KMS that can create keys (MinIO with KES), so "
        "creating a tenant also creates its SSE-KMS key lakewire-tenant-<id> through the admin "
        "API. Off by default (the embedded store has no KMS).",
    )
    tenant_max_concurrent_runs: int = Field(
        default=2,
        ge=1,
        description="Ingestion runs of one tenant's objects that run at once (Dagster's run "
        "queue, tag lakewire/tenant); more wait, so one tenant cannot take every slot.",
    )

    sqs_queue_url: str | None = Field(
        default=None,
        description="AWS S3 -> SQS bucket notifications: the service drains this queue into its "
        "outbox (credentials and region: the S3 ones).",
    )
    sqs_endpoint: str | None = Field(default=None, description="SQS endpoint, if not AWS's.")

    # --- Trino (platform) -------------------------------------------------------------------
    trino_url: str | None = Field(
        default=None, description="e.g. http://trino:8080; unset means no Trino registration."
    )
    trino_user: str = Field(
        default="lakewire-ingest",
        description="The principal that may create schemas and register tables "
        "(deploy/trino/access-control.json).",
    )
    trino_catalog: str = "delta"
    trino_schemas: list[str] = Field(
        default=["default"],
        description="Delta schemas trino-init creates (tables add their own on first commit).",
    )
    trino_rules_file: Path | None = Field(
        default=None,
        description="Trino's file-based access control rules, rewritten from the tenant "
        "registry on every tenant change (lakehouse/trino_rules.py); Trino re-reads it every "
        "security.refresh-period. Unset: no file is written (the embedded default has no Trino).",
    )
    trino_register_attempts: int = Field(default=5, ge=1)
    trino_init_timeout_seconds: float = 180.0

    # --- lifecycle (issue 12, docs/lifecycle.md) --------------------------------------------
    lifecycle_tiers: dict[str, str] = Field(
        default={"WARM": "archive-warm", "COLD": "archive-cold"},
        description="Storage class -> bucket that holds objects transitioned to it, warmest "
        "first (a transition never moves an object to a warmer class).",
    )
    lifecycle_schedule: str = Field(
        default="0 3 * * *", description="Cron of the daily lifecycle job of each bucket."
    )
    maintenance_schedule: str = Field(
        default="0 4 * * 0", description="Cron of table maintenance (weekly by default)."
    )
    iceberg_compact_max_bytes: int = Field(
        default=1024**3,
        description="Iceberg compaction rewrites a table's rows in one pass in memory; a table "
        "whose data files are larger than this is left as it is (and the run says so).",
    )
    vacuum_min_retention_hours: int = Field(
        default=168, description="Delta vacuum refuses a shorter retention unless forced."
    )

    # --- SQL (SQL Studio, POST /api/sql, lakewire sql) --------------------------------------
    sql_timeout_seconds: float = Field(
        default=300.0, gt=0, description="A query running longer is interrupted (408)."
    )
    sql_max_rows: int = Field(
        default=100_000,
        ge=1,
        description="Rows a result through the HTTP API holds at most; more are cut (truncated).",
    )
    sql_page_rows: int = Field(default=500, ge=1, description="Rows per page of /api/sql.")
    sql_result_ttl_seconds: float = Field(
        default=600.0, description="How long a result's further pages stay available."
    )
    sql_trino_user: str = Field(
        default="lakewire-sql",
        description="The read-only Trino principal queries run as (SQL Studio, lakewire sql).",
    )
    hive_tables_file: Path | None = Field(
        default=None,
        description="The hive catalog's external tables over raw Parquet/CSV prefixes "
        "(lakehouse/hive.py, docs/sql.md); unset means the project's hive_tables.yaml, if any.",
    )

    # --- ingestion ------------------------------------------------------------------------
    sensor_interval_seconds: int = Field(
        default=1,
        ge=1,
        description="Asked of Dagster as minimum_interval_seconds. The daemon evaluates sensors "
        "at most every 5 s whatever this says; asking for less than 5 makes every loop evaluate "
        "instead of every other one when a tick lands just short of the interval.",
    )
    dagster_postgres_url: SecretStr | None = Field(
        default=None,
        description="Embedded platform: keep Dagster's runs, events and schedules in this "
        "Postgres database (postgresql+psycopg2://user:password@host:port/db) instead of SQLite "
        "under the data dir, as the compose platform does.",
    )
    dagster_webserver: str | None = Field(
        default=None,
        description="host:port of the Dagster webserver the dispatcher launches runs through "
        "(compose: dagster-webserver:3000); default: host and dagster_port.",
    )
    dispatch_grace_seconds: float = Field(
        default=3.0,
        ge=0,
        description="How long the sensor leaves a fresh event to the dispatcher (the push path, "
        "pipelines/dispatch.py) before it plans a run for it itself, as the catch-up path.",
    )
    sensor_max_events: int = 10_000
    sensor_max_seconds: float = 20.0
    batch_max_objects: int = Field(
        default=10_000,
        description="Objects per commit of a drain. Large: delta-rs looks up each source's "
        "ledger entry in time that grows with the table's ledger, so ten commits of 1,000 cost "
        "4.5x one of 10,000 (bench burst); batch_max_bytes bounds the memory either way.",
    )
    batch_max_bytes: int = 1024**3
    routes_file: Path | None = Field(
        default=None,
        description="Routes YAML (docs/routes.md); unset means the project's routes.yaml.",
    )
    ingest_max_object_bytes: int = Field(
        default=8 * 1024**3, description="Larger landing objects are quarantined unread."
    )
    ingest_stream_threshold_bytes: int = Field(
        default=256 * 1024**2,
        description="Objects at least this large are read in batches and streamed into the "
        "table commit instead of being loaded whole.",
    )
    ingest_stream_chunk_rows: int = 100_000
    quarantine_prefix: str = Field(
        default="quarantine/",
        description="Bad objects are copied under this prefix of their own bucket, with a "
        "'.reason.json' beside each; routes never match keys under it.",
    )
    reconcile_grace_seconds: float = Field(
        default=300.0,
        description="Reconciliation re-emits only objects older than this: younger ones may "
        "still have their event in flight.",
    )
    reconcile_cron: str = "*/10 * * * *"
    pipeline_modules: list[str] = Field(
        default=[],
        description="Users' Dagster modules (importable names, each with a `defs`) that the "
        "code location loads beside its own (docs/pipelines.md).",
    )
    iceberg_rest_uri: str | None = Field(
        default=None,
        description="Iceberg REST catalog (platform); unset means the SQLite catalog in state.",
    )
    iceberg_rest_warehouse: str | None = Field(
        default=None,
        description="Warehouse name the REST catalog knows (Lakekeeper: 'lakewire', created by "
        "platform init); unset means the warehouse URL s3://<lake>/iceberg.",
    )

    @field_validator("api_key")
    @classmethod
    def _api_key_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_API_KEY_CHARS:
            raise ValueError(
                f"LAKEWIRE_API_KEY must be at least {MIN_API_KEY_CHARS} characters "
                "(leave it unset to have one generated)"
            )
        return value

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def storage_root(self) -> Path:
        """Local backend: one folder per bucket."""
        return self.resolved_data_dir / "storage"

    @property
    def dagster_home(self) -> Path:
        return self.resolved_data_dir / "dagster"

    @property
    def nats_store_dir(self) -> Path:
        return self.resolved_data_dir / "nats"

    @property
    def state_dir(self) -> Path:
        """Service state: outbox, directory index, stats, secrets."""
        return self.resolved_data_dir / "state"

    @property
    def effective_nats_url(self) -> str:
        return self.nats_url or f"nats://{self.host}:{self.nats_port}"

    @property
    def storage_url(self) -> str:
        return f"http://{self.host}:{self.storage_port}"

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or self.storage_url).rstrip("/")

    @property
    def dagster_url(self) -> str:
        return f"http://{self.host}:{self.dagster_port}"

    @cached_property
    def iceberg_catalog_uri(self) -> str:
        return f"sqlite:///{self.state_dir / 'iceberg_catalog.db'}"
