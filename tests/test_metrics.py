"""``GET /metrics``: Prometheus text from the app's own registry, behind the API key.

The burst test runs real threads against a real uvicorn server and scrapes while they upload.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from lakehouse.settings import Settings
from storage_service.app import create_app
from tests.helpers import API_KEY, NatsServer, Service, free_port, local_settings, wait_for

AUTH = {"Authorization": f"Bearer {API_KEY}"}
OBJECT_ROUTE = "/api/buckets/{name}/objects/{key}"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@contextmanager
def live_service(settings: Settings) -> Iterator[httpx.Client]:
    port = settings.storage_port
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started or None, 30, "uvicorn started", 0.05)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=AUTH, timeout=60) as c:
            yield c
    finally:
        server.should_exit = True
        thread.join(30)


def test_metrics_need_the_api_key_as_a_bearer_token(tmp_path: Path, nats: NatsServer) -> None:
    with Service(local_settings(tmp_path, nats)) as svc:
        raw = svc.client
        assert raw.get("/metrics", headers={"Authorization": ""}).status_code == 401
        assert raw.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        resp = raw.get("/metrics")
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/plain; version=")
        samples = parse(resp.text)
        assert ("lakewire_outbox_events", frozenset()) in samples
        assert ("lakewire_events_published_total", frozenset()) in samples


def test_routes_are_labelled_by_template_not_path(tmp_path: Path, nats: NatsServer) -> None:
    with Service(local_settings(tmp_path, nats)) as svc:
        c = svc.client
        for key in ("a.csv", "b/c.csv", "d.csv"):
            assert c.get(f"/api/buckets/landing/objects/{key}").status_code == 404
        assert c.get("/no/such/page").status_code == 404
        samples = parse(c.get("/metrics").text)
    assert value(
        samples, "lakewire_http_requests_total", method="GET", route=OBJECT_ROUTE, status="404"
    ) == (3)
    assert (
        value(
            samples, "lakewire_http_requests_total", method="GET", route="<unmatched>", status="404"
        )
        == 1
    )
    assert not any("a.csv" in str(labels) for _, labels in samples)


def test_two_apps_in_one_process_keep_their_own_counts(tmp_path: Path, nats: NatsServer) -> None:
    one = Service(local_settings(tmp_path / "one", nats))
    two = Service(local_settings(tmp_path / "two", nats))
    with one, two:
        for _ in range(3):
            one.client.get("/api/buckets")
        two.client.get("/api/buckets")
        first, second = (
            parse(one.client.get("/metrics").text),
            parse(two.client.get("/metrics").text),
        )
    count = "lakewire_http_requests_total"
    assert value(first, count, method="GET", route="/api/buckets", status="200") == 3
    assert value(second, count, method="GET", route="/api/buckets", status="200") == 1


def test_counters_move_during_an_upload_burst(tmp_path: Path, nats: NatsServer) -> None:
    settings = local_settings(tmp_path, nats, storage_port=free_port())
    threads, per_thread = 4, 10
    sizes = [1 + (i * 7919) % 200_000 for i in range(threads * per_thread)]
    with live_service(settings) as c:
        before = parse(c.get("/metrics").text)
        errors: list[str] = []
        scrapes: list[Samples] = []
        burst_done = threading.Event()

        def upload(t: int) -> None:
            with httpx.Client(base_url=c.base_url, headers=AUTH, timeout=60) as mine:
                for i in range(per_thread):
                    n = t * per_thread + i
                    resp = mine.put(
                        f"/api/buckets/landing/objects/burst/{n}.csv", content=b"x" * sizes[n]
                    )
                    if resp.status_code != 201:
                        errors.append(f"{n}: {resp.status_code} {resp.text}")

        def scrape() -> None:  # Prometheus scraping while the burst runs
            with httpx.Client(base_url=c.base_url, headers=AUTH, timeout=60) as mine:
                while not burst_done.is_set():
                    resp = mine.get("/metrics")
                    assert resp.status_code == 200
                    scrapes.append(parse(resp.text))

        scraper = threading.Thread(target=scrape)
        scraper.start()
        workers = [threading.Thread(target=upload, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        burst_done.set()
        scraper.join()
        assert not errors

        after = parse(c.get("/metrics").text)
        put = {"method": "PUT", "route": OBJECT_ROUTE}
        total = threads * per_thread

        def delta(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        assert delta("lakewire_http_requests_total", **put, status="201") == total
        assert delta("lakewire_http_request_duration_seconds_count", **put) == total
        assert delta("lakewire_http_received_bytes_total", route=OBJECT_ROUTE) == sum(sizes)
        assert delta("lakewire_http_sent_bytes_total", route=OBJECT_ROUTE) > 0  # the JSON answers

        # Scrapes during the burst saw the counter only go up, and at least one saw it mid-way.
        seen = [value(s, "lakewire_http_requests_total", **put, status="201") for s in scrapes]
        assert seen == sorted(seen)
        assert scrapes

        # The watcher indexes the objects and the publisher gets every event acked.
        def settled() -> Samples | None:
            now = parse(c.get("/metrics").text)
            published = value(now, "lakewire_events_published_total") - value(
                before, "lakewire_events_published_total"
            )
            indexed = value(now, "lakewire_bucket_objects", bucket="landing")
            if published >= total and indexed >= total and not value(now, "lakewire_outbox_events"):
                return now
            return None

        final = wait_for(settled, 60, "events published and objects indexed")
    assert value(final, "lakewire_bucket_bytes", bucket="landing") >= sum(sizes)
    assert value(final, "lakewire_stream_last_seq") >= total
    assert value(final, "lakewire_outbox_oldest_age_seconds") == 0
    assert value(final, "lakewire_events_publish_failures_total") == 0


def test_outbox_depth_age_and_failures_while_nats_is_away(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        nats_url=f"nats://127.0.0.1:{free_port()}",  # nothing listens there
        watch_settle_seconds=0.2,
        api_key=SecretStr(API_KEY),
    )
    with Service(settings) as svc:
        c = svc.client
        for n in range(3):
            assert c.put(f"/api/buckets/landing/objects/w/{n}.csv", content=b"1").status_code == 201

        def waiting() -> Samples | None:
            now = parse(c.get("/metrics").text)
            stuck = value(now, "lakewire_outbox_events") >= 3
            return now if stuck and value(now, "lakewire_events_publish_failures_total") else None

        samples = wait_for(waiting, 30, "events kept in the outbox")
        time.sleep(1.1)
        later = parse(c.get("/metrics").text)
    assert value(samples, "lakewire_events_published_total") == 0
    assert value(later, "lakewire_outbox_oldest_age_seconds") >= 1.0
    assert value(later, "lakewire_stream_last_seq") == 0


def test_the_ingestion_side_is_reported_down_not_as_zero_when_dagster_is_away(
    tmp_path: Path, nats: NatsServer
) -> None:
    """No Dagster on its port: ``lakewire_pipeline_up{part="dagster"}`` is 0 and there is no
    lag or run count to mistake for "all caught up"; the stream's tail is still there."""
    settings = local_settings(tmp_path, nats, dagster_port=free_port())
    with Service(settings) as svc:
        svc.client.put("/api/buckets/landing/objects/a/x.csv", content=b"id\n1\n")
        wait_for(lambda: svc.runtime.outbox.published >= 1, 30, "the event published", 0.05)
        samples = parse(svc.client.get("/metrics").text)
    assert value(samples, "lakewire_pipeline_up", part="dagster") == 0
    assert value(samples, "lakewire_pipeline_up", part="nats") == 1
    assert value(samples, "lakewire_stream_tail") >= 1
    names = {name for name, _ in samples}
    assert "lakewire_sensor_lag_events" not in names
    assert "lakewire_ingestion_runs_total" not in names
