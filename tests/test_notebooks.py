"""Every notebook, executed cell by cell in a real Jupyter kernel against an embedded platform
this module starts and fills with ``lakewire demo``; each test checks values the cells computed
(the kernel's printed lines), not only that they ran."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from lakehouse import samples
from tests.helpers import Platform, wait_for

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"
TESTED = ["01_quickstart.ipynb", "02_explore.ipynb", "03_write_back.ipynb", "04_model.ipynb"]


@pytest.fixture(scope="module")
def demo(platform: Platform) -> Platform:
    platform.lakewire("demo")
    # The explore notebook reads the AIS table the demo's landing object becomes.
    wait_for(lambda: platform.count("delta.default.ais_positions") == 480, 120, "ais_positions", 1)
    return platform


def _run(name: str, platform: Platform, cwd: Path) -> str:
    """The notebook's printed output, after executing it in a kernel with the platform's env."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute(env=platform.env)
    return "\n".join(
        o.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.outputs
        if o.get("output_type") == "stream"
    )


def test_every_notebook_is_tested_and_stored_without_outputs() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == TESTED
    for name in TESTED:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), name


@pytest.mark.platform
def test_quickstart_lands_a_file_and_queries_its_table(demo: Platform, tmp_path: Path) -> None:
    out = _run("01_quickstart.ipynb", demo, tmp_path)
    assert "delta.default.quickstart_orders is queryable" in out
    assert "totals: {'ada': 42.75, 'bob': 27.5, 'cy': 4.75}" in out
    assert f"{demo.dagster_url}/runs?q%5B0%5D=tag%3Alakewire%2Ftable%3D" in out


@pytest.mark.platform
def test_explore_agrees_in_sql_and_polars_and_travels_in_time(
    demo: Platform, tmp_path: Path
) -> None:
    out = _run("02_explore.ipynb", demo, tmp_path)
    assert "480 reports of 8 vessels; SQL and polars agree: True" in out
    assert re.search(r"versions: \[0(, \d+)*\]; rows at version \d+: 480", out), out
    assert "tracks drawn: 8" in out


@pytest.mark.platform
def test_write_back_shows_the_file_its_event_and_its_table(demo: Platform, tmp_path: Path) -> None:
    out = _run("03_write_back.ipynb", demo, tmp_path)
    fleet = re.search(r"fleet distance: ([\d.]+) nm over 8 vessels", out)
    assert fleet, out
    assert "written: ['results/ais/vessel_distance.csv']" in out
    assert "s3:ObjectCreated:Put landing vessel_distance/2024-05-01.csv" in out
    table = re.search(r"delta.default.vessel_distance: 8 vessels, ([\d.]+) nm", out)
    assert table and float(table.group(1)) == pytest.approx(float(fleet.group(1)), abs=0.1)


@pytest.mark.platform
def test_model_notebook_scores_the_stored_model_as_the_pipeline_did(
    demo: Platform, tmp_path: Path
) -> None:
    out = _run("04_model.ipynb", demo, tmp_path)
    assert "['models/co2/evaluation.parquet', 'models/co2/model.pkl']" in out
    slope = re.search(r"\+ ([\d.]+) \* log\(gdp per person\)", out)
    assert slope and float(slope.group(1)) == pytest.approx(samples.CO2_GDP_ELASTICITY, abs=0.05)
    scores = re.search(r"R² \(log scale\) on \d+ held-out rows: ([\d.]+); stored: ([\d.]+)", out)
    assert scores and scores.group(1) == scores.group(2), out
    assert float(scores.group(1)) > 0.9
    assert "worst: " in out


def test_the_image_gives_every_kernel_the_minio_object() -> None:
    """The platform's JupyterLab runs as the image's user, whose IPython profile is under its
    home: the startup file (tested in a kernel in test_files_helpers) must be copied there."""
    dockerfile = (NOTEBOOKS.parent / "Dockerfile").read_text()
    copy = re.search(
        r"COPY --chown=10001:10001 deploy/jupyter/00-lakewire\.py \\\n\s+(\S+)", dockerfile
    )
    assert copy, "the Dockerfile does not install deploy/jupyter/00-lakewire.py"
    home = re.search(r"--home-dir (\S+)", dockerfile)
    assert (
        home and copy.group(1) == f"{home.group(1)}/.ipython/profile_default/startup/00-lakewire.py"
    )
    assert "USER 10001:10001" in dockerfile
