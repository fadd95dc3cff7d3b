"""``lakewire sql``: through the service's SQL API when it runs, in-process with ``--local``;
``--format table|csv|json|parquet`` and ``--output``."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.helpers import BIN
from tests.test_sql_api import sql_service


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("sqlcli")
    with sql_service(tmp, LAKEWIRE_SQL_MAX_ROWS="1000") as (_, environment):
        yield environment


def lakewire(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "lakewire"), "sql", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_json_through_the_api_and_local(env: dict[str, str]) -> None:
    q = "SELECT id, name FROM iceberg.sales.orders ORDER BY id"
    via_api = lakewire(env, "--format", "json", q)
    assert via_api.returncode == 0, via_api.stderr
    rows = json.loads(via_api.stdout)
    # The service holds at most LAKEWIRE_SQL_MAX_ROWS: proof this went through the API.
    assert len(rows) == 1000 and rows[0] == {"id": 0, "name": "name 0"}
    assert "cut at 1000 rows" in via_api.stderr
    local = lakewire({**env, "LAKEWIRE_SQL_MAX_ROWS": "1000"}, "--local", "--format", "json", q)
    assert local.returncode == 0, local.stderr
    assert len(json.loads(local.stdout)) == 1205
    count = lakewire(env, "--format", "json", "SELECT count(*) AS n FROM delta.sales.orders")
    assert json.loads(count.stdout) == [{"n": 1205}]


@pytest.mark.parametrize("local", [False, True])
def test_formats_and_output(env: dict[str, str], tmp_path: Path, local: bool) -> None:
    flag = ["--local"] if local else []
    q = "SELECT id, name FROM delta.sales.orders WHERE id < 3 ORDER BY id"
    out = lakewire(env, *flag, "--format", "csv", q)
    assert list(csv.reader(io.StringIO(out.stdout))) == [
        ["id", "name"],
        ["0", "name 0"],
        ["1", "name 1"],
        ["2", "name 2"],
    ]
    target = tmp_path / "r.parquet"
    out = lakewire(env, *flag, "--format", "parquet", "--output", str(target), q)
    assert out.returncode == 0, out.stderr
    assert pq.read_table(target).to_pylist()[2] == {"id": 2, "name": "name 2"}
    text = tmp_path / "r.txt"
    out = lakewire(env, *flag, "--output", str(text), q)
    assert out.returncode == 0 and "name 2" in text.read_text()


@pytest.mark.parametrize("local", [False, True])
def test_errors_exit_nonzero_with_the_message(env: dict[str, str], local: bool) -> None:
    flag = ["--local"] if local else []
    missing = lakewire(env, *flag, "--format", "json", "SELECT count(*) FROM delta.sales.nope")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    bad = lakewire(env, *flag, "SELECT id FROM (SELECT 1")
    assert bad.returncode == 1 and "line 1" in bad.stderr
    refused = lakewire(env, *flag, "COPY (SELECT 1) TO '/tmp/lakewire-cli-copy.csv'")
    assert refused.returncode == 1
    assert not Path("/tmp/lakewire-cli-copy.csv").exists()
