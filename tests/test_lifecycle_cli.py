"""`lakewire ilm import|export|ls|rm|plan|apply` on the local backend."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lakehouse.tiers import get_resolved
from lakewire.cli import app

RULES = {
    "Rules": [
        {
            "ID": "temp",
            "Status": "Enabled",
            "Filter": {"Prefix": "temp/"},
            "Expiration": {"Days": 30},
        },
        {
            "ID": "warm",
            "Status": "Enabled",
            "Filter": {"Prefix": "old/"},
            "Transitions": [{"Days": 90, "StorageClass": "WARM"}],
        },
    ]
}


def test_ilm_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEWIRE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LAKEWIRE_NATS_URL", raising=False)
    runner = CliRunner()
    from lakehouse.objectstore import open_object_store
    from lakehouse.settings import Settings

    store = open_object_store(Settings())
    store.create_bucket("landing")
    store.put("landing", "temp/a.csv", b"a")
    store.put("landing", "old/b.csv", b"bb")
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(RULES))

    r = runner.invoke(app, ["ilm", "import", "landing", str(rules)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["ilm", "import", "lake", str(rules)])
    assert r.exit_code == 1 and "table" in r.output
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"Rules": [{"ID": "x", "Status": "Enabled", "Expiration": {}}]}))
    r = runner.invoke(app, ["ilm", "import", "landing", str(bad)])
    assert r.exit_code == 1 and "rule 'x' field Expiration" in r.output

    r = runner.invoke(app, ["ilm", "export", "landing"])
    assert json.loads(r.output)["Rules"][0]["ID"] == "temp"
    r = runner.invoke(app, ["ilm", "ls"])
    assert "temp" in r.output and "warm" in r.output

    at = (datetime.now(UTC) + timedelta(days=100)).isoformat()
    r = runner.invoke(app, ["ilm", "plan", "landing", "--at", at, "--json"])
    assert r.exit_code == 0, r.output
    assert [(p["object"], p["action"]) for p in json.loads(r.output)] == [
        ("landing/old/b.csv", "transition"),
        ("landing/temp/a.csv", "expire"),
    ]
    assert runner.invoke(app, ["ilm", "plan", "--at", at]).exit_code == 0
    assert store.head("landing", "temp/a.csv")  # plan changed nothing

    r = runner.invoke(app, ["ilm", "apply", "landing", "--at", at])
    assert r.exit_code == 0, r.output
    assert "1 expired" in r.output and "1 transitioned" in r.output
    assert get_resolved(store, "landing", "old/b.csv") == b"bb"
    r = runner.invoke(app, ["ilm", "apply", "landing", "--at", at])
    assert "0 planned" in r.output  # idempotent

    assert runner.invoke(app, ["ilm", "rm", "landing", "temp"]).exit_code == 0
    assert [
        x["ID"]
        for x in json.loads(runner.invoke(app, ["ilm", "export", "landing"]).output)["Rules"]
    ] == ["warm"]
    assert runner.invoke(app, ["ilm", "rm", "landing", "--all"]).exit_code == 0
    assert runner.invoke(app, ["ilm", "export", "landing"]).exit_code == 1
