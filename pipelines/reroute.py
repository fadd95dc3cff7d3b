"""Re-route what went to the wrong table: re-drive objects through a named route, and take
their rows out of the table they wrongly landed in.

Each target table gets one Dagster run of ``ingest_job`` (its logs and materialization on
the asset page like any ingestion). The run first ingests the objects into the route's table
(the ledger skips what is there already), then deletes from the wrong table the rows of exactly
the objects now in the right one, by their lineage (``_source_uri``), recording the removals in
that table's ledger. Rows are never in neither table, and a repeat of the same re-route changes
nothing: it moves each object's rows once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from dagster import DagsterInstance

from lakehouse.objectstore import ObjectStore
from lakehouse.routes import RoutesError, route_named, settings_routes
from lakehouse.settings import Settings
from lakehouse.tables import TableRef
from pipelines.jobs import ingest_job
from pipelines.reconcile import object_event
from pipelines.resources import LakewireResource


@dataclass
class RerouteRun:
    table: str
    run_id: str
    success: bool
    objects: int


@dataclass
class RerouteResult:
    runs: list[RerouteRun] = field(default_factory=list)


def reroute(
    settings: Settings,
    store: ObjectStore,
    instance: DagsterInstance,
    bucket: str,
    prefix: str,
    route_name: str,
    remove_from: str | None = None,
) -> RerouteResult:
    """Ingest every object under ``bucket/prefix`` through ``route_name``; with
    ``remove_from``, delete their rows from that table in the same run."""
    route = route_named(settings_routes(settings), route_name)
    if route.bucket != bucket:
        raise RoutesError(f"route '{route_name}' reads bucket '{route.bucket}', not '{bucket}'")
    wrong = TableRef.parse(remove_from).qualified if remove_from else ""
    by_table: dict[str, list[dict[str, object]]] = defaultdict(list)
    for info in store.iter_objects(bucket, prefix):
        if not route.matches(bucket, info.key):
            continue
        ev = object_event(store, bucket, info, "lakewire-reroute")
        table = route.table_for(info.key).qualified
        by_table[table].append(
            {
                "bucket": bucket,
                "key": ev.key,
                "etag": ev.etag,
                "sequencer": ev.sequencer,
                "size": ev.size,
            }
        )
    result = RerouteResult()
    for table, objects in sorted(by_table.items()):
        if table == wrong:
            raise RoutesError(f"route '{route_name}' writes {table}: nothing to move it from")
        config = {"route": route.name, "table": table, "objects": objects, "remove_from": wrong}
        run = ingest_job.execute_in_process(
            run_config={"ops": {"ingest_objects": {"config": config}}},
            instance=instance,
            resources={"lakewire": LakewireResource()},
            tags={
                "lakewire/table": table,
                "lakewire/route": route.name,
                "lakewire/objects": str(len(objects)),
                "lakewire/reroute_from": wrong or "-",
            },
            raise_on_error=False,
        )
        result.runs.append(RerouteRun(table, run.run_id, run.success, len(objects)))
    return result
