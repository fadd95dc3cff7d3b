"""The Dagster code location of Lakewire: table assets and checks, jobs, sensor, schedule."""

from __future__ import annotations

import logging

from dagster import DefaultScheduleStatus, Definitions, ScheduleDefinition

from lakehouse.objectstore import open_object_store
from lakehouse.routes import RoutesError, settings_routes
from lakehouse.settings import Settings
from lakehouse.tables import TableRef
from pipelines import run_logs
from pipelines.ais_pipeline import ais_assets
from pipelines.assets import (
    asset_key,
    build_quarantine_checks,
    build_trino_checks,
    existing_tables,
    table_assets,
    table_routes,
)
from pipelines.co2_pipeline import co2_assets
from pipelines.io_managers import storage_io_managers
from pipelines.jobs import ingest_job, reconcile_job
from pipelines.lifecycle import build_rules_sensor, lifecycle_job, lifecycle_schedules
from pipelines.maintenance import maintenance_job, maintenance_schedules
from pipelines.resources import LakewireResource
from pipelines.sensors import build_event_sensor
from pipelines.user_modules import asset_keys, load_user_modules, merge_user_modules

log = logging.getLogger(__name__)


def build_definitions(settings: Settings) -> Definitions:
    try:
        routes = settings_routes(settings)
    except RoutesError as exc:
        # Keep the code location up: the sensor's ticks fail with this reason (keeping their
        # cursor, so no event is skipped) until the file is fixed; tables re-appear on reload.
        log.error("%s", exc)
        routes = []
    existing: list[TableRef] = []
    try:
        patterns = {r.format for r in routes if r.is_pattern}
        if patterns:
            existing = existing_tables(settings, open_object_store(settings), patterns)
    except Exception as exc:  # the store may be down at load; tables appear at the next reload
        log.warning("could not list existing tables: %s", exc)
    user = load_user_modules(settings.pipeline_modules)
    # A table a pipeline computes (the example's summary, a user's) is that pipeline's asset,
    # not a second one declared because its Delta log exists.
    examples = [*co2_assets, *ais_assets]
    computed = asset_keys(
        [*examples, *(a for d in user.definitions.values() for a in d.assets or ())]
    )
    tables = {
        ref: route
        for ref, route in table_routes(routes, existing).items()
        if asset_key(ref) not in computed
    }
    schedules = maintenance_schedules(settings, tables)
    try:
        schedules += lifecycle_schedules(settings, open_object_store(settings))
    except Exception as exc:  # the store may be down at load; schedules appear at the next reload
        log.warning("could not read lifecycle rules: %s", exc)
    platform = Definitions(
        assets=[*table_assets(tables), *examples],
        asset_checks=[*build_quarantine_checks(tables), *build_trino_checks(tables)],
        jobs=[ingest_job, reconcile_job, lifecycle_job, maintenance_job],
        sensors=[build_event_sensor(settings.sensor_interval_seconds), build_rules_sensor()],
        schedules=[
            ScheduleDefinition(
                name="reconcile_landing",
                job=reconcile_job,
                run_config=run_logs.with_json_logs({}),
                cron_schedule=settings.reconcile_cron,
                default_status=DefaultScheduleStatus.RUNNING,
                description="Re-emit events for landing objects that never reached a table.",
            ),
            *schedules,
        ],
        resources={"lakewire": LakewireResource(), **storage_io_managers()},
        loggers={"console": run_logs.console},
    )
    return merge_user_modules(platform, user)


defs = build_definitions(Settings())
