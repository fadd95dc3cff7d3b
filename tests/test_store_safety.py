"""Store safety (issue 8): each numbered finding as a test against the running service.

Concurrency tests use real threads against a real uvicorn server on loopback, repeated until
the race would show (the rename race showed in 5 of 70 tries before the fix). Afterwards every
acknowledged object must be readable with the etag of its bytes, and no bucket may reappear.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from lakehouse.objectstore import ObjectStore, open_object_store
from lakehouse.settings import Settings
from storage_service.app import create_app
from storage_service.runtime import ServiceRuntime
from tests.helpers import API_KEY, NatsServer, free_port, local_settings, wait_for

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class Live:
    """The service under uvicorn in a thread: real HTTP, real concurrency."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = settings.storage_port
        self.app = create_app(settings)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def runtime(self) -> ServiceRuntime:
        runtime: ServiceRuntime = self.app.state.runtime
        return runtime

    @property
    def store(self) -> ObjectStore:
        return self.runtime.store

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=AUTH, timeout=60)

    def put(self, bucket: str, key: str, body: Any) -> httpx.Response:
        with self.client() as c:
            return c.put(f"/api/buckets/{bucket}/objects/{key}", content=body)

    def create(self, bucket: str) -> None:
        with self.client() as c:
            assert c.post("/api/buckets", json={"name": bucket}).status_code == 201


@contextmanager
def live_service(settings: Settings) -> Iterator[Live]:
    live = Live(settings)
    live.thread.start()
    wait_for(lambda: live.server.started or None, 30, "uvicorn started", 0.05)
    try:
        yield live
    finally:
        live.server.should_exit = True
        live.thread.join(30)


@pytest.fixture
def live(tmp_path: Path, nats: NatsServer) -> Iterator[Live]:
    with live_service(local_settings(tmp_path, nats, storage_port=free_port())) as svc:
        yield svc


def _readable_with_etag(live: Live, bucket: str, key: str, body: bytes) -> None:
    with live.client() as c:
        got = c.get(f"/api/buckets/{bucket}/objects/{key}")
    assert got.status_code == 200, (bucket, key, got.text)
    assert got.content == body
    assert got.headers["etag"].strip('"') == md5(body)


# -- 1. two renames at once ------------------------------------------------------------------
def test_two_concurrent_renames_one_wins_and_nothing_is_lost(live: Live) -> None:
    bodies = {f"k{i}.csv": os.urandom(2000 + i) for i in range(5)}
    for trial in range(40):
        src, a, b = f"src-{trial}", f"left-{trial}", f"right-{trial}"
        live.create(src)
        for key, body in bodies.items():
            assert live.put(src, key, body).status_code == 201
        barrier = threading.Barrier(2)

        def rename(target: str, barrier: threading.Barrier = barrier, src: str = src) -> int:
            with live.client() as c:
                barrier.wait()
                resp = c.post(f"/api/buckets/{src}/rename", json={"new_name": target})
                return resp.status_code

        with ThreadPoolExecutor(2) as pool:
            codes = list(pool.map(rename, [a, b]))
        # Exactly one is accepted; the other is refused while the first runs (409), or finds
        # the source already renamed away (404) when the first finished that fast.
        assert codes.count(202) == 1 and set(codes) - {202} <= {404, 409}, codes
        winner, loser = (a, b) if codes[0] == 202 else (b, a)
        state = live.runtime.renamer.wait(src, 60)
        assert state is not None and state.phase == "done", state
        for key, body in bodies.items():
            _readable_with_etag(live, winner, key, body)
        assert not live.store.bucket_exists(src)
        assert not live.store.bucket_exists(loser)


def test_a_name_reserved_by_a_rename_cannot_be_created_or_taken(live: Live) -> None:
    live.create("busy-src")
    for i in range(20):
        assert live.put("busy-src", f"f{i}.bin", os.urandom(50_000)).status_code == 201
    with live.client() as c:
        assert c.post("/api/buckets/busy-src/rename", json={"new_name": "busy-dst"}).status_code
        created = c.post("/api/buckets", json={"name": "busy-dst"})
        other = c.post("/api/buckets/busy-src/rename", json={"new_name": "elsewhere"})
    state = live.runtime.renamer.wait("busy-src", 60)
    assert state is not None and state.phase == "done"
    # The create either lost to the reservation (409), or the rename was already done and
    # the name taken (409 too): never a second owner of the name.
    assert created.status_code == 409
    assert other.status_code in (404, 409)
    assert len(live.store.list_page("busy-dst").objects) == 20


# -- 2. upload racing a delete or a rename -----------------------------------------------------
class HeldBody:
    """A request body that sends its first part, then waits until released: an upload that is
    certainly in flight, without guessing at timing."""

    def __init__(self, first: bytes, rest: bytes) -> None:
        self.first, self.rest = first, rest
        self.started = threading.Event()
        self.release = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        yield self.first
        self.started.set()
        assert self.release.wait(60)
        yield self.rest


@pytest.mark.parametrize("action", ["delete", "rename"])
def test_bucket_with_an_upload_in_flight_is_not_deleted_or_renamed(live: Live, action: str) -> None:
    live.create("inflight")
    body = HeldBody(b"a" * 70_000, b"b" * 70_000)
    with ThreadPoolExecutor(1) as pool:
        upload = pool.submit(live.put, "inflight", "held.bin", body)
        assert body.started.wait(30)
        # In flight on the server's side too: it holds the bucket's gate as a writer.
        wait_for(lambda: live.runtime.gate.writers("inflight") or None, 30, "upload in flight")
        with live.client() as c:
            if action == "delete":
                resp = c.delete("/api/buckets/inflight", params={"confirm": "inflight"})
            else:
                resp = c.post("/api/buckets/inflight/rename", json={"new_name": "moved"})
        assert resp.status_code == 409, resp.text
        assert "in flight" in resp.json()["detail"]
        body.release.set()
        assert upload.result(60).status_code == 201
    _readable_with_etag(live, "inflight", "held.bin", body.first + body.rest)
    assert not live.store.bucket_exists("moved")


@pytest.mark.parametrize("action", ["delete", "rename"])
def test_uploads_racing_delete_or_rename_never_outlive_their_bucket(
    live: Live, action: str
) -> None:
    for trial in range(10):
        bucket, target = f"race-{trial}", f"raced-{trial}"
        live.create(bucket)
        stop = threading.Event()
        acked: list[tuple[str, bytes]] = []

        def writer(
            n: int,
            bucket: str = bucket,
            stop: threading.Event = stop,
            acked: list[tuple[str, bytes]] = acked,
        ) -> None:
            with live.client() as c:
                for i in range(60):
                    if stop.is_set():
                        return
                    key, body = f"w{n}/o{i}.bin", os.urandom(1000 + i)
                    resp = c.put(f"/api/buckets/{bucket}/objects/{key}", content=body)
                    if resp.status_code == 201:
                        acked.append((key, body))
                    else:  # refused while the bucket is held, or gone after it: never a 5xx
                        assert resp.status_code in (404, 409), resp.text

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        started = acked  # bound now: the loop rebinds ``acked`` next trial

        def some_acked(started: list[tuple[str, bytes]] = started) -> bool | None:
            return len(started) >= 3 or None

        wait_for(some_acked, 30, "uploads acknowledged", 0.01)
        # Retried until the writers leave a gap; each refusal is an immediate 409.
        with live.client() as c:
            while True:
                if action == "delete":
                    resp = c.delete(f"/api/buckets/{bucket}", params={"confirm": bucket})
                else:
                    resp = c.post(f"/api/buckets/{bucket}/rename", json={"new_name": target})
                if resp.status_code != 409:
                    break
        assert resp.status_code in (202, 204), resp.text
        if action == "rename":
            state = live.runtime.renamer.wait(bucket, 60)
            assert state is not None and state.phase == "done", state
        stop.set()
        for t in threads:
            t.join(60)
        # The old bucket never comes back, neither in the store nor on disk.
        assert not live.store.bucket_exists(bucket)
        assert not (live.settings.storage_root / bucket).exists()
        if action == "rename":
            for key, body in acked:
                _readable_with_etag(live, target, key, body)


# -- 3. concurrent uploads of one key ----------------------------------------------------------
def test_concurrent_uploads_of_one_key_report_the_etag_of_the_stored_bytes(live: Live) -> None:
    live.create("same-key")
    for trial in range(20):
        key = f"t{trial}.bin"
        bodies = [os.urandom(100_000 + 7919 * i) for i in range(8)]
        barrier = threading.Barrier(8)

        def put(body: bytes, key: str = key, barrier: threading.Barrier = barrier) -> str:
            with live.client() as c:
                barrier.wait()
                resp = c.put(f"/api/buckets/same-key/objects/{key}", content=body)
            assert resp.status_code == 201
            return str(resp.json()["etag"])

        with ThreadPoolExecutor(8) as pool:
            etags = list(pool.map(put, bodies))
        assert etags == [md5(b) for b in bodies]  # each answer describes its own bytes
        with live.client() as c:
            got = c.get(f"/api/buckets/same-key/objects/{key}")
            listed = c.get("/api/buckets/same-key/objects", params={"prefix": key}).json()
        assert got.headers["etag"].strip('"') == md5(got.content)
        assert got.content in bodies
        assert listed["objects"][0]["etag"] == md5(got.content)
        # The event path (the watcher's index) ends on the etag of the stored bytes too.
        final = md5(got.content)

        def indexed_final(key: str = key, final: str = final) -> bool | None:
            entry = live.runtime.index.get("same-key", key)
            return (entry is not None and entry.etag == final) or None

        wait_for(indexed_final, 20, "index etag of the final bytes")


# -- 4. a download racing an overwrite ---------------------------------------------------------
def test_download_racing_overwrites_is_one_whole_version(live: Live) -> None:
    live.create("flip")
    versions = [b"a" * 1_500_000, b"bb" * 2_500_000, b"c" * 10]
    assert live.put("flip", "x.bin", versions[0]).status_code == 201
    stop = threading.Event()

    def overwrite() -> None:
        with live.client() as c:
            i = 0
            while not stop.is_set():
                i += 1
                c.put("/api/buckets/flip/objects/x.bin", content=versions[i % 3])

    writer = threading.Thread(target=overwrite)
    writer.start()
    try:
        with live.client() as c:
            for _ in range(150):
                resp = c.get("/api/buckets/flip/objects/x.bin")
                assert resp.status_code == 200
                assert len(resp.content) == int(resp.headers["content-length"])
                assert resp.content in versions
                assert resp.headers["etag"].strip('"') == md5(resp.content)
    finally:
        stop.set()
        writer.join(60)


# -- 6. listing never escapes the bucket --------------------------------------------------------
@pytest.mark.parametrize("prefix", ["../", "../../", "../../etc/", "a/../../", "./", "a//b"])
def test_listing_prefix_cannot_leave_the_bucket(live: Live, prefix: str) -> None:
    with live.client() as c:
        for delimiter in ("/", "-", ""):
            resp = c.get(
                "/api/buckets/datasets/objects",
                params={"prefix": prefix, "delimiter": delimiter},
            )
            # Always 422, whether or not such a host folder exists: no existence oracle.
            assert resp.status_code == 422, (prefix, delimiter, resp.text)
            assert "prefix" in resp.json()["detail"]


# -- 7. links inside a bucket folder are never followed ----------------------------------------
def test_symlinks_in_a_bucket_folder_are_not_objects(live: Live, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text("host secret")
    bucket_dir = live.settings.storage_root / "datasets"
    (bucket_dir / "link.txt").symlink_to(secret)
    (bucket_dir / "linkdir").symlink_to(outside, target_is_directory=True)
    with live.client() as c:
        for key in ("link.txt", "linkdir/secret.txt"):
            assert c.get(f"/api/buckets/datasets/objects/{key}").status_code == 404
            assert c.head(f"/api/buckets/datasets/objects/{key}").status_code == 404
            c.delete(f"/api/buckets/datasets/objects/{key}")
        put = c.put("/api/buckets/datasets/objects/linkdir/new.txt", content=b"escape")
        assert put.status_code == 409, put.text
        listed = c.get("/api/buckets/datasets/objects", params={"delimiter": ""}).json()
        prefixed = c.get("/api/buckets/datasets/objects", params={"prefix": "linkdir/"}).json()
    assert secret.read_text() == "host secret"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert [o["key"] for o in listed["objects"]] == []
    assert prefixed["objects"] == [] and prefixed["folders"] == []


# -- 8. odd keys are a 4xx with a message, or work ----------------------------------------------
@pytest.mark.parametrize(
    "key",
    ["tab\there.csv", "del\x7fete.csv", "x" * 256 + ".csv", "é" * 511 + "/a", ".hidden.csv"],
    ids=["tab", "del", "long-segment", "multibyte-1024", "hidden"],
)
def test_odd_keys_are_refused_with_a_message(live: Live, key: str) -> None:
    from urllib.parse import quote

    with live.client() as c:
        resp = c.put(f"/api/buckets/datasets/objects/{quote(key)}", content=b"1")
        assert resp.status_code == 422, resp.text
        assert resp.json()["detail"]
        assert c.get(f"/api/buckets/datasets/objects/{quote(key)}").status_code == 422


def test_non_latin1_names_download_with_rfc6266_filename(live: Live) -> None:
    key = "報告/データ €.csv"
    assert live.put("datasets", key, b"1,2\n").status_code == 201
    with live.client() as c:
        link = c.post("/api/buckets/datasets/presign", json={"key": key}).json()["url"]
        resp = httpx.get(link)
    assert resp.status_code == 200 and resp.content == b"1,2\n"
    disposition = resp.headers["content-disposition"]
    assert "filename*=UTF-8''%E3%83%87%E3%83%BC%E3%82%BF%20%E2%82%AC.csv" in disposition


# -- 9. the smaller findings ---------------------------------------------------------------------
def test_aborted_upload_leaves_no_folder_behind(live: Live) -> None:
    with socket.create_connection(("127.0.0.1", live.port)) as sock:
        sock.sendall(
            b"PUT /api/buckets/datasets/objects/deep/er/file.bin HTTP/1.1\r\n"
            + f"Host: x\r\nAuthorization: Bearer {API_KEY}\r\n".encode()
            + b"Content-Length: 100000\r\n\r\n"
            + b"z" * 1000
        )
        wait_for(
            lambda: (live.settings.storage_root / "datasets" / "deep").exists() or None,
            10,
            "the upload started",
            0.01,
        )
    wait_for(
        lambda: not (live.settings.storage_root / "datasets" / "deep").exists() or None,
        10,
        "the aborted upload's folders removed",
        0.05,
    )
    assert live.put("datasets", "deep", b"a file named like the folder").status_code == 201


def test_range_outside_the_object_is_416_with_content_range(live: Live) -> None:
    live.put("datasets", "r.bin", b"0123456789")
    with live.client() as c:
        resp = c.get("/api/buckets/datasets/objects/r.bin", headers={"Range": "bytes=50-60"})
    assert resp.status_code == 416
    assert resp.headers["content-range"] == "bytes */10"


def test_presigned_links_use_the_configured_public_url(tmp_path: Path, nats: NatsServer) -> None:
    settings = local_settings(
        tmp_path, nats, public_url="https://storage.example.test/", storage_port=free_port()
    )
    with live_service(settings) as svc:
        svc.put("datasets", "p.csv", b"1")
        with svc.client() as c:
            resp = c.post(
                "/api/buckets/datasets/presign",
                json={"key": "p.csv"},
                headers={"Host": "attacker.example"},
            )
    assert resp.json()["url"].startswith("https://storage.example.test/presigned/datasets/p.csv?")


def test_short_api_key_is_refused_at_start_without_echoing_it() -> None:
    from pydantic import SecretStr, ValidationError

    with pytest.raises(ValidationError) as err:
        Settings(api_key=SecretStr("too-short-a-key"))
    assert "at least 24 characters" in str(err.value)
    assert "too-short-a-key" not in str(err.value)


@pytest.mark.parametrize("name", ["xn--abc", "data-s3alias", "sthree-x", "abc--ol-s3"])
def test_bucket_names_s3_refuses_are_refused(live: Live, name: str) -> None:
    with live.client() as c:
        resp = c.post("/api/buckets", json={"name": name})
    assert resp.status_code == 422
    assert "reserved by S3" in resp.json()["detail"]


def test_bucket_stats_follow_a_put_at_once(live: Live) -> None:
    with live.client() as c:
        before = {b["name"]: b["objects"] for b in c.get("/api/buckets").json()}["results"]
        assert c.put("/api/buckets/results/objects/now.csv", content=b"1").status_code == 201
        after = {b["name"]: b["objects"] for b in c.get("/api/buckets").json()}["results"]
    assert after == before + 1


def test_uploads_beyond_the_limit_get_503_with_retry_after(
    tmp_path: Path, nats: NatsServer
) -> None:
    settings = local_settings(tmp_path, nats, max_concurrent_uploads=1, storage_port=free_port())
    with live_service(settings) as svc:
        body = HeldBody(b"a" * 70_000, b"b")
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(svc.put, "datasets", "slow.bin", body)
            assert body.started.wait(30)
            # The server holds the one upload slot (not just the client having sent bytes).
            wait_for(lambda: svc.runtime.uploads.locked() or None, 30, "the slot taken", 0.01)
            second = svc.put("datasets", "fast.bin", b"x")
            body.release.set()
            assert first.result(60).status_code == 201
        assert second.status_code == 503
        assert second.headers["retry-after"] == "1"
        assert svc.put("datasets", "fast.bin", b"x").status_code == 201


# -- 5. a long key is quarantined like any other, and its batch commits ------------------------
def test_bad_object_with_a_near_limit_key_is_quarantined_and_the_batch_commits(
    tmp_path: Path, settings: Settings
) -> None:
    from lakehouse.quarantine import find_quarantined, list_quarantined
    from lakehouse.routes import load_routes
    from pipelines.ingestion import ingest_batch
    from tests.helpers import csv_bytes, land

    routes = tmp_path / "routes.yaml"
    routes.write_text('routes:\n  - name: orders\n    glob: "orders/**"\n    table: sales.orders\n')
    settings = settings.model_copy(update={"routes_file": routes})
    store = open_object_store(settings)
    for bucket in ("landing", "lake"):
        store.create_bucket(bucket)
    route = load_routes(settings.routes_file)[0]
    # 1,010 bytes: a valid key, too long once "quarantine/" and ".reason.json" are added;
    # its last segment (250 bytes) too long locally once ".reason.json" is added.
    long_key = "orders/" + ("d" * 250 + "/") * 3 + "b" * 246 + ".csv"
    assert len(long_key.encode()) == 1010
    good = land(store, "landing", "orders/good.csv", csv_bytes(10))
    bad = land(store, "landing", long_key, b"")  # empty: always quarantined
    report = ingest_batch(
        settings, store, route.table_for("orders/good.csv"), [good, bad], "run-long", route=route
    )
    assert report.rows == 10 and report.ingested == [good.uri]
    record = find_quarantined(settings, store, "landing", long_key)
    assert record is not None and record.key == long_key and record.kind == "empty"
    assert [r.key for r in list_quarantined(settings, store, "landing")] == [long_key]


def test_a_trailing_newline_in_a_key_is_refused_not_stored_under_another_key(live: Live) -> None:
    with live.client() as c:
        resp = c.put("/api/buckets/datasets/objects/nl%0A", content=b"1")
        assert resp.status_code == 422, resp.text
        assert c.get("/api/buckets/datasets/objects/nl").status_code == 404


def test_the_system_bucket_is_not_deleted_renamed_or_written_as_a_bucket(live: Live) -> None:
    assert live.store.bucket_exists("lakewire-system")  # seeded with the routes at start
    with live.client() as c:
        gone = c.delete("/api/buckets/lakewire-system", params={"confirm": "lakewire-system"})
        moved = c.post("/api/buckets/lakewire-system/rename", json={"new_name": "mine"})
        taken = c.post("/api/buckets/datasets/rename", json={"new_name": "lakewire-system"})
        put = c.put("/api/buckets/lakewire-system/objects/routes/versions/9.json", content=b"{}")
    assert [r.status_code for r in (gone, moved, taken, put)] == [403, 403, 403, 403]
    assert live.store.bucket_exists("lakewire-system") and live.store.bucket_exists("datasets")


def test_the_system_bucket_is_not_listed_among_the_users_buckets(live: Live) -> None:
    with live.client() as c:
        names = [b["name"] for b in c.get("/api/buckets").json()]
        total = c.get("/api/summary").json()["total_buckets"]
    assert "lakewire-system" not in names and total == len(names)
