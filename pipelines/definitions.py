"""The Dagster code location of Lakewire."""

from __future__ import annotations

from dagster import Definitions

from lakehouse.settings import Settings
from pipelines.jobs import ingest_job
from pipelines.resources import LakewireResource
from pipelines.sensors import build_event_sensor

_settings = Settings()

defs = Definitions(
    jobs=[ingest_job],
    sensors=[build_event_sensor(_settings.sensor_interval_seconds)],
    resources={"lakewire": LakewireResource()},
)
