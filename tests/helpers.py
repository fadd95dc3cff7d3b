"""Shared test helpers: free ports, a real nats-server, the embedded platform as a user runs it,
settings for either storage backend and the Object Storage service with a client.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from fastapi.testclient import TestClient
from pydantic import SecretStr

from lakehouse.settings import Settings
from storage_service.app import create_app
from storage_service.runtime import ServiceRuntime

if TYPE_CHECKING:
    from tests.s3servers import S3Server

BIN = Path(sys.executable).parent
T = TypeVar("T")
API_KEY = "test-key-not-a-default-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class NatsServer:
    store_dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        """(Re)start on the same port and store, as a restart in production would."""
        self.proc = subprocess.Popen(
            [
                str(BIN / "nats-server"),
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-sd",
                str(self.store_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: _connectable(self.port), timeout=10, what="nats-server")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


def _connectable(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


@contextlib.contextmanager
def nats_server(tmp: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp / "nats", free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_for(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.2) -> T:
    """Call ``check`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


@dataclass
class Platform:
    """A platform started exactly as `lakewire up --detach` starts it, with its own ports."""

    data_dir: Path
    env: dict[str, str]

    def lakewire(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(BIN / "lakewire"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"lakewire {args} failed: {proc.stdout}\n{proc.stderr}")
        return proc

    def sql(self, query: str) -> list[dict[str, Any]]:
        return json.loads(self.lakewire("sql", "--format", "json", query).stdout)

    def count(self, table: str) -> int | None:
        proc = self.lakewire(
            "sql", "--format", "json", f"SELECT count(*) AS n FROM {table}", check=False
        )
        if proc.returncode != 0:
            return None
        return json.loads(proc.stdout)[0]["n"]

    @property
    def dagster_url(self) -> str:
        return f"http://127.0.0.1:{self.env['LAKEWIRE_DAGSTER_PORT']}"

    @property
    def storage_url(self) -> str:
        return f"http://127.0.0.1:{self.env['LAKEWIRE_STORAGE_PORT']}"

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.env['LAKEWIRE_NATS_PORT']}"

    def runs(self) -> list[dict[str, Any]]:
        query = "{ runsOrError { ... on Runs { results { runId status tags { key value } } } } }"
        resp = httpx.post(f"{self.dagster_url}/graphql", json={"query": query}, timeout=10)
        return resp.json()["data"]["runsOrError"]["results"]

    def dagster_instance(self) -> Any:
        """The platform's Dagster instance, read in this process (its DAGSTER_HOME)."""
        from dagster import DagsterInstance

        os.environ["DAGSTER_HOME"] = str(self.data_dir / "dagster")
        try:
            return DagsterInstance.get()
        finally:
            del os.environ["DAGSTER_HOME"]

    def supervisorctl(self, *args: str) -> str:
        """The platform's own supervisord, as an operator would drive it."""
        conf = self.data_dir / "state" / "supervisord.conf"
        proc = subprocess.run(
            [str(BIN / "supervisorctl"), "-c", str(conf), *args],
            capture_output=True,
            text=True,
            timeout=90,
        )
        return proc.stdout + proc.stderr

    def ingest_runs(self) -> list[dict[str, Any]]:
        """Runs the event sensor requested (schedules such as the reconcile sweep start others)."""
        return [r for r in self.runs() if any(t["key"] == "lakewire/table" for t in r["tags"])]

    def sensor_ticks_since(self, since: float, sensor: str = "bucket_events") -> int:
        """Finished ticks of one sensor after a wall-clock time, as the daemon recorded them."""
        query = (
            "{ workspaceOrError { ... on Workspace { locationEntries { locationOrLoadError {"
            " ... on RepositoryLocation { repositories { sensors { name sensorState {"
            " ticks(limit: 50) { timestamp status } } } } } } } } } }"
        )
        resp = httpx.post(f"{self.dagster_url}/graphql", json={"query": query}, timeout=10)
        entries = resp.json()["data"]["workspaceOrError"]["locationEntries"]
        return sum(
            1
            for entry in entries
            for repo in (entry["locationOrLoadError"] or {}).get("repositories", [])
            for s in repo["sensors"]
            if s["name"] == sensor
            for tick in s["sensorState"]["ticks"]
            if tick["timestamp"] > since and tick["status"] != "STARTED"
        )

    def settled_runs(self) -> list[dict[str, Any]] | None:
        runs = self.runs()
        if any(r["status"] in ("QUEUED", "NOT_STARTED", "STARTING", "STARTED") for r in runs):
            return None
        return runs


def delete_stream(settings: Settings) -> None:
    """Delete the platform's JetStream stream, as an operator's mistake or a lost volume would."""
    import asyncio

    import nats

    async def delete() -> None:
        nc = await nats.connect(settings.effective_nats_url)
        try:
            await nc.jetstream().delete_stream(settings.stream_name)
        finally:
            await nc.close()

    asyncio.run(delete())


def platform_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEWIRE_", "DAGSTER_"))}
    env.update(
        LAKEWIRE_DATA_DIR=str(data_dir),
        LAKEWIRE_NATS_PORT=str(free_port()),
        LAKEWIRE_STORAGE_PORT=str(free_port()),
        LAKEWIRE_DAGSTER_PORT=str(free_port()),
    )
    env.update(extra)
    return env


def write_csv(path: Path, rows: int, start: int = 0, extra_col: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fh.write("id,amount,name" + (f",{extra_col}" if extra_col else "") + "\n")
        for i in range(start, start + rows):
            fh.write(f"{i},{i * 1.5},name {i}" + (",x" if extra_col else "") + "\n")
    return path


def land(store: Any, bucket: str, key: str, body: bytes) -> Any:
    """Put an object and return the SourceVersion its created event would carry (MD5 etag)."""
    import hashlib

    from lakehouse.tables import SourceVersion

    if not store.bucket_exists(bucket):
        store.create_bucket(bucket)
    info = store.put(bucket, key, body)
    seq = f"{int(info.last_modified.timestamp() * 1_000_000) * 1000:016X}"
    return SourceVersion(bucket, key, hashlib.md5(body, usedforsecurity=False).hexdigest(), seq)


def csv_bytes(rows: int, start: int = 0, extra_col: str | None = None) -> bytes:
    head = "id,amount,name" + (f",{extra_col}" if extra_col else "")
    lines = [
        f"{i},{i * 1.5},name {i}" + (",x" if extra_col else "") for i in range(start, start + rows)
    ]
    return ("\n".join([head, *lines]) + "\n").encode()


# -- the Object Storage service on either backend -----------------------------------------------
def local_settings(tmp_path: Path, nats: NatsServer, **extra: Any) -> Settings:
    """The local backend (a folder per bucket) in the test's temp dir."""
    return Settings(
        data_dir=tmp_path / "data",
        nats_url=nats.url,
        watch_settle_seconds=0.2,
        api_key=SecretStr(API_KEY),
        **extra,
    )


def s3_settings(tmp_path: Path, nats: NatsServer, s3: S3Server, **extra: Any) -> Settings:
    """The S3 backend on ``s3`` (the fixtures ``seaweed_s3``/``moto_s3`` hand it over empty)."""
    return Settings(
        data_dir=tmp_path / "data",
        nats_url=nats.url,
        storage_backend="s3",
        s3_endpoint=s3.endpoint,
        s3_access_key=SecretStr(s3.access_key),
        s3_secret_key=SecretStr(s3.secret_key),
        api_key=SecretStr(API_KEY),
        **extra,
    )


class Service:
    """A started Object Storage service (in-process) and a client that sends the API key."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client = TestClient(create_app(settings))

    def __enter__(self) -> Service:
        self._client.__enter__()
        self.client.headers["Authorization"] = f"Bearer {API_KEY}"
        return self

    def __exit__(self, *exc: Any) -> None:
        self._client.__exit__(*exc)

    @property
    def client(self) -> TestClient:
        return self._client

    @property
    def runtime(self) -> ServiceRuntime:
        return self._client.app.state.runtime  # type: ignore[attr-defined]

    @property
    def kind(self) -> str:
        return self.settings.storage_backend


@dataclass
class ServiceProcess:
    """The storage service in its own process, as `lakewire up` runs it."""

    url: str
    data_dir: Path
    env: dict[str, str]

    def client(self, timeout: float = 60) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=timeout
        )


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def service_process(tmp: Path, **env_extra: str) -> Iterator[ServiceProcess]:
    """A nats-server and the storage service (``python -m storage_service``) on free ports,
    data under ``tmp/data``; ``env`` points a ``lakewire`` command at them."""
    with nats_server(tmp) as nats:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEWIRE_")}
        env.update(
            LAKEWIRE_DATA_DIR=str(tmp / "data"),
            LAKEWIRE_STORAGE_PORT=str(port),
            LAKEWIRE_HOST="127.0.0.1",
            LAKEWIRE_NATS_URL=nats.url,
            LAKEWIRE_API_KEY=API_KEY,
            LAKEWIRE_WATCH_SETTLE_SECONDS="0.2",
            **env_extra,
        )
        proc = subprocess.Popen([sys.executable, "-m", "storage_service"], env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: _healthy(url), timeout=30, what="the storage service")
            yield ServiceProcess(url, tmp / "data", env)
        finally:
            proc.terminate()
            proc.wait(10)
