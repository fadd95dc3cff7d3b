"""Typed Dagster resources; each builds the one Settings object with its overrides applied."""

from __future__ import annotations

from typing import Any

from dagster import ConfigurableResource

from lakehouse.objectstore import ObjectStore, open_object_store
from lakehouse.settings import Settings


class LakewireResource(ConfigurableResource):
    """Access to settings, the object store and the event stream for ops and sensors.

    Fields left unset fall back to ``LAKEWIRE_*`` environment variables, so the same code
    location serves the embedded default and the platform.
    """

    data_dir: str | None = None
    nats_url: str | None = None

    def settings(self) -> Settings:
        # Any: pydantic validates the values (a str data_dir becomes a Path).
        overrides: dict[str, Any] = {
            k: v for k, v in {"data_dir": self.data_dir, "nats_url": self.nats_url}.items() if v
        }
        return Settings(**overrides)

    def object_store(self) -> ObjectStore:
        return open_object_store(self.settings())
