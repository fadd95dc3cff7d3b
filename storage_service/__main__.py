"""``python -m storage_service``: run the service on the configured host and port."""

from __future__ import annotations

import uvicorn

from lakehouse.settings import Settings
from storage_service.app import create_app


def main() -> None:
    settings = Settings()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.storage_port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
