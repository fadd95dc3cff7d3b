"""Bucket rename that is interrupted: it resumes at the next start or rolls back, never loses."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import pytest

from lakehouse.objectstore import ObjectInfo
from lakehouse.settings import Settings
from tests.helpers import Service, wait_for


def _fill(svc: Service, bucket: str, n: int) -> dict[str, bytes]:
    svc.client.post("/api/buckets", json={"name": bucket})
    bodies = {f"part-{i % 4}/obj-{i:03d}.bin": os.urandom(500 + i) for i in range(n)}
    for key, body in bodies.items():
        assert (
            svc.client.put(f"/api/buckets/{bucket}/objects/{key}", content=body).status_code == 201
        )
    return bodies


def _contents(svc: Service, bucket: str, keys: list[str]) -> dict[str, bytes]:
    return {k: svc.client.get(f"/api/buckets/{bucket}/objects/{k}").content for k in keys}


def _stop_after(svc: Service, hook: str, n: int) -> None:
    """Stop the rename thread after ``n`` steps, exactly as a service shutdown does."""
    renamer = svc.runtime.renamer
    calls = {"n": 0}
    original = getattr(renamer, hook)

    def halting(*args: object) -> object:
        calls["n"] += 1
        if calls["n"] > n:
            renamer._halt.set()
            renamer._check_halt()
        return original(*args)

    setattr(renamer, hook, halting)


def test_rename_stopped_mid_copy_resumes_at_next_start(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    with Service(settings) as svc:
        bodies = _fill(svc, "move-me", 40)
        _stop_after(svc, "_copy_one", 15)
        assert (
            svc.client.post("/api/buckets/move-me/rename", json={"new_name": "moved"}).status_code
            == 202
        )
        svc.runtime.renamer.wait("move-me")
        state = svc.client.get("/api/buckets/move-me/rename").json()
        assert state["phase"] == "copying" and state["copied_objects"] == 15
        # Writes to either bucket wait for the rename to finish.
        resp = svc.client.put("/api/buckets/move-me/objects/late.bin", content=b"x")
        assert resp.status_code == 409
        assert svc.client.delete("/api/buckets/move-me?confirm=move-me").status_code == 409
    persisted = json.loads((settings.state_dir / "renames.json").read_text())
    assert persisted["move-me"]["phase"] == "copying"

    with Service(settings) as svc:  # the next start picks it up
        state = wait_for(
            lambda: (
                (s := svc.client.get("/api/buckets/move-me/rename").json())["phase"] == "done" and s
            ),
            timeout=30,
            what="the resumed rename",
        )
        assert state["total_objects"] == 40
        names = [b["name"] for b in svc.client.get("/api/buckets").json()]
        assert "moved" in names and "move-me" not in names
        assert _contents(svc, "moved", list(bodies)) == bodies


def test_rename_stopped_while_deleting_the_source_resumes_without_loss(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings()
    with Service(settings) as svc:
        bodies = _fill(svc, "half-gone", 20)
        renamer = svc.runtime.renamer
        original_delete = svc.runtime.store.delete
        deleted = {"n": 0}

        def delete_then_stop(bucket: str, key: str) -> None:
            original_delete(bucket, key)
            deleted["n"] += 1
            if deleted["n"] == 7:
                renamer._halt.set()

        monkeypatch.setattr(svc.runtime.store, "delete", delete_then_stop)
        svc.client.post("/api/buckets/half-gone/rename", json={"new_name": "whole-again"})
        renamer.wait("half-gone")
        state = svc.client.get("/api/buckets/half-gone/rename").json()
        assert state["phase"] == "deleting"
    with Service(settings) as svc:
        wait_for(
            lambda: svc.client.get("/api/buckets/half-gone/rename").json()["phase"] == "done",
            timeout=30,
            what="the resumed rename",
        )
        assert _contents(svc, "whole-again", list(bodies)) == bodies
        assert svc.client.get("/api/buckets/half-gone/objects").status_code == 404


def test_failed_copy_rolls_back_and_keeps_the_source(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    with Service(make_settings()) as svc:
        bodies = _fill(svc, "fragile", 12)
        store = svc.runtime.store
        original_copy = store.copy_object
        copies = {"n": 0}

        def failing_copy(bucket: str, key: str, dst_bucket: str) -> ObjectInfo:
            copies["n"] += 1
            if copies["n"] == 6:
                raise OSError("disk full")
            return original_copy(bucket, key, dst_bucket)

        monkeypatch.setattr(store, "copy_object", failing_copy)
        resp = svc.client.post("/api/buckets/fragile/rename?wait=true", json={"new_name": "sturdy"})
        assert resp.status_code == 409
        assert "disk full" in resp.json()["detail"]
        state = svc.client.get("/api/buckets/fragile/rename").json()
        assert state["phase"] == "rolled_back"
        names = [b["name"] for b in svc.client.get("/api/buckets").json()]
        assert "sturdy" not in names and "fragile" in names
        assert _contents(svc, "fragile", list(bodies)) == bodies
        # The bucket is usable again, and a second attempt succeeds.
        monkeypatch.setattr(store, "copy_object", original_copy)
        assert (
            svc.client.put("/api/buckets/fragile/objects/new.bin", content=b"n").status_code == 201
        )
        resp = svc.client.post("/api/buckets/fragile/rename?wait=true", json={"new_name": "sturdy"})
        assert resp.status_code == 200
        assert _contents(svc, "sturdy", [*bodies, "new.bin"]) == {**bodies, "new.bin": b"n"}
