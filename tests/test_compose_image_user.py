"""The image's entry commands as the image's non-root user (uid 10001), against an empty data
dir and the secret folders the root `secrets` step wrote (issue 10, blocker 2 and 7).

Docker cannot run here, so the test does what the container runtime does: the `secrets` step
as root, then the service processes with uid/gid 10001 and a clean environment. The venv's
interpreter lives under /root (not readable by that user), so the children run Debian's
python3.11 with the venv's site-packages on PYTHONPATH; skipped where that is not possible.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakewire.platform_secrets import GENERATED_DIR, LAKEWIRE_UID, ensure_secrets
from tests.helpers import NatsServer

ROOT = Path(__file__).parent.parent
SYSTEM_PYTHON = Path("/usr/bin/python3.11")
SITE = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"

# The image runs Python 3.11 (Dockerfile): its entry commands are checked with that version,
# the venv's packages run by the system's 3.11 as the image's uid. CI's full run is on 3.11;
# the 3.12 and 3.13 runs have no 3.11 venv to lend the packages.
pytestmark = pytest.mark.skipif(
    sys.version_info[:2] != (3, 11)
    or os.geteuid() != 0
    or not SYSTEM_PYTHON.exists()
    or not shutil.which("setpriv"),
    reason="needs Python 3.11 (the image's), root, setpriv and /usr/bin/python3.11",
)


def _as_lakewire(args: list[str], env: dict[str, str], timeout: float = 60) -> str:
    proc = subprocess.run(
        [
            "setpriv",
            "--reuid",
            str(LAKEWIRE_UID),
            "--regid",
            str(LAKEWIRE_UID),
            "--clear-groups",
            str(SYSTEM_PYTHON),
            *args,
        ],
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": f"{SITE / 'site-packages'}:{ROOT}",
            "PYTHONDONTWRITEBYTECODE": "1",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.fixture
def base() -> Iterator[Path]:
    # pytest's own temp root is private to root (0700), which uid 10001 cannot traverse.
    path = Path(tempfile.mkdtemp(prefix="lakewire-image-user-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_entry_commands_run_as_uid_10001_on_an_empty_data_dir(base: Path, nats: NatsServer) -> None:
    tmp_path = base
    secrets = tmp_path / "secrets"
    ensure_secrets(secrets)  # as root, as the compose `secrets` step
    # The image's /var/lib/lakewire: empty, owned by the image's user (a new named volume
    # copies that ownership).
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, LAKEWIRE_UID, LAKEWIRE_UID)
    env = {"LAKEWIRE_SECRETS_DIR": str(secrets / "storage"), "LAKEWIRE_DATA_DIR": str(data)}

    # The storage service's start: state dir, outbox, index, presign key, webhook token; the
    # API key and S3 login come from its own 0600 folder.
    out = _as_lakewire(
        [
            "-c",
            "from lakehouse.settings import Settings;"
            "from storage_service.runtime import ServiceRuntime;"
            "from storage_service.api_events import load_or_create_webhook_token;"
            "s = Settings(); rt = ServiceRuntime(s);"
            "print(rt.api_key); print(load_or_create_webhook_token(s));"
            "print(s.s3_access_key.get_secret_value())",
        ],
        env,
    )
    api_key, webhook, access = out.split()
    gen = secrets / GENERATED_DIR
    assert api_key == (gen / "api_key").read_text()
    assert webhook == (gen / "webhook_token").read_text()
    assert access == (gen / "s3_storage_access_key").read_text()
    assert (data / "state" / "outbox.db").stat().st_uid == LAKEWIRE_UID

    # Another service's folder and the generated originals stay unreadable to this user.
    probe = (
        "import sys\n"
        "for p in sys.argv[1:]:\n"
        "    try:\n"
        "        open(p).read(); print('readable', p)\n"
        "    except PermissionError:\n"
        "        pass\n"
    )
    others = [
        str(secrets / "postgres" / "postgres_password"),
        str(secrets / "trino" / "lakewire_s3_secret_key"),
        str(secrets / "minio" / "minio_root_password"),
        str(gen / "minio_root_password"),
    ]
    assert _as_lakewire(["-c", probe, *others], env) == ""

    # nats-stream's command, as this user, creates the stream.
    stream_env = {"LAKEWIRE_DATA_DIR": str(data), "LAKEWIRE_NATS_URL": nats.url}
    out = _as_lakewire(["-m", "lakewire.platform_init", "stream"], stream_env)
    assert "stream STORAGE_EVENTS ready" in out
