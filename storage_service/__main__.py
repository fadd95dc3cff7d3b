"""``python -m storage_service``: run the service on the configured host and port."""

from __future__ import annotations

import sys

import uvicorn

from lakehouse.settings import Settings
from storage_service.app import create_app
from storage_service.outbox import Outbox
from storage_service.statedb import StateFileCorrupt


def main() -> None:
    settings = Settings()
    try:  # a damaged outbox is said in one line (the supervisor shows it), not a traceback
        Outbox(settings.state_dir / "outbox.db").close()
    except StateFileCorrupt as exc:
        print(f"storage service not started: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.storage_port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
