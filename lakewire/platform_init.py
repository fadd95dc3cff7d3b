"""One-shot set-up of the platform, run by compose on every start (idempotent).

Order matters: the JetStream stream must exist before MinIO publishes to it, the buckets before
their notification rules, and the Iceberg warehouse before any pyiceberg or Trino client uses
the REST catalog. Any step that fails stops the start with one clear line, because a platform
whose landing bucket sends no events would only look healthy.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable

import httpx

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


def ensure_iceberg_warehouse(settings: Settings, rest_uri: str, name: str = "lakewire") -> None:
    """Create the Lakekeeper warehouse over ``s3://<lake>/iceberg`` unless it exists."""
    base = rest_uri.removesuffix("/catalog")
    with httpx.Client(base_url=base, timeout=10) as client:
        # Bootstrapping an already bootstrapped server answers 4xx; that is fine.
        client.post("/management/v1/bootstrap", json={"accept-terms-of-use": True})
        listed = client.get("/management/v1/warehouse")
        listed.raise_for_status()
        if any(w.get("name") == name for w in listed.json().get("warehouses", [])):
            return
        s = settings
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
                    "aws-access-key-id": s.s3_access_key.get_secret_value()
                    if s.s3_access_key
                    else "",
                    "aws-secret-access-key": s.s3_secret_key.get_secret_value()
                    if s.s3_secret_key
                    else "",
                },
            },
        )
        if resp.status_code >= 400:
            raise InitError(f"Lakekeeper refused the warehouse: {resp.status_code} {resp.text}")


def main() -> int:
    settings = Settings()
    try:
        _retry("JetStream stream", lambda: ensure_event_stream(settings))
        print(f"stream {settings.stream_name} ready")
        ensure_buckets_and_notifications(settings)
        print(f"buckets {', '.join(settings.default_buckets)} ready; landing notifies")
        if settings.iceberg_rest_uri:
            uri = settings.iceberg_rest_uri
            name = settings.iceberg_rest_warehouse or "lakewire"
            _retry("Iceberg warehouse", lambda: ensure_iceberg_warehouse(settings, uri, name))
            print("iceberg warehouse ready")
    except InitError as exc:
        print(f"platform init failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
