"""Asset outputs kept in Object Storage, so a pipeline's results are objects a notebook reads.

One IO manager over the ``lakehouse`` object store serves both backends (the local folders of
the embedded default and MinIO/S3 on the platform), so an asset's object has the same
``bucket/key`` on both and is written like any other object (a bucket with notifications on
announces it). DataFrames (polars, or pandas) are stored as Parquet, anything else (a trained
model, a dict of metrics) pickled. The key is the asset key's path (plus the partition key):
asset ``co2/model`` in bucket ``models`` is ``models/co2/model.pkl``.
"""

from __future__ import annotations

import pickle
from typing import Any

import polars as pl
from dagster import ConfigurableIOManager, InputContext, MetadataValue, OutputContext

from lakehouse.files import Lake
from lakehouse.objectstore import ObjectNotFound
from pipelines.resources import LakewireResource

PARQUET = ".parquet"
PICKLE = ".pkl"


def _is_frame(obj: object) -> bool:
    if isinstance(obj, pl.DataFrame | pl.LazyFrame):
        return True
    return type(obj).__module__.split(".", 1)[0] == "pandas" and type(obj).__name__ == "DataFrame"


def _wants_pandas(context: InputContext) -> bool:
    typing_type = context.dagster_type.typing_type
    return getattr(typing_type, "__module__", "").split(".", 1)[0] == "pandas"


class ObjectStoreIOManager(ConfigurableIOManager):
    """Stores each asset output as ``<bucket>/<prefix><asset key path>.parquet|.pkl``.

    Fields left unset follow the platform's ``LAKEWIRE_*`` settings, as ``LakewireResource``.
    """

    bucket: str = "dagster"
    prefix: str = ""
    data_dir: str | None = None

    def _lake(self) -> Lake:
        return Lake(LakewireResource(data_dir=self.data_dir).settings())

    def _base(self, context: InputContext | OutputContext) -> str:
        if context.has_asset_key:
            parts = context.get_asset_identifier()
        else:  # an op's output: kept per run, as Dagster's own IO managers do
            parts = context.get_identifier()
        prefix = self.prefix.strip("/")
        return "/".join([self.bucket, *([prefix] if prefix else []), *parts])

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if obj is None:  # an asset that wrote its result itself (a table) stores nothing here
            return
        lake = self._lake()
        base = self._base(context)
        if _is_frame(obj):
            path, other = base + PARQUET, base + PICKLE
            info = lake.write_parquet(obj, path)
            rows = obj.collect().height if isinstance(obj, pl.LazyFrame) else len(obj)
            context.add_output_metadata({"rows": rows})
        else:
            path, other = base + PICKLE, base + PARQUET
            info = lake.write_bytes(pickle.dumps(obj), path)
        if lake.exists(other):  # the asset changed kind: never leave a stale twin to be loaded
            lake.rm(other)
        context.add_output_metadata(
            {"object": MetadataValue.path(path), "bytes": info.size, "etag": info.etag}
        )

    def load_input(self, context: InputContext) -> Any:
        lake = self._lake()
        base = self._base(context)
        if lake.exists(base + PARQUET):
            return lake.read_parquet(base + PARQUET, to_pandas=_wants_pandas(context))
        if lake.exists(base + PICKLE):
            with lake.open(base + PICKLE) as fh:
                return pickle.load(fh)
        what = f"asset {context.asset_key.to_user_string()}" if context.has_asset_key else "input"
        raise ObjectNotFound(
            f"{what} has no stored value: neither {base}{PARQUET} nor {base}{PICKLE} exists "
            "(materialize it first)"
        )


def storage_io_managers() -> dict[str, ObjectStoreIOManager]:
    """The code location's IO managers by resource key: ``io_manager`` (every asset's default)
    keeps intermediates in ``dagster``; the others put a result in the bucket named for it."""
    return {
        "io_manager": ObjectStoreIOManager(bucket="dagster"),
        "datasets_io_manager": ObjectStoreIOManager(bucket="datasets"),
        "results_io_manager": ObjectStoreIOManager(bucket="results"),
        "models_io_manager": ObjectStoreIOManager(bucket="models"),
    }
