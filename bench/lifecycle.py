"""Lifecycle: plan time over many objects, and apply throughput vs a plain copy+delete loop.

``python -m bench.lifecycle [--objects N] [--apply-objects M]`` on the local backend, in a temp
dir; prints one JSON document and writes it to ``bench/results/lifecycle.json`` (not with
``--smoke``). Goal (issue 12): a plan over 100,000 objects in at most 5 s.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from lakehouse.lifecycle import RulesStore, apply, parse_config, plan
from lakehouse.objectstore import open_object_store
from lakehouse.settings import Settings

RULES = {
    "Rules": [
        {
            "ID": "temp",
            "Status": "Enabled",
            "Filter": {"Prefix": "temp/"},
            "Expiration": {"Days": 30},
        },
        {
            "ID": "chain",
            "Status": "Enabled",
            "Filter": {"Prefix": "checkpoints/"},
            "Transitions": [
                {"Days": 30, "StorageClass": "WARM"},
                {"Days": 90, "StorageClass": "COLD"},
            ],
            "Expiration": {"Days": 365},
        },
    ]
}


def _fill(root: Path, n: int, size: int) -> None:
    body = os.urandom(size)
    for i in range(n):
        prefix = ("temp", "checkpoints", "keep")[i % 3]
        d = root / prefix / f"{i // 1000:04d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{i}.bin").write_bytes(body)


def run(work: Path, objects: int, apply_objects: int, size: int) -> dict[str, Any]:
    settings = Settings(data_dir=work / "data")
    store = open_object_store(settings)
    store.create_bucket("landing")
    RulesStore(store).put("landing", parse_config(RULES))
    root = settings.data_dir / "buckets" / "landing"
    if not root.is_dir():
        root = next(p for p in settings.data_dir.rglob("landing") if p.is_dir())
    _fill(root, objects, 16)
    at = datetime.now(UTC) + timedelta(days=40)
    t0 = time.perf_counter()
    first = plan(settings, store, "landing", at=at)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    plan(settings, store, "landing", at=at)
    warm = time.perf_counter() - t0

    # apply throughput: its own bucket of apply_objects checkpoints (all due to WARM)
    store.create_bucket("ckpt")
    RulesStore(store).put("ckpt", parse_config(RULES))
    croot = root.parent / "ckpt"
    body = os.urandom(size)
    for i in range(apply_objects):
        store.put("ckpt", f"checkpoints/{i}.bin", body)
    actions = plan(settings, store, "ckpt", at=at)
    t0 = time.perf_counter()
    outcome = apply(settings, store, actions, clock=lambda: at)
    applied = time.perf_counter() - t0

    store.create_bucket("plain")
    store.create_bucket("plain-dst")
    for i in range(apply_objects):
        store.put("plain", f"checkpoints/{i}.bin", body)
    t0 = time.perf_counter()
    for i in range(apply_objects):
        key = f"checkpoints/{i}.bin"
        store.put("plain-dst", f"plain/{key}", store.get_bytes("plain", key))
        store.delete("plain", key)
    plain = time.perf_counter() - t0
    mb = apply_objects * size / 1e6
    _ = croot
    return {
        "plan_objects": objects,
        "plan_actions": len(first),
        "plan_seconds_cold": round(cold, 3),
        "plan_seconds_warm": round(warm, 3),
        "plan_goal_seconds": 5.0,
        "apply_objects": apply_objects,
        "apply_object_bytes": size,
        "apply_transitioned": outcome.transitioned,
        "apply_objects_per_s": round(apply_objects / applied, 1),
        "apply_mb_per_s": round(mb / applied, 2),
        "plain_copy_delete_objects_per_s": round(apply_objects / plain, 1),
        "plain_copy_delete_mb_per_s": round(mb / plain, 2),
    }


def main(
    objects: Annotated[int, typer.Option(help="Objects the plan lists.")] = 100_000,
    apply_objects: Annotated[int, typer.Option(help="Objects the apply transitions.")] = 1_000,
    size: Annotated[int, typer.Option(help="Bytes per applied object.")] = 256 * 1024,
    smoke: Annotated[bool, typer.Option(help="Tiny sizes; results not written.")] = False,
) -> None:
    if smoke:
        objects, apply_objects, size = 300, 20, 1024
    with tempfile.TemporaryDirectory(prefix="lakewire-bench-ilm-") as tmp:
        result = run(Path(tmp), objects, apply_objects, size)
    result["at"] = datetime.now(UTC).isoformat(timespec="seconds")
    text = json.dumps(result, indent=2)
    print(text)
    if not smoke:
        (Path(__file__).parent / "results" / "lifecycle.json").write_text(text + "\n")


if __name__ == "__main__":
    typer.run(main)
