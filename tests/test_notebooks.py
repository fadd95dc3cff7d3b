"""Notebooks are executed, cell by cell, in a real Jupyter kernel against real Delta files."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from lakehouse.objectstore import open_object_store
from lakehouse.settings import Settings
from lakehouse.tables import SourceVersion, TableRef, WriteSpec, open_target
from tests.helpers import write_csv

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_and_reads_the_table(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import polars as pl
    import pyarrow as pa

    data_dir = tmp_path / "data"
    monkeypatch.setenv("LAKEWIRE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("LAKEWIRE_EXAMPLE_DATASET", "orders")
    settings = Settings()
    store = open_object_store(settings)
    for bucket in ("landing", "lake"):
        store.create_bucket(bucket)
    csv = write_csv(tmp_path / "o.csv", 123)
    info = store.put("landing", "orders/o.csv", csv)
    src = SourceVersion("landing", "orders/o.csv", info.etag, "1")
    frame = pl.read_csv(csv).with_columns(pl.lit(src.uri).alias("_source_uri"))
    rows = frame.to_arrow()
    target = open_target(settings, store, TableRef("delta", "default", "orders"))
    reader = pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches())
    target.write(reader, [src], WriteSpec(), [])

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()

    outputs = "\n".join(
        o.get("text", "") or str(o.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.outputs
    )
    assert "delta.default.orders: 123 rows" in outputs
    assert "'row_count': 123, 'sources': 1" in outputs
