"""Platform set-up against moto's server mode and a real nats-server.

On moto rather than SeaweedFS: set-up applies the landing bucket's notification rule, and
SeaweedFS implements no PutBucketNotificationConfiguration (it answers as if the bucket were
being created). moto stores the rule, and refuses MinIO's NATS ARN as a MinIO without a NATS
target does.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nats
import pytest

from lakehouse.settings import Settings
from lakewire import platform_init
from tests.helpers import NatsServer, s3_settings
from tests.s3servers import MotoServer


def _stream_exists(settings: Settings) -> bool:
    async def check() -> bool:
        nc = await nats.connect(settings.effective_nats_url)
        try:
            info = await nc.jetstream().stream_info(settings.stream_name)
            return info.config.subjects == [f"{settings.subject_prefix}.>"]
        finally:
            await nc.close()

    return asyncio.run(check())


def test_init_creates_stream_buckets_and_landing_rule_on_s3_moto(
    tmp_path: Path, nats: NatsServer, moto_s3: MotoServer
) -> None:
    # moto refuses MinIO's NATS ARN, so point the rule at an SQS-style target it accepts.
    arn = "arn:aws:sqs:us-east-1:123456789012:lakewire"
    settings = s3_settings(tmp_path, nats, moto_s3, s3_notification_arn=arn)
    platform_init.ensure_event_stream(settings)
    platform_init.ensure_buckets_and_notifications(settings)
    # Idempotent: a second start changes nothing and does not fail.
    platform_init.ensure_event_stream(settings)
    platform_init.ensure_buckets_and_notifications(settings)

    assert _stream_exists(settings)
    s3 = moto_s3.client()
    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} >= set(settings.default_buckets)
    queues = s3.get_bucket_notification_configuration(Bucket="landing")["QueueConfigurations"]
    assert [q["QueueArn"] for q in queues] == [arn]
    assert set(queues[0]["Events"]) == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}


def test_init_fails_loudly_when_the_store_rejects_the_rule_on_s3_moto(
    tmp_path: Path, nats: NatsServer, moto_s3: MotoServer
) -> None:
    settings = s3_settings(tmp_path, nats, moto_s3)  # MinIO's ARN, which moto rejects
    with pytest.raises(platform_init.InitError, match="rejected notification rules"):
        platform_init.ensure_buckets_and_notifications(settings)


class _RecordingAdmin:
    """MinIO's admin API as platform_init calls it (moto has none; enforcement is left to
    `make compose-smoke`, DECISIONS "Store, tenants and credentials")."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.policies: dict[str, dict[str, Any]] = {}

    def user_add(self, access_key: str, secret_key: str) -> str:
        self.calls.append(("user_add", access_key))
        return ""

    def policy_add(
        self,
        policy_name: str,
        policy_file: str | None = None,
        policy: dict[str, Any] | None = None,
    ) -> str:
        assert policy is not None
        self.policies[policy_name] = policy
        self.calls.append(("policy_add", policy_name))
        return ""

    def policy_set(
        self, policy_name: str, user: str | None = None, group: str | None = None
    ) -> str:
        self.calls.append(("policy_set", policy_name, str(user)))
        return ""


def test_one_minio_user_and_policy_per_service_never_admin(tmp_path: Path) -> None:
    from lakewire.platform_secrets import S3_USERS, ensure_secrets

    secrets = tmp_path / "secrets"
    ensure_secrets(secrets, chown=False)
    logins = platform_init.service_logins(secrets / "init")
    assert sorted(logins) == sorted(S3_USERS)
    admin = _RecordingAdmin()
    settings = Settings(data_dir=tmp_path / "d")
    platform_init.ensure_service_users(admin, settings, logins)
    platform_init.ensure_service_users(admin, settings, logins)  # idempotent calls, same result
    for service, (access, _) in logins.items():
        name = f"lakewire-{service}"
        i = admin.calls.index(("policy_add", name))
        assert admin.calls[i + 1 : i + 3] == [("user_add", access), ("policy_set", name, access)]
    for name, policy in admin.policies.items():
        statements = policy["Statement"]
        assert isinstance(statements, list) and statements
        if name == "lakewire-tenants":  # the documented exception: tenants' users and keys
            assert statements == [{"Effect": "Allow", "Action": platform_init.TENANT_ADMIN_ACTIONS}]
            assert all(a.startswith("admin:") for a in platform_init.TENANT_ADMIN_ACTIONS)
            assert "admin:*" not in platform_init.TENANT_ADMIN_ACTIONS
            continue
        for st in statements:
            assert all(a.startswith("s3:") for a in st["Action"]), name  # never admin:*
            assert all(r.startswith("arn:aws:s3:::") for r in st["Resource"]), name
    # Read-only where it only reads: Trino writes the lake alone, Lakekeeper touches nothing else.
    trino_writes = {
        r
        for st in admin.policies["lakewire-trino"]["Statement"]
        if "s3:PutObject" in st["Action"]
        for r in st["Resource"]
    }
    assert trino_writes == {"arn:aws:s3:::lake/*"}
    keeper = admin.policies["lakewire-lakekeeper"]["Statement"]
    assert {r for st in keeper for r in st["Resource"]} == {
        "arn:aws:s3:::lake",
        "arn:aws:s3:::lake/*",
    }


def test_init_steps_are_named_and_unknown_ones_refused() -> None:
    assert platform_init.main(["nonsense"]) == 2


def test_setup_creates_users_then_buckets_and_gives_lakekeeper_its_own_login_on_s3_moto(
    tmp_path: Path, nats: NatsServer, moto_s3: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakewire.platform_secrets import ensure_secrets

    secrets = tmp_path / "secrets"
    ensure_secrets(secrets, chown=False)
    monkeypatch.setenv("LAKEWIRE_SECRETS_DIR", str(secrets / "init"))
    arn = "arn:aws:sqs:us-east-1:123456789012:lakewire"
    rules = tmp_path / "trino-rules" / "rules.json"
    settings = s3_settings(
        tmp_path,
        nats,
        moto_s3,
        s3_notification_arn=arn,
        iceberg_rest_uri="http://lk/catalog",
        trino_rules_file=rules,
    )
    # A tenant from an earlier run: Trino must start with its rule (init runs before Trino).
    from lakehouse.objectstore import open_object_store
    from lakehouse.tenants import Tenant, TenantStore
    from lakehouse.trino_rules import render_rules

    acme = Tenant(id="acme", name="ACME", scopes=["datasets/acme/"], created="now")
    TenantStore(open_object_store(settings)).put(acme)
    admin = _RecordingAdmin()
    monkeypatch.setattr(platform_init, "minio_admin", lambda s: admin)
    warehouses: list[tuple[str, str, tuple[str, str] | None]] = []
    monkeypatch.setattr(
        platform_init,
        "ensure_iceberg_warehouse",
        lambda s, uri, name, login: warehouses.append((uri, name, login)),
    )
    platform_init.setup(settings)

    assert rules.read_text() == render_rules(settings, [acme])
    assert {c[1] for c in admin.calls if c[0] == "policy_add"} == {
        f"lakewire-{u}" for u in ("storage", "dagster", "trino", "lakekeeper", "jupyter", "tenants")
    }
    s3 = moto_s3.client()
    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} >= set(settings.default_buckets)
    keeper = (
        (secrets / "init" / "s3_lakekeeper_access_key").read_text(),
        (secrets / "init" / "s3_lakekeeper_secret_key").read_text(),
    )
    assert warehouses == [("http://lk/catalog", "lakewire", keeper)]


def test_dagster_reads_the_live_routes_but_never_writes_the_system_bucket(tmp_path: Path) -> None:
    policy = platform_init.service_policies(Settings(data_dir=tmp_path / "d"))["dagster"]
    text = json.dumps(policy)
    assert "arn:aws:s3:::lakewire-system/*" in text  # routes and lifecycle rules are read
    writes = [
        r
        for st in policy["Statement"]
        if any("PutObject" in a or "DeleteObject" in a for a in st["Action"])
        for r in st["Resource"]
    ]
    assert not [r for r in writes if "lakewire-system" in r]
    assert "arn:aws:s3:::archive-warm/*" in writes  # lifecycle moves objects into tiers
