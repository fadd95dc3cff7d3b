"""Generate the platform's credentials on first start; keep them on every later start.

``python -m lakewire.platform_secrets DIR`` writes one file per secret (random, URL-safe).
Nothing is printed but the names of the files it created, so secrets never reach a log;
``python -m lakewire.platform_secrets DIR show`` prints the API key and MinIO login for the
person who runs the stack.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

# File names follow pydantic-settings' secrets_dir convention for the LAKEWIRE_ fields.
SECRETS = {
    "lakewire_api_key": lambda: secrets.token_urlsafe(32),
    "lakewire_s3_access_key": lambda: "lakewire-" + secrets.token_hex(6),
    "lakewire_s3_secret_key": lambda: secrets.token_urlsafe(30),
    "postgres_password": lambda: secrets.token_urlsafe(24),
    "lakekeeper_encryption_key": lambda: secrets.token_urlsafe(32),
}


def ensure_secrets(directory: Path) -> list[str]:
    """Create the missing secret files; returns the names created."""
    directory.mkdir(parents=True, exist_ok=True)
    created = []
    for name, make in SECRETS.items():
        path = directory / name
        if path.exists():
            continue
        # Readable by the service users of the containers that mount this volume read-only.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w") as fh:
            fh.write(make())
        created.append(name)
    return created


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m lakewire.platform_secrets DIR [show]", file=sys.stderr)
        return 2
    directory = Path(argv[0])
    if argv[1:] == ["show"]:
        for name in ("lakewire_api_key", "lakewire_s3_access_key", "lakewire_s3_secret_key"):
            print(f"{name}: {(directory / name).read_text().strip()}")
        return 0
    created = ensure_secrets(directory)
    print(f"secrets created: {', '.join(created) or 'none (kept existing)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
