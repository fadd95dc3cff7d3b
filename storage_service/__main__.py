"""``python -m storage_service``: run the service on the configured host and port."""

from __future__ import annotations

import logging
import os

import uvicorn

from lakehouse.settings import Settings
from storage_service.app import create_app
from storage_service.logs import configure_service_logging
from storage_service.outbox import Outbox
from storage_service.statedb import StateFileCorrupt

log = logging.getLogger("storage_service")


def main() -> None:
    configure_service_logging()
    settings = Settings()
    try:  # a damaged outbox is said in one line (the supervisor shows it), not a traceback
        Outbox(settings.state_dir / "outbox.db").close()
    except StateFileCorrupt as exc:
        log.critical(f"storage service not started: {exc}")
        raise SystemExit(os.EX_CONFIG) from None  # supervisord does not restart this exit
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.storage_port,
        log_config=None,  # the JSON lines configured above
        log_level="info",
        access_log=False,  # RequestLogMiddleware logs each request, with its id
    )


if __name__ == "__main__":
    main()
