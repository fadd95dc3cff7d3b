"""The platform's NATS config (deploy/nats/nats.conf) on a real nats-server, with the passwords
lakewire.platform_secrets generates: anonymous clients are refused, each service can do its job
through the project's own code (init creates the stream, storage publishes through the outbox
path, Dagster reads the stream), and no one but init can purge or delete the stream.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest
from nats.errors import Error as NatsError

from lakehouse.settings import Settings
from lakewire import platform_init
from lakewire.platform_secrets import NATS_USERS, ensure_secrets
from storage_service.events import OBJECT_CREATED_PUT, BucketEvent
from storage_service.stream import publish_events, read_after_sync
from tests.helpers import BIN, _connectable, free_port, wait_for

CONF = Path(__file__).parent.parent / "deploy" / "nats" / "nats.conf"


def _url_for(secrets: Path, service: str, port: int) -> str:
    url = (secrets / service / "lakewire_nats_url").read_text()
    assert url.startswith(f"nats://{service}:") and url.endswith("@nats:4222")
    return url.replace("@nats:4222", f"@127.0.0.1:{port}")


@pytest.fixture
def authed_nats(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    secrets = tmp_path / "secrets"
    ensure_secrets(secrets, chown=False)
    env = dict(os.environ)
    for user in NATS_USERS:
        env[f"NATS_{user.upper()}_PASSWORD"] = (
            secrets / "nats" / f"nats_{user}_password"
        ).read_text()
    port = free_port()
    # The compose command line, with a free port, no monitoring port and a temp store.
    proc = subprocess.Popen(
        [
            str(BIN / "nats-server"),
            "-c",
            str(CONF),
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            str(port),
            "-m",
            "0",
            "-sd",
            str(tmp_path / "js"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _connectable(port), timeout=10, what="nats-server with nats.conf")
        yield port, secrets
    finally:
        proc.terminate()
        proc.wait(10)


def _event(i: int) -> BucketEvent:
    return BucketEvent(
        OBJECT_CREATED_PUT,
        "landing",
        f"orders/{i}.csv",
        10,
        "e" * 32,
        f"{i:016X}",
        datetime.now(UTC),
    )


def test_nats_users_can_do_their_jobs_and_nothing_destructive(
    tmp_path: Path, authed_nats: tuple[int, Path]
) -> None:
    port, secrets = authed_nats

    async def anonymous() -> None:
        nc = await nats.connect(
            f"nats://127.0.0.1:{port}", allow_reconnect=False, max_reconnect_attempts=1
        )
        await nc.close()

    with pytest.raises(NatsError):
        asyncio.run(anonymous())

    def settings(service: str) -> Settings:
        return Settings(data_dir=tmp_path / service, nats_url=_url_for(secrets, service, port))

    platform_init.ensure_event_stream(settings("init"))
    asyncio.run(publish_events(settings("storage"), [_event(i) for i in range(3)]))
    asyncio.run(publish_events(settings("storage"), [_event(0)]))  # same Nats-Msg-Id: dropped
    batch = read_after_sync(settings("dagster"), 0, 100, 10)
    assert [e.key for e in batch.events] == [f"orders/{i}.csv" for i in range(3)]

    async def purge(service: str) -> None:
        nc = await nats.connect(_url_for(secrets, service, port), allow_reconnect=False)
        try:
            await nc.jetstream().purge_stream("STORAGE_EVENTS")
        finally:
            await nc.close()

    for service in ("storage", "dagster"):
        with pytest.raises(Exception):  # noqa: B017 - a permissions violation or a timeout
            asyncio.run(purge(service))
    assert read_after_sync(settings("dagster"), 0, 100, 10).stream_last_seq == 3
