"""One-shot set-up of the platform, run by compose on every start (idempotent).

Three steps, three compose services, because order matters:

- ``python -m lakewire.platform_init stream`` (``nats-stream``): the JetStream stream, before
  MinIO starts, since MinIO's JetStream target publishes into it from its first event;
- ``python -m lakewire.platform_init`` (``init``, after MinIO and Lakekeeper are healthy): one
  MinIO user and policy per service (never the root login outside this step), the default
  buckets, the landing bucket's notification rule, the Iceberg warehouse in Lakekeeper;
- ``python -m lakewire.platform_init trino`` (``trino-init``): the Delta schemas in Trino
  (``lakehouse/trino.py``) and the hive catalog's declared external tables
  (``lakehouse/hive.py``).

Any step that fails stops the start with one clear line, because a platform whose landing
bucket sends no events would only look healthy.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import httpx

from lakehouse.routes import SYSTEM_BUCKET
from lakehouse.settings import Settings
from storage_service.notifications import BucketNotifications, NotificationRule
from storage_service.runtime import ServiceRuntime
from storage_service.stream import connect, ensure_stream


class InitError(RuntimeError):
    pass


def _retry(what: str, step: Callable[[], object], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            step()
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise InitError(f"{what}: {exc}") from exc
            time.sleep(1.0)


def ensure_event_stream(settings: Settings) -> None:
    async def run() -> None:
        async with connect(settings) as nc:
            await ensure_stream(nc, settings)

    asyncio.run(run())


# --- MinIO users and policies -------------------------------------------------------------------
READ = ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging"]
WRITE = [
    *READ,
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
    "s3:PutObjectTagging",
]
LIST = [
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:GetBucketLocation",
    "s3:ListBucketMultipartUploads",
]


TENANT_ADMIN_ACTIONS = [
    "admin:CreateUser",
    "admin:DeleteUser",
    "admin:EnableUser",
    "admin:DisableUser",
    "admin:GetUser",
    "admin:CreatePolicy",
    "admin:DeletePolicy",
    "admin:GetPolicy",
    "admin:AttachUserOrGroupPolicy",
    "admin:UpdatePolicyAssociation",
    "admin:KMSCreateKey",
]


def _bucket_access(read: list[str], write: list[str]) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    every = sorted(set(read) | set(write))
    if every:
        statements.append(
            {"Effect": "Allow", "Action": LIST, "Resource": [f"arn:aws:s3:::{b}" for b in every]}
        )
    if read:
        statements.append(
            {"Effect": "Allow", "Action": READ, "Resource": [f"arn:aws:s3:::{b}/*" for b in read]}
        )
    if write:
        statements.append(
            {"Effect": "Allow", "Action": WRITE, "Resource": [f"arn:aws:s3:::{b}/*" for b in write]}
        )
    return statements


def service_policies(settings: Settings) -> dict[str, dict[str, Any]]:
    """The IAM policy of each service's MinIO user: what it needs, never admin rights.

    The storage service manages buckets (create, delete, rename, versioning, notification
    rules), so it has every S3 action on every bucket, but no MinIO admin API; the others get
    object access to the buckets they use.
    """
    s = settings
    lake, landing = s.lake_bucket, s.landing_bucket
    buckets = list(dict.fromkeys(s.default_buckets))
    others = [b for b in buckets if b not in (lake, landing)]
    tiers = sorted(set(s.lifecycle_tiers.values()))

    def policy(statements: list[dict[str, Any]]) -> dict[str, Any]:
        return {"Version": "2012-10-17", "Statement": statements}

    return {
        "storage": policy(
            [{"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::*"]}]
        ),
        # Ingestion reads landing and writes tables, quarantine copies, results, compute logs;
        # it reads the live routes and lifecycle rules in the system bucket (only the storage
        # service writes them), and lifecycle runs move objects into the tier buckets.
        "dagster": policy(
            _bucket_access(read=[*buckets, SYSTEM_BUCKET, *tiers], write=[*buckets, *tiers])
        ),
        # Trino writes its file metastore under the lake; reads files anywhere (hive catalog).
        "trino": policy(_bucket_access(read=buckets, write=[lake])),
        "lakekeeper": policy(_bucket_access(read=[lake], write=[lake])),
        "jupyter": policy(_bucket_access(read=buckets, write=others)),
        # The documented exception (DECISIONS "Store, tenants and credentials"): the tenants
        # endpoint makes each tenant a MinIO user with its own policy, and its KMS key. MinIO
        # admin actions only, no S3 access of its own.
        "tenants": policy([{"Effect": "Allow", "Action": TENANT_ADMIN_ACTIONS}]),
    }


class MinioAdminLike(Protocol):
    def user_add(self, access_key: str, secret_key: str) -> str: ...
    def policy_add(
        self, policy_name: str, policy_file: str | None = None, policy: dict[str, Any] | None = None
    ) -> str: ...
    def policy_set(
        self, policy_name: str, user: str | None = None, group: str | None = None
    ) -> str: ...


def service_logins(secrets_dir: Path) -> dict[str, tuple[str, str]]:
    """Each service's generated MinIO login, from init's own secrets folder."""
    out = {}
    for path in sorted(secrets_dir.glob("s3_*_access_key")):
        user = path.name.removeprefix("s3_").removesuffix("_access_key")
        secret = secrets_dir / f"s3_{user}_secret_key"
        out[user] = (path.read_text().strip(), secret.read_text().strip())
    return out


def ensure_service_users(
    admin: MinioAdminLike, settings: Settings, logins: dict[str, tuple[str, str]]
) -> list[str]:
    """Create (or update) one policy and one user per service and bind them; idempotent."""
    policies = service_policies(settings)
    done = []
    for service, (access, secret) in logins.items():
        if service not in policies:
            raise InitError(f"no MinIO policy defined for service '{service}'")
        name = f"lakewire-{service}"
        admin.policy_add(name, policy=policies[service])
        admin.user_add(access, secret)
        admin.policy_set(name, user=access)
        done.append(service)
    return done


def minio_admin(settings: Settings) -> MinioAdminLike:
    from urllib.parse import urlsplit

    from minio.credentials import StaticProvider
    from minio.minioadmin import MinioAdmin

    if not (settings.s3_endpoint and settings.s3_access_key and settings.s3_secret_key):
        raise InitError("MinIO users need LAKEWIRE_S3_ENDPOINT and the root login")
    url = urlsplit(settings.s3_endpoint)
    return MinioAdmin(
        endpoint=url.netloc,
        credentials=StaticProvider(
            settings.s3_access_key.get_secret_value(), settings.s3_secret_key.get_secret_value()
        ),
        region=settings.s3_region,
        secure=url.scheme == "https",
    )


def ensure_buckets_and_notifications(settings: Settings) -> None:
    rt = ServiceRuntime(settings)
    if not rt.store.ping():
        raise InitError(f"object store at {settings.s3_endpoint} is not reachable")
    rt.ensure_default_buckets()
    try:
        rt.catalog.set_notification_config(
            settings.landing_bucket, BucketNotifications(rules=[NotificationRule()])
        )
    except Exception as exc:
        raise InitError(
            f"the store rejected notification rules for '{settings.landing_bucket}' to "
            f"{settings.s3_notification_arn}: {exc}"
        ) from exc


def ensure_iceberg_warehouse(
    settings: Settings,
    rest_uri: str,
    name: str = "lakewire",
    login: tuple[str, str] | None = None,
) -> None:
    """Create the Lakekeeper warehouse over ``s3://<lake>/iceberg`` unless it exists.

    ``login`` is Lakekeeper's own MinIO user (it signs requests for its clients with it);
    unset means the settings' login, as on a single-user store.
    """
    base = rest_uri.removesuffix("/catalog")
    with httpx.Client(base_url=base, timeout=10) as client:
        # Bootstrapping an already bootstrapped server answers 4xx; that is fine.
        client.post("/management/v1/bootstrap", json={"accept-terms-of-use": True})
        listed = client.get("/management/v1/warehouse")
        listed.raise_for_status()
        if any(w.get("name") == name for w in listed.json().get("warehouses", [])):
            return
        s = settings
        access, secret = login or (
            s.s3_access_key.get_secret_value() if s.s3_access_key else "",
            s.s3_secret_key.get_secret_value() if s.s3_secret_key else "",
        )
        resp = client.post(
            "/management/v1/warehouse",
            json={
                "warehouse-name": name,
                "storage-profile": {
                    "type": "s3",
                    "bucket": s.lake_bucket,
                    "key-prefix": "iceberg",
                    "endpoint": s.s3_endpoint,
                    "region": s.s3_region,
                    "path-style-access": s.s3_path_style,
                    "flavor": "s3-compat",
                    "sts-enabled": False,
                },
                "storage-credential": {
                    "type": "s3",
                    "credential-type": "access-key",
                    "aws-access-key-id": access,
                    "aws-secret-access-key": secret,
                },
            },
        )
        if resp.status_code >= 400:
            raise InitError(f"Lakekeeper refused the warehouse: {resp.status_code} {resp.text}")


def write_trino_rules(settings: Settings) -> None:
    """Trino reads its rules file at start, so it must exist before Trino does: from the tenant
    registry as it stands (the storage service rewrites it on every later change)."""
    from lakehouse.objectstore import open_object_store
    from lakehouse.tenants import TenantStore
    from lakehouse.trino_rules import write_rules

    assert settings.trino_rules_file is not None
    tenants = TenantStore(open_object_store(settings)).all()
    write_rules(settings.trino_rules_file, settings, tenants)


def _secrets_dir() -> Path | None:
    value = os.environ.get("LAKEWIRE_SECRETS_DIR")
    return Path(value) if value else None


def setup(settings: Settings) -> None:
    secrets_dir = _secrets_dir()
    logins = service_logins(secrets_dir) if secrets_dir else {}
    if logins:
        admin = minio_admin(settings)
        users: list[str] = []
        _retry("MinIO users", lambda: users.extend(ensure_service_users(admin, settings, logins)))
        print(f"MinIO users ready: {', '.join(sorted(set(users)))}")
    ensure_buckets_and_notifications(settings)
    print(f"buckets {', '.join(settings.default_buckets)} ready; landing notifies")
    if settings.trino_rules_file is not None:
        write_trino_rules(settings)
        print(f"trino rules written to {settings.trino_rules_file}")
    if settings.iceberg_rest_uri:
        uri = settings.iceberg_rest_uri
        name = settings.iceberg_rest_warehouse or "lakewire"
        login = logins.get("lakekeeper")
        _retry("Iceberg warehouse", lambda: ensure_iceberg_warehouse(settings, uri, name, login))
        print("iceberg warehouse ready")


def trino_schemas(settings: Settings) -> None:
    from lakehouse.hive import HiveCatalog, HiveError, create_statements, ensure_trino_tables
    from lakehouse.objectstore import open_object_store
    from lakehouse.trino import connect_trino, ensure_schemas

    if not settings.trino_url:
        raise InitError("LAKEWIRE_TRINO_URL is not set")
    schemas: list[str] = []
    _retry(
        "Trino schemas",
        lambda: schemas.extend(
            ensure_schemas(connect_trino(settings), settings, settings.trino_schemas)
        ),
        timeout=settings.trino_init_timeout_seconds,
    )
    print(f"trino schemas ready: {', '.join(sorted(set(schemas)))}")
    # The hive catalog's external tables (hive_tables.yaml): a bad declaration fails at once,
    # not after the retries.
    catalog = HiveCatalog(settings, open_object_store(settings))
    try:
        # trino-init holds no S3 login on the platform (no secrets folder): it cannot read a
        # table's columns from its files, so they must be declared.
        unread = [t.qualified for t in catalog.tables.values() if t.columns is None]
        if unread and settings.storage_backend == "s3" and settings.s3_access_key is None:
            raise InitError(
                f"hive tables: declare the columns of {', '.join(unread)} in the hive tables "
                "file (trino-init has no S3 login to read them from the files)"
            )
        creates = create_statements(catalog)
    except HiveError as exc:
        raise InitError(f"hive tables: {exc}") from exc
    refused: list[HiveError] = []

    def hive_tables() -> None:
        try:
            ensure_trino_tables(connect_trino(settings), catalog, creates)
        except HiveError as exc:  # not Trino starting: retrying would not help
            refused.append(exc)

    if creates:
        _retry("Trino hive tables", hive_tables, timeout=settings.trino_init_timeout_seconds)
    if refused:
        raise InitError(f"hive tables: {refused[0]}")
    tables = [t.qualified for t in catalog.tables.values()]
    print(f"trino hive tables ready: {', '.join(tables) or 'none declared'}")


STEPS = ("stream", "setup", "trino")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    step = args[0] if args else "setup"
    if step not in STEPS:
        print(f"usage: python -m lakewire.platform_init [{'|'.join(STEPS)}]", file=sys.stderr)
        return 2
    settings = Settings()
    try:
        if step == "stream":
            _retry("JetStream stream", lambda: ensure_event_stream(settings))
            print(f"stream {settings.stream_name} ready")
        elif step == "setup":
            setup(settings)
        else:
            trino_schemas(settings)
    except InitError as exc:
        print(f"platform init ({step}) failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
