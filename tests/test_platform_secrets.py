"""The platform's credentials are generated once, kept, read by Settings, and never printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lakewire.platform_secrets import SECRETS, ensure_secrets


def test_secrets_generated_once_and_read_by_settings(tmp_path: Path) -> None:
    d = tmp_path / "secrets"
    assert sorted(ensure_secrets(d)) == sorted(SECRETS)
    first = {name: (d / name).read_text() for name in SECRETS}
    assert ensure_secrets(d) == []
    assert {name: (d / name).read_text() for name in SECRETS} == first
    assert len(set(first.values())) == len(first)

    check = (
        "from lakehouse.settings import Settings; s = Settings();"
        f"print(s.api_key.get_secret_value() == open({str(d / 'lakewire_api_key')!r}).read())"
    )
    out = subprocess.run(
        [sys.executable, "-c", check],
        env={"LAKEWIRE_SECRETS_DIR": str(d), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "True"


def test_generation_never_prints_a_secret(tmp_path: Path) -> None:
    d = tmp_path / "s"
    proc = subprocess.run(
        [sys.executable, "-m", "lakewire.platform_secrets", str(d)],
        capture_output=True,
        text=True,
        check=True,
    )
    for name in SECRETS:
        assert (d / name).read_text() not in proc.stdout + proc.stderr


def test_compose_has_no_literal_credentials() -> None:
    import yaml

    compose = yaml.safe_load((Path(__file__).parent.parent / "docker-compose.yml").read_text())
    for name, svc in compose["services"].items():
        env = svc.get("environment") or {}
        for key in env:
            if any(w in key.upper() for w in ("PASSWORD", "SECRET", "ACCESS_KEY", "API_KEY")):
                assert key.endswith(("_FILE", "_DIR")), f"{name}: {key} must come from a file"
