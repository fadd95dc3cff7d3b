"""The platform's credentials: generated once, kept, one 0600 folder per service holding only
what that service reads (read by Settings through its secrets_dir), and never printed."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from lakewire.platform_secrets import GENERATED, GENERATED_DIR, SERVICES, ensure_secrets


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secrets_generated_once_private_per_service_and_read_by_settings(tmp_path: Path) -> None:
    d = tmp_path / "secrets"
    assert sorted(ensure_secrets(d, chown=False)) == sorted(GENERATED)
    gen = d / GENERATED_DIR
    first = {name: (gen / name).read_text() for name in GENERATED}
    assert ensure_secrets(d, chown=False) == []
    assert {name: (gen / name).read_text() for name in GENERATED} == first
    assert len(set(first.values())) == len(first)

    for service, spec in SERVICES.items():
        folder = d / service
        assert _mode(folder) == 0o700
        assert sorted(os.listdir(folder)) == sorted(spec.files), service
        for name in spec.files:
            assert _mode(folder / name) == 0o600, f"{service}/{name}"
    assert _mode(gen) == 0o700

    # No Lakewire service but init holds the MinIO root login; JupyterLab holds no API key,
    # Postgres password or NATS login; every S3 user is its own.
    root = first["minio_root_password"]
    for service in SERVICES:
        if service not in ("init", "minio"):
            assert all(root != (d / service / f).read_text() for f in os.listdir(d / service))
    assert sorted(os.listdir(d / "jupyter")) == ["lakewire_s3_access_key", "lakewire_s3_secret_key"]
    keys = {(d / s / "lakewire_s3_access_key").read_text() for s in ("storage", "dagster", "trino")}
    assert len(keys) == 3

    check = (
        "from lakehouse.settings import Settings; s = Settings();"
        f"print(s.api_key.get_secret_value() == {first['api_key']!r},"
        " s.s3_access_key.get_secret_value(), s.nats_url,"
        " s.minio_admin_access_key.get_secret_value())"
    )
    out = subprocess.run(
        [sys.executable, "-c", check],
        env={"LAKEWIRE_SECRETS_DIR": str(d / "storage"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    ok, access, nats_url, tenants_admin = out.stdout.split()
    assert ok == "True"
    assert access == first["s3_storage_access_key"]
    # The tenants endpoint's MinIO admin login is its own user, not the everyday one or root.
    assert tenants_admin == first["s3_tenants_access_key"] != access
    assert nats_url == f"nats://storage:{first['nats_storage_password']}@nats:4222"


def test_secret_folders_are_given_to_each_services_user_when_run_as_root(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        import pytest

        pytest.skip("chown needs root (the compose `secrets` step runs as root)")
    d = tmp_path / "secrets"
    ensure_secrets(d)
    for service, spec in SERVICES.items():
        assert (d / service).stat().st_uid == spec.uid
        for name in spec.files:
            assert (d / service / name).stat().st_uid == spec.uid
    assert (d / GENERATED_DIR).stat().st_uid == 0


def test_generation_never_prints_a_secret(tmp_path: Path) -> None:
    d = tmp_path / "s"
    proc = subprocess.run(
        [sys.executable, "-m", "lakewire.platform_secrets", str(d)],
        capture_output=True,
        text=True,
        check=True,
    )
    for name in GENERATED:
        assert (d / GENERATED_DIR / name).read_text() not in proc.stdout + proc.stderr


def test_compose_has_no_literal_credentials() -> None:
    import yaml

    compose = yaml.safe_load((Path(__file__).parent.parent / "docker-compose.yml").read_text())
    for name, svc in compose["services"].items():
        env = svc.get("environment") or {}
        for key in env:
            if any(w in key.upper() for w in ("PASSWORD", "SECRET", "ACCESS_KEY", "API_KEY")):
                assert key.endswith(("_FILE", "_DIR")), f"{name}: {key} must come from a file"
