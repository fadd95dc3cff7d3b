"""Fixtures for the Object Storage tests (no tests here): the service on either backend.

The S3 backend is exercised against moto's server mode (a real HTTP S3 endpoint), reset per
test so tests never see each other's buckets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from fastapi.testclient import TestClient

from lakehouse.settings import Settings
from storage_service.app import create_app
from storage_service.runtime import ServiceRuntime
from tests.helpers import NatsServer

API_KEY = "test-key-not-a-default"


def s3_settings(tmp_path: Path, nats: NatsServer, endpoint: str, **extra: object) -> Settings:
    httpx.post(f"{endpoint}/moto-api/reset")
    return Settings(
        data_dir=tmp_path / "data",
        nats_url=nats.url,
        storage_backend="s3",
        s3_endpoint=endpoint,
        s3_access_key="test",
        s3_secret_key="test",
        api_key=API_KEY,
        **extra,
    )


def local_settings(tmp_path: Path, nats: NatsServer, **extra: object) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        nats_url=nats.url,
        watch_settle_seconds=0.2,
        api_key=API_KEY,
        **extra,
    )


def boto(endpoint: str):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )


class Service:
    """A started service and an authenticated client for it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client = TestClient(create_app(settings))

    def __enter__(self) -> Service:
        self._client.__enter__()
        self.client.headers["Authorization"] = f"Bearer {API_KEY}"
        return self

    def __exit__(self, *exc: object) -> None:
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


@pytest.fixture(params=["local", "on_s3_moto"])
def make_settings(
    request: pytest.FixtureRequest, tmp_path: Path, nats: NatsServer
) -> Callable[..., Settings]:
    """Settings for the local backend and, as ``[on_s3_moto]``, for S3 via moto's server."""

    def make(**extra: object) -> Settings:
        if request.param == "local":
            return local_settings(tmp_path, nats, **extra)
        endpoint = request.getfixturevalue("moto_endpoint")
        return s3_settings(tmp_path, nats, endpoint, **extra)

    return make


@pytest.fixture
def service(make_settings: Callable[..., Settings]) -> Iterator[Service]:
    with Service(make_settings()) as svc:
        yield svc
