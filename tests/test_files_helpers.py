"""The notebook helpers (``lakehouse.files``, ``lakehouse.notebook.minio``) on both backends:
the local store and S3 on SeaweedFS (``make_settings``), tables and SQL through the query API,
errors that name the closest names, and the kernel object of the platform's JupyterLab."""

from __future__ import annotations

import importlib.util
import io
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import nbformat
import polars as pl
import pyarrow as pa
import pytest
from nbclient import NotebookClient

from lakehouse.files import Lake, TableNotFound, default_settings
from lakehouse.objectstore import BucketNotFound, ObjectNotFound, open_object_store
from lakehouse.settings import Settings
from lakehouse.tables import SourceVersion, TableRef, WriteSpec, open_target
from lakehouse.tiers import TierMap, TierRecord
from storage_service.events import OBJECT_CREATED_PUT, BucketEvent
from storage_service.stream import read_after_sync
from tests.helpers import NatsServer, Service, local_settings, wait_for

ROOT = Path(__file__).parent.parent


def _lake(settings: Settings, *buckets: str) -> Lake:
    store = open_object_store(settings)
    for bucket in buckets:
        if not store.bucket_exists(bucket):
            store.create_bucket(bucket)
    return Lake(settings, store)


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "country": ["DE", "FR", "NO"],
            "year": [2020, 2020, 2021],
            "co2_mt": [644.3, 277.4, 41.1],
        }
    )


def test_files_round_trip_csv_parquet_ndjson_and_listing(
    make_settings: Callable[..., Settings],
) -> None:
    lake = _lake(make_settings(), "co2-data", "results")
    df = _frame()

    info = lake.write_csv(df, "co2-data/emissions/2020.csv")
    assert info.size == len(df.write_csv().encode())
    assert lake.read_csv("co2-data/emissions/2020.csv").equals(df)
    lake.write_parquet(df, "results/emissions.parquet")
    assert lake.read_parquet("results/emissions.parquet").equals(df)
    lake.write_json(df, "results/emissions.ndjson")
    raw = lake.open("results/emissions.ndjson").read().decode()
    assert raw.count("\n") == 3 and raw.startswith('{"country":"DE"')  # one object a line
    assert lake.read_json("s3://results/emissions.ndjson").equals(df)
    assert lake.write_bytes(b"\x80model", "results/model.bin").size == 6
    with lake.open("results/model.bin") as fh:
        assert fh.read() == b"\x80model"
    lake.rm("results/model.bin")

    assert {"co2-data", "results"} <= set(lake.ls())
    assert lake.ls("co2-data") == ["co2-data/emissions/"]
    assert lake.ls("co2-data", recursive=True) == ["co2-data/emissions/2020.csv"]
    assert lake.ls("results/emissions.") == [
        "results/emissions.ndjson",
        "results/emissions.parquet",
    ]

    assert lake.exists("co2-data/emissions/2020.csv") and lake.exists("co2-data")
    assert not lake.exists("co2-data/emissions/2021.csv") and not lake.exists("nope-bucket/x")
    lake.rm("co2-data/emissions/2020.csv")
    assert not lake.exists("co2-data/emissions/2020.csv")
    assert lake.ls("co2-data", recursive=True) == []  # (SeaweedFS keeps the empty folder)


def test_files_open_streams_in_chunks(make_settings: Callable[..., Settings]) -> None:
    lake = _lake(make_settings(), "datasets")
    body = b"".join(f"line {i:06d}\n".encode() for i in range(50_000))  # 600 kB
    lake.store.put("datasets", "big.txt", body)
    with lake.open("datasets/big.txt", chunk_size=64 * 1024) as fh:
        assert isinstance(fh, io.BufferedReader)
        assert fh.raw.info.size == len(body)  # type: ignore[attr-defined]
        assert fh.readline() == b"line 000000\n"
        assert fh.read(12) == b"line 000001\n"
        rest = fh.read()
    assert len(rest) == len(body) - 24 and rest.endswith(b"line 049999\n")


def test_files_missing_names_are_errors_naming_the_closest(
    make_settings: Callable[..., Settings],
) -> None:
    lake = _lake(make_settings(), "co2-data", "ais-data")
    lake.write_csv(_frame(), "co2-data/owid/co2.csv")

    with pytest.raises(BucketNotFound, match=r"'co2-dta' does not exist; did you mean 'co2-data'"):
        lake.read_csv("co2-dta/owid/co2.csv")
    with pytest.raises(BucketNotFound, match="did you mean 'co2-data'"):
        lake.write_csv(_frame(), "co2_data/x.csv")  # writes never create a bucket
    with pytest.raises(ObjectNotFound, match=r"'co2-data/owid/co2.cvs'.*'owid/co2.csv'"):
        lake.read_csv("co2-data/owid/co2.cvs")
    with pytest.raises(ObjectNotFound, match=re.escape("did you mean 'owid/co2.csv'")):
        lake.read_parquet("co2-data/co2.csv")  # the right file name in the wrong folder
    with pytest.raises(ObjectNotFound, match=re.escape("did you mean 'owid/co2.csv'")):
        lake.rm("co2-data/owid/co2.csvv")
    with pytest.raises(ObjectNotFound, match=re.escape("'ais-data/x.csv' does not exist") + "$"):
        lake.open("ais-data/x.csv")  # an empty bucket: nothing to suggest
    with pytest.raises(ValueError, match="expected 'bucket/key'"):
        lake.read_csv("co2-data")


def _delta_table(settings: Settings, lake: Lake, versions: int) -> None:
    """``delta.default.orders`` with ``versions`` commits of 10 rows each."""
    target = open_target(settings, lake.store, TableRef("delta", "default", "orders"))
    for v in range(versions):
        key = f"orders/{v}.csv"
        info = lake.store.put("landing", key, f"id\n{v}\n".encode())
        src = SourceVersion("landing", key, info.etag, str(v + 1))
        rows = pa.table({"id": list(range(v * 10, v * 10 + 10)), "_source_uri": [src.uri] * 10})
        reader = pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches())
        target.write(reader, [src], WriteSpec(), [])


def test_files_tables_and_sql_through_the_query_api(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    lake = _lake(settings, "landing", "lake")
    _delta_table(settings, lake, versions=2)

    assert lake.tables.list() == ["delta.default.orders"]
    assert lake.tables.read("delta.default.orders").height == 20
    # Version 0 is the empty table (created first so concurrent writers commit against it).
    first = lake.sql.query(
        'SELECT min(version) AS v FROM delta.default."orders$history" WHERE rows_added > 0'
    ).item()
    assert lake.tables.read("delta.default.orders", version=0).height == 0
    assert lake.tables.read("delta.default.orders", version=first).height == 10
    assert lake.tables.read("default.orders", limit=3).height == 3
    got = lake.sql.query("SELECT count(*) AS n, max(id) AS top FROM delta.default.orders")
    assert got.to_dicts() == [{"n": 20, "top": 19}]
    assert lake.sql.query_arrow("SELECT 1 AS one").column("one").to_pylist() == [1]

    with pytest.raises(TableNotFound, match=re.escape("did you mean 'delta.default.orders'")):
        lake.tables.read("delta.default.order")
    with pytest.raises(TableNotFound, match=re.escape("did you mean 'delta.default.orders'")):
        lake.tables.read("iceberg.default.orders")
    with pytest.raises(TableNotFound, match=re.escape("did you mean 'delta.default.orders'")):
        lake.sql.query("SELECT count(*) FROM delta.default.ordrs")


def test_files_read_an_object_lifecycle_moved_to_a_tier(
    make_settings: Callable[..., Settings],
) -> None:
    lake = _lake(make_settings(), "co2-data", "archive-warm")
    body = _frame().write_csv().encode()
    info = lake.store.put("archive-warm", "co2-data/2019.csv", body)
    TierMap(lake.store).put(
        TierRecord(
            bucket="co2-data",
            key="2019.csv",
            storage_class="WARM",
            tier_bucket="archive-warm",
            tier_key="co2-data/2019.csv",
            size=info.size,
            etag=info.etag,
            last_modified=info.last_modified.isoformat(),
        )
    )
    assert lake.read_csv("co2-data/2019.csv").equals(_frame())
    assert lake.exists("co2-data/2019.csv")
    with lake.open("co2-data/2019.csv") as fh:
        assert fh.read() == body
    assert "lakewire-system" not in lake.ls()  # the system bucket is not the user's


def test_files_to_pandas_without_pandas_says_it_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pandas comes with the notebook extra; a base install has none: hide it as that would.
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "pandas" else real_find_spec(name, *a),
    )
    lake = _lake(Settings(data_dir=tmp_path / "data"), "results")
    lake.write_csv(_frame(), "results/x.csv")
    with pytest.raises(ImportError, match="needs pandas, which is not installed"):
        lake.read_csv("results/x.csv", to_pandas=True)


def test_files_pandas_frames_in_and_out(tmp_path: Path) -> None:
    lake = _lake(Settings(data_dir=tmp_path / "data"), "results")
    pdf = _frame().to_pandas()
    lake.write_parquet(pdf, "results/x.parquet")
    back = lake.read_parquet("results/x.parquet", to_pandas=True)
    assert type(back).__module__.startswith("pandas") and back.equals(pdf)


def test_files_write_on_the_local_backend_is_announced(tmp_path: Path, nats: NatsServer) -> None:
    settings = local_settings(tmp_path, nats)
    with Service(settings) as svc:  # its watcher announces files written into the data dir
        rules = {"rules": [{"events": ["s3:ObjectCreated:*"]}]}
        assert svc.client.put("/api/buckets/results/notifications", json=rules).is_success
        lake = Lake(settings)
        info = lake.write_csv(_frame(), "results/summary/by_country.csv")

        def created() -> list[BucketEvent] | None:
            events = read_after_sync(settings, 0, 1000, 5).events
            hits = [
                e
                for e in events
                if (e.bucket, e.key) == ("results", "summary/by_country.csv")
                and e.event_name == OBJECT_CREATED_PUT
            ]
            return hits or None

        [event] = wait_for(created, timeout=30, what="the write's event")
        assert event.etag == info.etag


def test_files_default_settings_find_the_running_platforms_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".lakewire").mkdir()
    inner = tmp_path / "notebooks" / "deep"
    inner.mkdir(parents=True)
    monkeypatch.delenv("LAKEWIRE_DATA_DIR", raising=False)
    monkeypatch.chdir(inner)
    assert default_settings().data_dir == tmp_path / ".lakewire"
    monkeypatch.setenv("LAKEWIRE_DATA_DIR", str(tmp_path / "elsewhere"))
    assert default_settings().data_dir == tmp_path / "elsewhere"


def test_files_kernel_has_minio_ready_and_the_sdk_is_not_shadowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernel started with the platform's startup file, as JupyterLab starts one."""
    data_dir = tmp_path / "data"
    lake = _lake(Settings(data_dir=data_dir), "co2-data", "results")
    lake.write_csv(_frame(), "co2-data/owid/co2.csv")
    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    shutil.copy(ROOT / "deploy" / "jupyter" / "00-lakewire.py", startup)
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("LAKEWIRE_DATA_DIR", str(data_dir))

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import minio as sdk\nprint(type(minio).__name__, sdk.__name__, hasattr(sdk, 'Minio'))"
        ),
        nbformat.v4.new_code_cell(
            "import polars as pl\n"
            "df = minio.read_csv('co2-data/owid/co2.csv')\n"
            "out = df.group_by('year').agg(co2=pl.col('co2_mt').sum()).sort('year')\n"
            "minio.write_csv(out, 'results/co2_by_year.csv')\n"
            "print('rows', minio.read_csv('results/co2_by_year.csv').height)"
        ),
    ]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = [o.get("text", "") for cell in nb.cells for o in cell.outputs]
    assert outputs == ["Lake minio True\n", "rows 2\n"]
    by_year = lake.read_csv("results/co2_by_year.csv")
    assert by_year.to_dicts() == [
        {"year": 2020, "co2": pytest.approx(921.7)},
        {"year": 2021, "co2": pytest.approx(41.1)},
    ]


def test_files_notebook_module_object_is_not_a_module() -> None:
    import minio as sdk

    from lakehouse import notebook

    assert isinstance(notebook.minio, Lake) and notebook.lake is notebook.minio
    assert sdk.__name__ == "minio" and hasattr(sdk, "Minio")
    assert importlib.util.find_spec("lakehouse.minio") is None
