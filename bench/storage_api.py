"""Storage API: the HTTP service against direct object-store calls, and listings at 100k objects.

The service runs as ``lakewire up`` runs it (``python -m storage_service`` with the supervisor's
environment, a real nats-server), so the watcher, the outbox and the index are all live; the
direct side calls the same ``lakehouse.objectstore`` backend in this process.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx

from bench.results import Metric, Result, median
from lakehouse.objectstore import LocalObjectStore
from lakehouse.settings import Settings
from lakewire.supervisor import child_env
from tests.helpers import free_port, nats_server, wait_for

CHUNK = 8 * 1024**2
API_KEY_ENV = "LAKEWIRE_API_KEY"


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def run(work: Path, smoke: bool) -> Result:
    size = 8 * 1024**2 if smoke else 256 * 1024**2
    listed = 1_000 if smoke else 100_000
    reps = 1 if smoke else 3
    page_limit = 1000
    api_key = os.urandom(24).hex()
    with nats_server(work) as nats:
        settings = Settings(data_dir=work / "data", nats_url=nats.url, storage_port=free_port())
        # The embedded backend: the listing bucket below is filled through its folder.
        store = LocalObjectStore(settings.storage_root)
        for bucket in ("transfer", "browse"):
            store.create_bucket(bucket)
        # The listing bucket is filled on disk before the service starts, as a data dir
        # restored from a backup would be; the service's start-up scan indexes it.
        root = store.bucket_path("browse")
        t0 = time.perf_counter()
        for i in range(listed):
            (root / f"obj-{i:07d}.csv").write_bytes(b"id\n1\n")
        fill_s = time.perf_counter() - t0
        payload = work / "payload.bin"
        with payload.open("wb") as fh:
            block = os.urandom(CHUNK)
            for _ in range(size // CHUNK):
                fh.write(block)

        env = child_env(settings)
        env[API_KEY_ENV] = api_key
        log = (work / "storage-service.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "storage_service"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=work,
        )
        base = settings.storage_url
        headers = {"Authorization": f"Bearer {api_key}"}
        try:
            client = httpx.Client(base_url=base, headers=headers, timeout=300)
            t0 = time.perf_counter()
            wait_for(lambda: _ok(client, "/healthz"), 120, "storage service", 0.2)

            def indexed() -> bool:
                buckets = client.get("/api/buckets").json()
                n = next((b["objects"] for b in buckets if b["name"] == "browse"), 0)
                return n >= listed and client.get("/healthz").json().get("outbox") == 0

            wait_for(indexed, 900, f"{listed} objects indexed and announced", 1.0)
            index_s = time.perf_counter() - t0

            # curl is the headline client (C, so the number is the server's); httpx shows what
            # a Python client adds. The key goes in a header file, never on a command line.
            header_file = work / "auth.header"
            header_file.write_text(f"Authorization: Bearer {api_key}\n")
            header_file.chmod(0o600)
            up_api, up_direct, down_api, down_direct = [], [], [], []
            up_httpx, down_httpx = [], []
            for rep in range(reps):
                key = f"api/payload-{rep}.bin"
                url = f"{base}/api/buckets/transfer/objects/{quote(key)}"
                t = time.perf_counter()
                _curl(
                    "-T",
                    str(payload),
                    "-H",
                    "Expect:",
                    "-H",
                    f"@{header_file}",
                    "-o",
                    os.devnull,
                    url,
                )
                up_api.append(time.perf_counter() - t)
                _quiesce(client)

                t = time.perf_counter()
                resp = client.put(
                    f"/api/buckets/transfer/objects/{quote(key)}-httpx",
                    content=_file_chunks(payload),
                )
                resp.raise_for_status()
                up_httpx.append(time.perf_counter() - t)
                _quiesce(client)

                dkey = f"direct/payload-{rep}.bin"
                t = time.perf_counter()
                store.put("transfer", dkey, payload)
                up_direct.append(time.perf_counter() - t)
                _quiesce(client)

                t = time.perf_counter()
                got_s = _curl(
                    "-H", f"@{header_file}", "-o", os.devnull, "-w", "%{size_download}", url
                )
                down_api.append(time.perf_counter() - t)
                if int(float(got_s)) != size:
                    raise RuntimeError(f"API download returned {got_s} of {size} bytes")

                t = time.perf_counter()
                got = 0
                with client.stream("GET", f"/api/buckets/transfer/objects/{quote(key)}") as r:
                    r.raise_for_status()
                    for chunk in r.iter_bytes(CHUNK):
                        got += len(chunk)
                down_httpx.append(time.perf_counter() - t)
                if got != size:
                    raise RuntimeError(f"API download returned {got} of {size} bytes")

                t = time.perf_counter()
                got = sum(len(c) for c in store.get_stream("transfer", dkey, CHUNK))
                down_direct.append(time.perf_counter() - t)
                if got != size:
                    raise RuntimeError(f"direct read returned {got} of {size} bytes")

            list_times, first_page, mid_page = [], [], []
            middle = f"obj-{listed // 2:07d}.csv"
            for _ in range(5):
                t = time.perf_counter()
                client.get("/api/buckets").raise_for_status()
                list_times.append(time.perf_counter() - t)
                t = time.perf_counter()
                page = client.get(
                    "/api/buckets/browse/objects",
                    params={"prefix": "", "delimiter": "/", "limit": page_limit},
                )
                page.raise_for_status()
                first_page.append(time.perf_counter() - t)
                t = time.perf_counter()
                client.get(
                    "/api/buckets/browse/objects",
                    params={"prefix": "", "delimiter": "/", "limit": page_limit, "cursor": middle},
                ).raise_for_status()
                mid_page.append(time.perf_counter() - t)
            page_objects = len(page.json()["objects"])
            t = time.perf_counter()
            direct_page = store.list_page("browse", limit=page_limit)
            direct_page_s = time.perf_counter() - t
            client.close()
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()

    mb = size / 1e6
    result = Result(
        "storage_api",
        f"Storage API: {size / 1024**2:.0f} MiB up/down vs direct; "
        f"listings over {listed:,} objects",
        smoke,
        params={
            "object_bytes": size,
            "repetitions": reps,
            "listed_objects": listed,
            "page_limit": page_limit,
            "page_objects_returned": page_objects,
            "fill_s": round(fill_s, 1),
            "startup_index_s": round(index_s, 1),
            "direct": "lakehouse.objectstore LocalObjectStore put(Path) / get_stream in-process",
            "api": "curl -T / GET (headline) and httpx streaming, Bearer auth, to "
            "python -m storage_service",
        },
    )
    result.add(
        Metric(
            "upload_mb_per_s",
            _mb_per_s(mb, up_api),
            "MB/s",
            _mb_per_s(mb, up_direct),
            "direct put MB/s",
            note="curl client",
        ),
        Metric(
            "download_mb_per_s",
            _mb_per_s(mb, down_api),
            "MB/s",
            _mb_per_s(mb, down_direct),
            "direct read MB/s",
            note="curl client",
        ),
        Metric(
            "upload_httpx_mb_per_s",
            _mb_per_s(mb, up_httpx),
            "MB/s",
            _mb_per_s(mb, up_direct),
            "direct put MB/s",
            note="same API, Python httpx client",
        ),
        Metric(
            "download_httpx_mb_per_s",
            _mb_per_s(mb, down_httpx),
            "MB/s",
            _mb_per_s(mb, down_direct),
            "direct read MB/s",
            note="same API, Python httpx client",
        ),
        Metric("list_buckets_s", median(list_times), "s", note=f"max {max(list_times):.3f} s"),
        Metric(
            "browse_page_s",
            median(first_page),
            "s",
            direct_page_s,
            "direct list_page in-process",
            note=f"first page of {page_limit}",
        ),
        Metric("browse_middle_page_s", median(mid_page), "s", note="page after the 50% cursor"),
    )
    del direct_page
    return result


def _mb_per_s(mb: float, seconds: list[float]) -> float:
    return mb / statistics.median(seconds)


def _curl(*args: str) -> str:
    proc = subprocess.run(
        ["curl", "-sS", "--fail", *args], capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        raise RuntimeError(f"curl failed: {proc.stderr.strip()[:500]}")
    return proc.stdout


def _ok(client: httpx.Client, path: str) -> bool:
    try:
        return client.get(path).status_code == 200
    except httpx.HTTPError:
        return False


def _quiesce(client: httpx.Client) -> None:
    """Let the watcher hash and announce the last write before the next timing starts."""
    time.sleep(0.5)
    wait_for(lambda: client.get("/healthz").json().get("outbox") == 0, 60, "outbox drained", 0.2)
