"""The example's AIS half: voyages per vessel, computed from an *ingested table*.

Where the CO2 half reads objects, this one starts from ``delta.default.ais_positions`` (the table
ingestion makes of ``landing/ais_positions/``, which ``lakewire demo`` fills), so the lineage in
the Dagster UI runs landing object → ingestion → table → results. The voyages go to
``results/`` as a file (the results IO manager) and the per-vessel totals to a Delta table.
"""

from datetime import timedelta

import polars as pl
from dagster import AssetIn, AssetKey, AssetsDefinition, AssetSpec, MaterializeResult, asset

from lakehouse.files import Lake
from lakehouse.tables import TableRef, delta_table_uri
from pipelines.resources import LakewireResource

POSITIONS = TableRef("delta", "default", "ais_positions")
VESSELS = TableRef("delta", "default", "ais_vessels")
GROUP = "ais_example"
VOYAGE_GAP = timedelta(minutes=30)  # a vessel silent this long starts a new voyage
EARTH_RADIUS_NM = 3440.065
REQUIRED = ("mmsi", "timestamp", "lat", "lon", "sog")


def voyages(positions: pl.DataFrame) -> pl.DataFrame:
    """One row per voyage: a vessel's reports with no gap longer than ``VOYAGE_GAP``, its
    start, end, distance sailed (haversine between reports, nautical miles) and mean speed."""
    missing = [c for c in REQUIRED if c not in positions.columns]
    if missing:
        raise ValueError(f"AIS positions lack column(s) {missing}; they have {positions.columns}")
    if positions.schema["timestamp"] == pl.String:
        # A route that keeps text: ISO 8601 with an offset, as AIS feeds and the demo write it.
        positions = positions.with_columns(pl.col("timestamp").str.to_datetime(time_zone="UTC"))
    lat, lon = pl.col("lat").radians(), pl.col("lon").radians()
    dlat, dlon = lat - lat.shift(), lon - lon.shift()
    hav = (dlat / 2).sin() ** 2 + lat.cos() * lat.shift().cos() * (dlon / 2).sin() ** 2
    new_voyage = (pl.col("timestamp").diff() > VOYAGE_GAP).fill_null(True)
    return (
        positions.sort("mmsi", "timestamp")
        .with_columns(new_voyage.over("mmsi").cum_sum().over("mmsi").alias("voyage"))
        .with_columns(
            (2 * EARTH_RADIUS_NM * hav.sqrt().arcsin())
            .over("mmsi", "voyage")
            .fill_null(0.0)
            .alias("step_nm")
        )
        .group_by("mmsi", "voyage")
        .agg(
            pl.col("timestamp").min().alias("start"),
            pl.col("timestamp").max().alias("end"),
            pl.len().alias("reports"),
            pl.col("step_nm").sum().alias("distance_nm"),
            pl.col("sog").mean().alias("mean_sog"),
        )
        .sort("mmsi", "voyage")
    )


@asset(
    key=["ais", "voyages"],
    deps=[AssetKey([POSITIONS.format, POSITIONS.schema, POSITIONS.name])],
    io_manager_key="results_io_manager",
    group_name=GROUP,
    kinds={"parquet"},
)
def ais_voyages(lakewire: LakewireResource) -> pl.DataFrame:
    """Voyages per vessel (``results/ais/voyages.parquet``)."""
    return voyages(Lake(lakewire.settings()).tables.read(POSITIONS.qualified))


@asset(
    key=[VESSELS.format, VESSELS.schema, VESSELS.name],
    ins={"ais_voyages": AssetIn(key=["ais", "voyages"])},
    group_name=GROUP,
    kinds={"delta"},
)
def ais_vessels(ais_voyages: pl.DataFrame, lakewire: LakewireResource) -> MaterializeResult:
    """Per vessel: voyages, reports and distance sailed, as a Delta table."""
    vessels = (
        ais_voyages.group_by("mmsi")
        .agg(
            pl.len().alias("voyages"),
            pl.col("reports").sum(),
            pl.col("distance_nm").sum().alias("distance_nm"),
        )
        .sort("distance_nm", descending=True)
    )
    settings = lakewire.settings()
    store = Lake(settings).store
    vessels.write_delta(
        delta_table_uri(settings, store, VESSELS),
        mode="overwrite",
        storage_options=store.storage_options() or None,
        delta_write_options={"schema_mode": "overwrite"},
    )
    return MaterializeResult(metadata={"table": VESSELS.qualified, "rows": vessels.height})


ais_assets: list[AssetsDefinition | AssetSpec] = [ais_voyages, ais_vessels]
