"""The example pipeline on the platform's own data: CO2 exports → clean dataset → model.

It is the template for a user's pipeline (docs/pipelines.md): assets read the landing objects
through ``lakehouse``, hand DataFrames and models to the Object Storage IO managers (so every
intermediate is an object a notebook can open), and write the summary as a Delta table that SQL
sees by name. The model is a log-log least-squares line of CO2 per person on GDP per person,
fitted in polars (no ML package is locked); it is trained on the years before
``TEST_FROM_YEAR`` and evaluated on the rest, so the evaluation is out of sample.
"""

from typing import Any

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    MaterializeResult,
    asset,
)

from lakehouse.files import Lake
from lakehouse.tables import TableRef, delta_table_uri
from pipelines.resources import LakewireResource

SOURCE_BUCKET = "co2-data"
SOURCE_PREFIX = "emissions/"
SUMMARY_TABLE = TableRef("delta", "default", "co2_by_country")
TEST_FROM_YEAR = 2018
GROUP = "co2_example"
RAW = AssetIn(key=["co2", "emissions_raw"])
CLEAN = AssetIn(key=["co2", "emissions_clean"])
MODEL = AssetIn(key=["co2", "model"])
REQUIRED = ("country", "year", "iso_code", "population", "gdp", "co2")

co2_exports = AssetSpec(
    AssetKey([SOURCE_BUCKET, "emissions"]),
    description=f"CSV exports under {SOURCE_BUCKET}/{SOURCE_PREFIX} (lakewire demo puts one)",
    group_name=GROUP,
    kinds={"csv"},
)


def clean_emissions(raw: pl.DataFrame) -> pl.DataFrame:
    """Countries only (aggregates like ``World`` have no ISO code), no gaps, one row per
    country and year, and the per-person figures the model uses."""
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise ValueError(f"the CO2 export lacks column(s) {missing}; it has {raw.columns}")
    return (
        raw.filter(pl.col("iso_code").is_not_null() & (pl.col("iso_code").str.len_chars() == 3))
        .drop_nulls(["population", "gdp", "co2"])
        .filter((pl.col("population") > 0) & (pl.col("gdp") > 0) & (pl.col("co2") > 0))
        .unique(["iso_code", "year"], keep="first", maintain_order=True)
        .with_columns(
            (pl.col("gdp") / pl.col("population")).alias("gdp_per_capita"),
            (pl.col("co2") * 1e6 / pl.col("population")).alias("co2_per_capita"),
        )
        .select(
            "iso_code",
            "country",
            "year",
            "population",
            "gdp",
            "co2",
            "gdp_per_capita",
            "co2_per_capita",
        )
        .sort("iso_code", "year")
    )


def fit_loglog(frame: pl.DataFrame, x: str, y: str) -> dict[str, Any]:
    """Least squares of log(y) on log(x): the model as plain numbers, loadable anywhere."""
    logs = frame.select(pl.col(x).log().alias("x"), pl.col(y).log().alias("y"))
    if logs["x"].n_unique() < 2:
        raise ValueError(f"need at least two distinct {x} values to fit, got {logs.height} rows")
    slope, mean_x, mean_y = logs.select(
        (pl.cov("x", "y") / pl.col("x").var()).alias("slope"),
        pl.col("x").mean().alias("mean_x"),
        pl.col("y").mean().alias("mean_y"),
    ).row(0)
    return {
        "kind": "log-log linear",
        "feature": x,
        "target": y,
        "intercept": float(mean_y - slope * mean_x),
        "slope": float(slope),
        "trained_rows": logs.height,
    }


def predict(model: dict[str, Any], frame: pl.DataFrame) -> pl.Series:
    return (model["intercept"] + model["slope"] * frame[model["feature"]].log()).exp()


def evaluate(model: dict[str, Any], test: pl.DataFrame) -> pl.DataFrame:
    """R² (on the log scale the model is fitted on), MAE and MAPE (in the target's units)."""
    if test.is_empty():
        raise ValueError(f"no rows from {TEST_FROM_YEAR} on to evaluate the model on")
    scored = pl.DataFrame({"actual": test[model["target"]], "predicted": predict(model, test)})
    log_a, log_p = pl.col("actual").log(), pl.col("predicted").log()
    error = (pl.col("actual") - pl.col("predicted")).abs()
    return scored.select(
        (1 - ((log_a - log_p) ** 2).sum() / ((log_a - log_a.mean()) ** 2).sum()).alias("r2_log"),
        error.mean().alias("mae"),
        (error / pl.col("actual")).mean().alias("mape"),
        pl.len().alias("test_rows"),
        pl.lit(TEST_FROM_YEAR).alias("test_from_year"),
    )


@asset(key=["co2", "emissions_raw"], deps=[co2_exports], group_name=GROUP, kinds={"polars"})
def emissions_raw(context: AssetExecutionContext, lakewire: LakewireResource) -> pl.DataFrame:
    """Every CSV export in the source bucket, concatenated (kept in the ``dagster`` bucket)."""
    lake = Lake(lakewire.settings())
    paths = [
        p for p in lake.ls(f"{SOURCE_BUCKET}/{SOURCE_PREFIX}", recursive=True) if p.endswith(".csv")
    ]
    if not paths:
        raise FileNotFoundError(
            f"no CSV under {SOURCE_BUCKET}/{SOURCE_PREFIX}: run `lakewire demo` or put an export"
        )
    context.log.info("reading %d export(s)", len(paths))
    return pl.concat(
        [lake.read_csv(p, infer_schema_length=None) for p in paths], how="diagonal_relaxed"
    )


@asset(
    key=["co2", "emissions_clean"],
    ins={"emissions_raw": RAW},
    io_manager_key="datasets_io_manager",
    group_name=GROUP,
    kinds={"parquet"},
)
def emissions_clean(emissions_raw: pl.DataFrame) -> pl.DataFrame:
    """The cleaned dataset, as ``datasets/co2/emissions_clean.parquet``."""
    return clean_emissions(emissions_raw)


@asset(
    key=["delta", "default", SUMMARY_TABLE.name],
    ins={"emissions_clean": CLEAN},
    group_name=GROUP,
    kinds={"delta"},
)
def co2_by_country(emissions_clean: pl.DataFrame, lakewire: LakewireResource) -> MaterializeResult:
    """Emissions per country: total, latest year and per-person average, as a Delta table."""
    summary = (
        emissions_clean.group_by("iso_code", "country")
        .agg(
            pl.col("co2").sum().alias("co2_total_mt"),
            pl.col("year").max().alias("latest_year"),
            pl.col("co2").sort_by("year").last().alias("co2_latest_mt"),
            pl.col("co2_per_capita").mean().alias("co2_per_capita_avg"),
        )
        .sort("co2_total_mt", descending=True)
    )
    settings = lakewire.settings()
    store = Lake(settings).store
    uri = delta_table_uri(settings, store, SUMMARY_TABLE)
    summary.write_delta(
        uri,
        mode="overwrite",
        storage_options=store.storage_options() or None,
        delta_write_options={"schema_mode": "overwrite"},
    )
    return MaterializeResult(metadata={"table": SUMMARY_TABLE.qualified, "rows": summary.height})


@asset(
    key=["co2", "model"],
    ins={"emissions_clean": CLEAN},
    io_manager_key="models_io_manager",
    group_name=GROUP,
    kinds={"python"},
)
def co2_model(emissions_clean: pl.DataFrame) -> dict[str, Any]:
    """CO2 per person from GDP per person, trained before ``TEST_FROM_YEAR``
    (``models/co2/model.pkl``: a dict of numbers, unpickled without this package)."""
    model = fit_loglog(
        emissions_clean.filter(pl.col("year") < TEST_FROM_YEAR), "gdp_per_capita", "co2_per_capita"
    )
    return {**model, "train_before_year": TEST_FROM_YEAR}


@asset(
    key=["co2", "evaluation"],
    ins={"co2_model": MODEL, "emissions_clean": CLEAN},
    io_manager_key="models_io_manager",
    group_name=GROUP,
    kinds={"parquet"},
)
def co2_evaluation(
    context: AssetExecutionContext, co2_model: dict[str, Any], emissions_clean: pl.DataFrame
) -> pl.DataFrame:
    """The model on the held-out years (``models/co2/evaluation.parquet``)."""
    scores = evaluate(co2_model, emissions_clean.filter(pl.col("year") >= TEST_FROM_YEAR))
    context.add_output_metadata({k: float(v) for k, v in scores.row(0, named=True).items()})
    return scores


co2_assets: list[AssetsDefinition | AssetSpec] = [
    co2_exports,
    emissions_raw,
    emissions_clean,
    co2_by_country,
    co2_model,
    co2_evaluation,
]
