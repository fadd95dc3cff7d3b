"""Generate the platform's credentials on first start; keep them on every later start.

``python -m lakewire.platform_secrets DIR`` (run as root by compose's one-shot ``secrets``
service) generates every secret once into ``DIR/.generated`` (0700, root) and then writes one
folder per service, ``DIR/<service>/``, holding only the files that service reads, owned by the
user the service's image runs as, files 0600 and folders 0700. Compose mounts each service's
folder alone (a volume ``subpath``), so no container sees another's credentials.

File names inside a Lakewire service's folder follow pydantic-settings' ``secrets_dir``
convention for the ``LAKEWIRE_`` fields (``lakewire_s3_access_key``, ``lakewire_nats_url``...),
so ``Settings`` reads them with no code of its own.

Nothing is printed but the names of the files it created, so secrets never reach a log;
``python -m lakewire.platform_secrets DIR show`` prints the API key and the MinIO root login for
the person who runs the stack.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# The non-root users the images run as (uid). Lakewire's image creates its user with this uid
# (Dockerfile); the others are the upstream images' own users.
LAKEWIRE_UID = 10001
POSTGRES_UID = 999  # postgres:*-bookworm
TRINO_UID = 1000  # trinodb/trino
LAKEKEEPER_UID = 65532  # distroless "nonroot"
ROOT_UID = 0  # MinIO and NATS start as root in their images

# Services that get their own MinIO user (never the root login), and NATS clients.
# "tenants" is the one with MinIO admin rights (users and policies only): the storage service's
# tenants endpoint holds it beside, never instead of, its everyday S3 login (docs/tenants.md).
S3_USERS = ("storage", "dagster", "trino", "lakekeeper", "jupyter", "tenants")
NATS_USERS = ("init", "storage", "dagster", "minio")


def _s3_access(user: str) -> Callable[[], str]:
    return lambda: f"lakewire-{user}-" + secrets.token_hex(4)


# Everything generated, once. The values are random and URL-safe.
GENERATED: dict[str, Callable[[], str]] = {
    "api_key": lambda: secrets.token_urlsafe(32),
    "webhook_token": lambda: secrets.token_urlsafe(32),
    "minio_root_user": lambda: "root-" + secrets.token_hex(6),
    "minio_root_password": lambda: secrets.token_urlsafe(30),
    "postgres_password": lambda: secrets.token_urlsafe(24),
    "lakekeeper_encryption_key": lambda: secrets.token_urlsafe(32),
    **{f"s3_{u}_access_key": _s3_access(u) for u in S3_USERS},
    **{f"s3_{u}_secret_key": (lambda: secrets.token_urlsafe(30)) for u in S3_USERS},
    # NATS lexes an environment variable's value as config ("1k" is a size, "true" a bool),
    # so its passwords start with a letter and are hex: always an unquoted string.
    **{f"nats_{u}_password": (lambda: "nats" + secrets.token_hex(24)) for u in NATS_USERS},
}

NATS_HOST = "nats:4222"


def _nats_url(user: str) -> Callable[[dict[str, str]], str]:
    return lambda g: f"nats://{user}:{g[f'nats_{user}_password']}@{NATS_HOST}"


def _same(name: str) -> Callable[[dict[str, str]], str]:
    return lambda g: g[name]


def _s3_login(user: str) -> dict[str, Callable[[dict[str, str]], str]]:
    return {
        "lakewire_s3_access_key": _same(f"s3_{user}_access_key"),
        "lakewire_s3_secret_key": _same(f"s3_{user}_secret_key"),
    }


@dataclass(frozen=True)
class ServiceSecrets:
    uid: int
    files: dict[str, Callable[[dict[str, str]], str]]


# What each service's folder holds: the least that service needs.
SERVICES: dict[str, ServiceSecrets] = {
    "postgres": ServiceSecrets(POSTGRES_UID, {"postgres_password": _same("postgres_password")}),
    "lakekeeper": ServiceSecrets(
        LAKEKEEPER_UID,
        {
            "postgres_password": _same("postgres_password"),
            "lakekeeper_encryption_key": _same("lakekeeper_encryption_key"),
        },
    ),
    "nats": ServiceSecrets(
        ROOT_UID, {f"nats_{u}_password": _same(f"nats_{u}_password") for u in NATS_USERS}
    ),
    "minio": ServiceSecrets(
        ROOT_UID,
        {
            "minio_root_user": _same("minio_root_user"),
            "minio_root_password": _same("minio_root_password"),
            "nats_password": _same("nats_minio_password"),
        },
    ),
    # Init is the one admin: it creates the stream, the MinIO users and policies, the buckets
    # and their notification rules, and the Lakekeeper warehouse (with Lakekeeper's own login).
    "init": ServiceSecrets(
        LAKEWIRE_UID,
        {
            "lakewire_s3_access_key": _same("minio_root_user"),
            "lakewire_s3_secret_key": _same("minio_root_password"),
            "lakewire_nats_url": _nats_url("init"),
            **{f"s3_{u}_access_key": _same(f"s3_{u}_access_key") for u in S3_USERS},
            **{f"s3_{u}_secret_key": _same(f"s3_{u}_secret_key") for u in S3_USERS},
        },
    ),
    "storage": ServiceSecrets(
        LAKEWIRE_UID,
        {
            "lakewire_api_key": _same("api_key"),
            "lakewire_webhook_token": _same("webhook_token"),
            "lakewire_nats_url": _nats_url("storage"),
            **_s3_login("storage"),
            "lakewire_minio_admin_access_key": _same("s3_tenants_access_key"),
            "lakewire_minio_admin_secret_key": _same("s3_tenants_secret_key"),
        },
    ),
    "dagster": ServiceSecrets(
        LAKEWIRE_UID,
        {
            "postgres_password": _same("postgres_password"),
            "lakewire_nats_url": _nats_url("dagster"),
            **_s3_login("dagster"),
        },
    ),
    "trino": ServiceSecrets(TRINO_UID, _s3_login("trino")),
    "jupyter": ServiceSecrets(LAKEWIRE_UID, _s3_login("jupyter")),
}

GENERATED_DIR = ".generated"


def _write_0600(path: Path, value: str, uid: int | None) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    if uid is not None:
        os.chown(tmp, uid, uid)
    os.replace(tmp, path)


def _private_dir(path: Path, uid: int | None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    if uid is not None:
        os.chown(path, uid, uid)


def ensure_secrets(directory: Path, *, chown: bool | None = None) -> list[str]:
    """Generate the missing secrets and (re)write every service's folder.

    Returns the names of the secrets generated now (none on a later start). ``chown`` (default:
    when running as root) gives each folder to its service's user; without it, as in tests,
    everything stays owned by the caller.
    """
    if chown is None:
        chown = os.geteuid() == 0
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o755)  # services traverse to their own (0700) folder
    gen = directory / GENERATED_DIR
    _private_dir(gen, 0 if chown else None)
    created = []
    values: dict[str, str] = {}
    for name, make in GENERATED.items():
        path = gen / name
        if not path.exists():
            _write_0600(path, make(), 0 if chown else None)
            created.append(name)
        values[name] = path.read_text()
    for service, spec in SERVICES.items():
        uid = spec.uid if chown else None
        folder = directory / service
        _private_dir(folder, uid)
        for fname, derive in spec.files.items():
            path = folder / fname
            value = derive(values)
            if not path.exists() or path.read_text() != value:
                _write_0600(path, value, uid)
        for stale in set(os.listdir(folder)) - set(spec.files):
            (folder / stale).unlink()
    return created


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m lakewire.platform_secrets DIR [show]", file=sys.stderr)
        return 2
    directory = Path(argv[0])
    if argv[1:] == ["show"]:
        gen = directory / GENERATED_DIR
        for name in ("api_key", "webhook_token", "minio_root_user", "minio_root_password"):
            print(f"{name}: {(gen / name).read_text().strip()}")
        return 0
    created = ensure_secrets(directory)
    print(f"secrets created: {', '.join(created) or 'none (kept existing)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
