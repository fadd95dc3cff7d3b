"""``lakewire demo``: sample data in the common buckets, then the example pipeline, so a new
user sees objects, an ingestion run, a table, a dataset and a model within a minute of ``up``.

The samples are generated (``lakehouse.samples``, seeded): no network, and a second ``demo``
writes the same bytes, so ingestion's ledger sees nothing new and no table grows twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from lakehouse import samples
from lakehouse.files import Lake
from lakehouse.objectstore import ObjectStore
from lakehouse.settings import Settings
from lakewire.dagster_home import write_dagster_home

# bucket/key -> the sample written there. The landing copy is what the ingestion sensor turns
# into a table (delta.default.ais_positions) through the built-in catch-all route.
SAMPLES: dict[str, Callable[[], pl.DataFrame]] = {
    "co2-data/emissions/co2.csv": samples.co2_emissions,
    "ais-data/positions/2024-05-01.csv": samples.ais_positions,
    "synthetic-data/sensors/readings.csv": samples.sensor_readings,
    "landing/ais_positions/2024-05-01.csv": samples.ais_positions,
}


@dataclass
class DemoResult:
    written: dict[str, int] = field(default_factory=dict)  # bucket/key -> rows
    run_id: str | None = None
    created_buckets: list[str] = field(default_factory=list)


def load_samples(settings: Settings, store: ObjectStore) -> DemoResult:
    """Write every sample, first creating any default bucket that is missing (a data dir made
    before the defaults grew, or one no platform has started on yet)."""
    out = DemoResult()
    wanted = [*settings.default_buckets, *(p.split("/", 1)[0] for p in SAMPLES)]
    for bucket in dict.fromkeys(wanted):
        if not store.bucket_exists(bucket):
            store.create_bucket(bucket)
            out.created_buckets.append(bucket)
    lake = Lake(settings, store)
    for path, make in SAMPLES.items():
        frame = make()
        lake.write_csv(frame, path)
        out.written[path] = frame.height
    return out


def ais_table_ready(settings: Settings) -> bool:
    """Whether ingestion has made the AIS table the example's AIS half starts from."""
    from pipelines.ais_pipeline import POSITIONS

    return POSITIONS.qualified in Lake(settings).tables.list()


def run_example(settings: Settings, *, with_ais: bool = False) -> str:
    """Materialize the example (the CO2 half; the AIS half too once its table exists) in this
    process on the platform's Dagster instance, so the run and its assets show in the Dagster
    UI; returns the run id."""
    from dagster import DagsterInstance, materialize

    from pipelines.ais_pipeline import ais_assets
    from pipelines.co2_pipeline import co2_assets
    from pipelines.io_managers import storage_io_managers
    from pipelines.resources import LakewireResource

    os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home))
    if not (settings.dagster_home / "dagster.yaml").exists():  # no platform started here yet
        write_dagster_home(settings)  # the instance `lakewire up` will use, not a default one
    result = materialize(
        [*co2_assets, *(ais_assets if with_ais else [])],
        instance=DagsterInstance.get(),
        resources={"lakewire": LakewireResource(), **storage_io_managers()},
        tags={"lakewire/demo": "co2"},
        # The run's events are in the Dagster UI; the terminal gets only problems.
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    return result.run_id
