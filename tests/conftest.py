from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse.settings import Settings
from tests.helpers import NatsServer, Platform, nats_server, platform_env


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[NatsServer]:
    """A real nats-server with JetStream on a free port, store in the test's temp dir."""
    with nats_server(tmp_path) as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, nats: NatsServer) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        nats_url=nats.url,
        watch_settle_seconds=0.2,
    )


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The embedded platform started as `lakewire up --detach` does, own data dir and ports."""
    data_dir = tmp_path_factory.mktemp("platform")
    p = Platform(data_dir, platform_env(data_dir))
    p.lakewire("up", "--detach")
    try:
        yield p
    finally:
        p.lakewire("down", check=False)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 server mode, the S3 stand-in for MinIO; tests reset it before use."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
