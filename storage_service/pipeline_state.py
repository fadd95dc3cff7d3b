"""What the ingestion side reports about itself, read from Dagster's GraphQL API and JetStream:
the event sensor's cursor against the stream's tail (its consumer lag) and the outcomes of the
ingestion runs per table. ``GET /metrics`` exports them and ``lakewire status`` shows them;
both read them here, so the two never disagree on what "lag" means.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from nats.js.errors import NotFoundError

from lakehouse.settings import Settings
from storage_service.stream import connect, parse_cursor

SENSOR_NAME = "bucket_events"
TABLE_TAG = "lakewire/table"
# Run statuses an ingestion run ends in (counters), and the ones it waits or works in (gauges).
FINISHED = ("SUCCESS", "FAILURE", "CANCELED")

SENSOR_CURSOR_QUERY = """{ repositoriesOrError { ... on RepositoryConnection { nodes { sensors {
  name sensorState { typeSpecificData { ... on SensorData { lastCursor } } } } } } } }"""

TABLES_QUERY = """{ runTagsOrError(tagKeys: ["lakewire/table"]) {
  ... on RunTags { tags { key values } } } }"""


def graphql(
    settings: Settings, query: str, variables: dict[str, Any] | None = None, timeout: float = 3.0
) -> Any:
    resp = httpx.post(
        f"{settings.dagster_url}/graphql",
        json={"query": query, "variables": variables or {}},
        timeout=timeout,
    )
    resp.raise_for_status()
    body = resp.json()
    if body.get("errors"):
        raise ValueError(body["errors"][0].get("message", "GraphQL error"))
    return body["data"]


def sensor_cursor(settings: Settings, timeout: float = 3.0) -> int | None:
    """The stream sequence the ingestion sensor has read up to (``None``: no such sensor)."""
    data = graphql(settings, SENSOR_CURSOR_QUERY, timeout=timeout)
    for repo in data["repositoriesOrError"].get("nodes") or []:
        for sensor in repo["sensors"]:
            if sensor["name"] == SENSOR_NAME:
                cursor = (sensor["sensorState"]["typeSpecificData"] or {}).get("lastCursor")
                return parse_cursor(cursor)[0]
    return None


async def _stream_tail(settings: Settings) -> int | None:
    async with connect(settings, timeout=2.0) as nc:
        try:
            info = await nc.jetstream().stream_info(settings.stream_name)
        except NotFoundError:  # no stream (yet): nothing has been published
            return None
        return int(info.state.last_seq)


def stream_tail(settings: Settings) -> int | None:
    """The stream's last sequence; raises when NATS cannot be reached."""
    return asyncio.run(_stream_tail(settings))


def run_counts_by_table(settings: Settings, timeout: float = 3.0) -> dict[tuple[str, str], int]:
    """``(table, status) -> runs`` for the ingestion runs that finished, from run storage (so
    they only grow, as Prometheus counters must, until runs are deleted)."""
    tags = graphql(settings, TABLES_QUERY, timeout=timeout)["runTagsOrError"].get("tags") or []
    tables = sorted({v for t in tags if t["key"] == TABLE_TAG for v in t["values"]})
    if not tables:
        return {}
    parts, names = [], {}
    for i, table in enumerate(tables):
        for status in FINISHED:
            alias = f"t{i}_{status.lower()}"
            names[alias] = (table, status)
            parts.append(
                f'{alias}: runsOrError(filter: {{tags: [{{key: "{TABLE_TAG}", value: '
                f"$t{i}}}], statuses: [{status}]}}) {{ ... on Runs {{ count }} }}"
            )
    params = ", ".join(f"$t{i}: String!" for i in range(len(tables)))
    query = f"query ({params}) {{ {' '.join(parts)} }}"
    data = graphql(settings, query, {f"t{i}": t for i, t in enumerate(tables)}, timeout=timeout)
    return {key: int((data.get(alias) or {}).get("count") or 0) for alias, key in names.items()}
