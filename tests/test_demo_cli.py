"""``lakewire demo`` on a real local store and the platform's Dagster instance (SQLite)."""

from __future__ import annotations

import pickle
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance
from typer.testing import CliRunner

from lakehouse import samples
from lakehouse.files import Lake
from lakehouse.settings import Settings
from lakewire.cli import app


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("LAKEWIRE_STORAGE_BACKEND", "LAKEWIRE_S3_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LAKEWIRE_DATA_DIR", str(tmp_path / "data"))
    settings = Settings()
    # What `demo` would choose with none set; set here so it is undone after the test.
    monkeypatch.setenv("DAGSTER_HOME", str(settings.dagster_home))
    return settings


def test_demo_fills_the_buckets_and_runs_the_example_on_the_platforms_instance(
    settings: Settings,
) -> None:
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    lake = Lake(settings)
    # A fresh data dir has no buckets yet: demo makes the ones it writes to.
    assert "created bucket co2-data" in result.output
    assert lake.read_csv("co2-data/emissions/co2.csv").equals(samples.co2_emissions())
    ais = lake.read_csv("ais-data/positions/2024-05-01.csv", try_parse_dates=True)
    assert ais.columns == ["mmsi", "timestamp", "lat", "lon", "sog", "cog", "heading", "ship_type"]
    assert ais["mmsi"].n_unique() == 8 and ais.height == 480
    assert lake.exists("landing/ais_positions/2024-05-01.csv")
    assert lake.read_csv("synthetic-data/sensors/readings.csv").height == 5 * 48

    with lake.open("models/co2/model.pkl") as fh:
        assert pickle.load(fh)["slope"] == pytest.approx(samples.CO2_GDP_ELASTICITY, abs=0.05)
    assert lake.sql.query("SELECT count(*) AS n FROM delta.default.co2_by_country")["n"][0] == 12
    # The run is in the platform's own instance, so the Dagster UI shows it and its assets.
    instance = DagsterInstance.from_config(str(settings.dagster_home))
    run_id = result.output.split("example pipeline: run ")[1].split()[0]
    run = instance.get_run_by_id(run_id)
    assert run is not None and run.is_success
    assert instance.get_latest_materialization_event(AssetKey(["co2", "model"])) is not None
    assert "then materialize the ais_example group" in result.output

    # Once ingestion has made the AIS table (written here as it would), demo runs that half too.
    landed = lake.read_csv("landing/ais_positions/2024-05-01.csv", try_parse_dates=True)
    landed.write_delta(lake.store.url("lake", "default/ais_positions"))
    again = CliRunner().invoke(app, ["demo"])
    assert again.exit_code == 0, again.output
    assert 'lakewire sql "SELECT * FROM delta.default.ais_vessels"' in again.output
    vessels = lake.sql.query(
        "SELECT count(*) AS n, sum(voyages) AS v FROM delta.default.ais_vessels"
    )
    assert vessels.row(0) == (8, 8)
    assert lake.exists("results/ais/voyages.parquet")


def test_demo_again_writes_the_same_bytes(settings: Settings) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["demo", "--no-run"])
    assert first.exit_code == 0, first.output
    lake = Lake(settings)
    etags = {p: lake.store.head(*p.split("/", 1)).etag for p in lake.ls("ais-data", recursive=True)}
    second = runner.invoke(app, ["demo", "--no-run"])
    assert second.exit_code == 0 and "created bucket" not in second.output
    assert etags == {p: lake.store.head(*p.split("/", 1)).etag for p in etags}
    assert not lake.exists("models/co2/model.pkl")
    assert (
        pl.read_csv(lake.open("co2-data/emissions/co2.csv")).height
        == samples.co2_emissions().height
    )
