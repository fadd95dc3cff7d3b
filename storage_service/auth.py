"""The API key: from ``LAKEWIRE_API_KEY``, else generated once and kept with mode 0600.

It is never logged; ``lakewire status`` shows it to the person who owns the data dir.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from lakehouse.settings import Settings


def key_file(settings: Settings) -> Path:
    return settings.state_dir / "api_key"


def load_or_create_api_key(settings: Settings) -> str:
    if settings.api_key is not None:
        return settings.api_key.get_secret_value()
    path = key_file(settings)
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def key_matches(expected: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(expected.encode(), presented.encode())
