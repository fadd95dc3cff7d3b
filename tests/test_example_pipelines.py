"""The example pipelines (CO2 from objects, AIS from an ingested table) and the Object Storage
IO manager, materialized by Dagster in-process against real stores: the local backend and S3
on SeaweedFS (``make_settings``), real Delta tables."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
from dagster import (
    AssetKey,
    AssetSelection,
    DailyPartitionsDefinition,
    asset,
    materialize,
)

from lakehouse import samples
from lakehouse.files import Lake, TableNotFound
from lakehouse.objectstore import ObjectNotFound, open_object_store
from lakehouse.settings import Settings
from lakehouse.tables import delta_table_uri
from pipelines.ais_pipeline import POSITIONS, VESSELS, ais_assets
from pipelines.co2_pipeline import SUMMARY_TABLE, co2_assets
from pipelines.definitions import build_definitions
from pipelines.io_managers import storage_io_managers
from pipelines.resources import LakewireResource


def _use(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Lake:
    """The settings as the environment a code location reads, and every default bucket."""
    access, secret = settings.s3_access_key, settings.s3_secret_key
    for name, value in {
        "DATA_DIR": str(settings.data_dir),
        "STORAGE_BACKEND": settings.storage_backend,
        "S3_ENDPOINT": settings.s3_endpoint,
        "S3_ACCESS_KEY": access.get_secret_value() if access else None,
        "S3_SECRET_KEY": secret.get_secret_value() if secret else None,
    }.items():
        if value is None:
            monkeypatch.delenv(f"LAKEWIRE_{name}", raising=False)
        else:
            monkeypatch.setenv(f"LAKEWIRE_{name}", value)
    store = open_object_store(settings)
    for bucket in settings.default_buckets:
        if not store.bucket_exists(bucket):
            store.create_bucket(bucket)
    return Lake(settings, store)


def _resources() -> dict[str, object]:
    return {"lakewire": LakewireResource(), **storage_io_managers()}


def test_example_pipeline_puts_dataset_model_and_table_in_the_buckets(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = _use(make_settings(), monkeypatch)
    raw = samples.co2_emissions()
    lake.write_csv(raw, "co2-data/emissions/co2.csv")

    assert materialize(co2_assets, resources=_resources()).success

    # The intermediate in `dagster`, the cleaned dataset in `datasets`, the model in `models`.
    assert lake.ls("dagster/co2/") == ["dagster/co2/emissions_raw.parquet"]
    assert lake.read_parquet("dagster/co2/emissions_raw.parquet").height == raw.height
    clean = lake.read_parquet("datasets/co2/emissions_clean.parquet")
    assert "World" not in clean["country"].to_list()
    assert clean.select(pl.col("co2").null_count()).item() == 0
    assert clean.select("iso_code", "year").is_duplicated().sum() == 0
    expected = raw.filter(pl.col("iso_code").is_not_null()).drop_nulls("co2").unique()
    assert clean.height == expected.height
    assert lake.ls("models/co2/") == ["models/co2/evaluation.parquet", "models/co2/model.pkl"]
    with lake.open("models/co2/model.pkl") as fh:
        model = pickle.load(fh)  # a dict of numbers: no pipelines code needed to load it
    assert model["slope"] == pytest.approx(samples.CO2_GDP_ELASTICITY, abs=0.05)
    evaluation = lake.read_parquet("models/co2/evaluation.parquet").row(0, named=True)
    assert evaluation["r2_log"] > 0.9 and evaluation["mape"] < 0.25
    assert evaluation["test_rows"] == clean.filter(pl.col("year") >= 2018).height

    # The summary is a Delta table SQL finds by name.
    assert SUMMARY_TABLE.qualified in lake.tables.list()
    top = lake.sql.query(
        f"SELECT iso_code, co2_total_mt FROM {SUMMARY_TABLE.qualified} ORDER BY co2_total_mt DESC"
    )
    assert top.height == clean["iso_code"].n_unique() == 12
    usa = clean.filter(pl.col("iso_code") == "USA")["co2"].sum()
    assert top.row(0) == ("USA", pytest.approx(usa))


@pytest.mark.parametrize("timestamps", ["typed", "text"])
def test_ais_example_turns_the_ingested_table_into_voyages_and_a_vessel_table(
    timestamps: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = _use(Settings(data_dir=tmp_path / "data"), monkeypatch)
    positions = samples.ais_positions()
    # A vessel silent for two hours starts a second voyage.
    first = positions["mmsi"][0]
    late = positions.filter(pl.col("mmsi") == first).tail(10)
    positions = pl.concat(
        [
            positions.filter(pl.col("mmsi") != first),
            positions.filter(pl.col("mmsi") == first).head(50),
            late.with_columns(pl.col("timestamp") + pl.duration(hours=2)),
        ]
    )
    # Ingestion types ISO timestamps by default; a route with try_parse_dates off keeps text.
    as_ingested = positions
    if timestamps == "text":
        text = pl.col("timestamp").dt.to_string("%Y-%m-%dT%H:%M:%S%z")
        as_ingested = positions.with_columns(text)
    as_ingested.write_delta(delta_table_uri(lake.settings, lake.store, POSITIONS))

    assert materialize(ais_assets, resources=_resources()).success

    voyages = lake.read_parquet("results/ais/voyages.parquet")
    assert voyages.height == 9 and voyages["reports"].sum() == positions.height
    assert voyages.filter(pl.col("mmsi") == first)["reports"].to_list() == [50, 10]
    # Each report moves a vessel sog/60 nm on its course: a voyage of n reports sails about
    # (n - 1) minutes at its mean speed.
    for row in voyages.filter(pl.col("mmsi") != first).iter_rows(named=True):
        expected = (row["reports"] - 1) / 60 * row["mean_sog"]
        assert row["distance_nm"] == pytest.approx(expected, rel=0.05)
    vessels = lake.sql.query(f"SELECT mmsi, voyages, distance_nm FROM {VESSELS.qualified}")
    assert vessels.height == 8
    assert vessels.filter(pl.col("mmsi") == first)["voyages"].item() == 2
    assert vessels["distance_nm"].sum() == pytest.approx(voyages["distance_nm"].sum())


def test_ais_example_without_the_table_names_the_closest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = _use(Settings(data_dir=tmp_path / "data"), monkeypatch)
    samples.ais_positions().write_delta(lake.store.url("lake", "default/ais_position"))
    with pytest.raises(
        TableNotFound,
        match=r"'delta.default.ais_positions' does not exist; did "
        r"you mean 'delta.default.ais_position'",
    ):
        materialize(ais_assets, resources=_resources())


def test_the_example_is_in_the_code_location_with_lineage_from_the_exports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = _use(Settings(data_dir=tmp_path / "data"), monkeypatch)
    # Once the summary table exists, the landing route's pattern finds it in the lake too: it
    # stays the example's asset (a second declaration would fail the whole code location).
    uri = delta_table_uri(lake.settings, lake.store, SUMMARY_TABLE)
    pl.DataFrame({"iso_code": ["USA"]}).write_delta(uri)
    samples.ais_positions().write_delta(delta_table_uri(lake.settings, lake.store, POSITIONS))
    graph = build_definitions(Settings()).resolve_asset_graph()
    # The AIS half starts from the ingested table, declared by the landing route's pattern.
    assert graph.get_ancestor_asset_keys(AssetKey(["delta", "default", "ais_vessels"])) == {
        AssetKey(["delta", "default", "ais_positions"]),
        AssetKey(["ais", "voyages"]),
    }
    model = AssetKey(["co2", "model"])
    assert graph.get_ancestor_asset_keys(model) == {
        AssetKey(["co2-data", "emissions"]),
        AssetKey(["co2", "emissions_raw"]),
        AssetKey(["co2", "emissions_clean"]),
    }
    assert AssetKey(["delta", "default", "co2_by_country"]) in graph.get_all_asset_keys()


def test_io_manager_keys_frames_models_and_partitions_by_asset_key(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = _use(make_settings(), monkeypatch)

    @asset(key_prefix="demo")
    def frame() -> pl.DataFrame:
        return pl.DataFrame({"x": [1, 2, 3]})

    @asset(key_prefix="demo")
    def as_pandas(frame: pd.DataFrame) -> pd.DataFrame:  # the reader hands over what is asked
        assert isinstance(frame, pd.DataFrame)
        return frame.assign(y=frame["x"] * 2)

    @asset(key_prefix="demo", io_manager_key="results_io_manager")
    def stats(as_pandas: pl.DataFrame) -> dict[str, int]:
        return {"rows": as_pandas.height, "y_sum": int(as_pandas["y"].sum())}

    @asset(key_prefix="demo", partitions_def=DailyPartitionsDefinition("2024-05-01"))
    def daily() -> pl.DataFrame:
        return pl.DataFrame({"n": [1]})

    assert materialize([frame, as_pandas, stats], resources=_resources()).success
    assert materialize([daily], resources=_resources(), partition_key="2024-05-02").success

    assert lake.ls("dagster/demo/", recursive=True) == [
        "dagster/demo/as_pandas.parquet",
        "dagster/demo/daily/2024-05-02.parquet",
        "dagster/demo/frame.parquet",
    ]
    assert lake.read_parquet("dagster/demo/as_pandas.parquet")["y"].to_list() == [2, 4, 6]
    with lake.open("results/demo/stats.pkl") as fh:
        assert pickle.load(fh) == {"rows": 3, "y_sum": 12}


def test_io_manager_names_the_missing_object_of_an_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = _use(Settings(data_dir=tmp_path / "data"), monkeypatch)
    lake.write_csv(samples.co2_emissions(), "co2-data/emissions/co2.csv")
    clean = AssetSelection.assets(AssetKey(["co2", "emissions_clean"]))
    with pytest.raises(
        ObjectNotFound,
        match=r"asset co2/emissions_raw has no stored value: neither "
        r"dagster/co2/emissions_raw\.parquet nor dagster/co2/emissions_raw\.pkl",
    ):
        materialize(co2_assets, selection=clean, resources=_resources())


USER_MODULE = """
import polars as pl
from dagster import AssetIn, Definitions, asset


@asset(key=["mine", "top_emitters"], ins={"clean": AssetIn(key=["co2", "emissions_clean"])},
       io_manager_key="results_io_manager")
def top_emitters(clean: pl.DataFrame) -> pl.DataFrame:
    return clean.group_by("iso_code").agg(pl.col("co2").sum()).sort("co2").tail(3)


defs = Definitions(assets=[top_emitters])
"""


def test_a_users_module_joins_the_code_location_and_a_broken_one_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    lake = _use(Settings(data_dir=tmp_path / "data"), monkeypatch)
    (tmp_path / "my_pipelines.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = Settings(pipeline_modules=["my_pipelines", "no_such_pipelines"])

    with caplog.at_level(logging.ERROR):
        defs = build_definitions(settings)
    assert "cannot import pipeline module 'no_such_pipelines'" in caplog.text
    mine = AssetKey(["mine", "top_emitters"])
    graph = defs.resolve_asset_graph()
    assert AssetKey(["co2", "emissions_clean"]) in graph.get_ancestor_asset_keys(mine)

    lake.write_parquet(samples.co2_emissions().drop_nulls(), "datasets/co2/emissions_clean.parquet")
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(asset_selection=[mine]).success
    top = lake.read_parquet("results/mine/top_emitters.parquet")
    assert top["iso_code"].to_list()[-1] == "USA"


def test_a_module_without_defs_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.user_modules import load_user_modules

    (tmp_path / "not_dagster.py").write_text("assets = []\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = load_user_modules(["not_dagster"])
    assert loaded.definitions == {}
    assert "has no `defs = dagster.Definitions(...)`" in loaded.errors["not_dagster"]


def test_bad_exports_and_degenerate_fits_are_refused_by_name() -> None:
    from pipelines.ais_pipeline import voyages
    from pipelines.co2_pipeline import clean_emissions, evaluate, fit_loglog

    with pytest.raises(ValueError, match=r"lacks column\(s\) \['iso_code', 'population', 'gdp'"):
        clean_emissions(pl.DataFrame({"country": ["DE"], "year": [2020], "co2": [1.0]}))
    one_x = pl.DataFrame({"gdp_per_capita": [10.0, 10.0], "co2_per_capita": [1.0, 2.0]})
    with pytest.raises(ValueError, match="two distinct gdp_per_capita values"):
        fit_loglog(one_x, "gdp_per_capita", "co2_per_capita")
    model = fit_loglog(
        pl.DataFrame({"gdp_per_capita": [1.0, 10.0], "co2_per_capita": [1.0, 10.0]}),
        "gdp_per_capita",
        "co2_per_capita",
    )
    assert model["slope"] == pytest.approx(1.0) and model["intercept"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="no rows from 2018 on"):
        evaluate(model, one_x.clear())
    with pytest.raises(ValueError, match=r"lack column\(s\) \['sog'\]"):
        voyages(samples.ais_positions().drop("sog"))


CLASHING_MODULE = """
from dagster import Definitions, asset
from pipelines.io_managers import ObjectStoreIOManager


@asset(key=["mine", "numbers"])
def numbers() -> list[int]:
    return [1, 2, 3]


defs = Definitions(assets=[numbers], resources={"io_manager": ObjectStoreIOManager(bucket="x")})
"""


def test_a_module_redefining_a_platform_resource_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LAKEWIRE_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "clashing_pipelines.py").write_text(CLASHING_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    with caplog.at_level(logging.ERROR):
        defs = build_definitions(Settings(pipeline_modules=["clashing_pipelines"]))
    assert "pipeline module 'clashing_pipelines' left out" in caplog.text
    assert "'io_manager'" in caplog.text
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    assert AssetKey(["co2", "model"]) in keys and AssetKey(["mine", "numbers"]) not in keys
