"""The Dagster instance of the embedded default: SQLite storage under the data dir, or a
Postgres database (``LAKEWIRE_DAGSTER_POSTGRES_URL``) as the compose platform uses.

Runs are queued with a 1 s dequeue interval (Dagster's default is 5 s, most of the
event-to-run latency) and limited to one at a time per table, so two micro-batches of the same
table never race for a commit.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from lakehouse.settings import Settings
from lakewire.run_workers import worker_socket

POSTGRES_URL_ENV = "LAKEWIRE_DAGSTER_POSTGRES_URL"
MAX_RUNTIME_SECONDS = 1800
"""A run still STARTED after this long is failed by run monitoring (ingest batches are capped)."""
RUN_MONITORING_POLL_SECONDS = 10


PYTHON_LOGS = {
    # Run log records, one JSON line each on the process's stderr (the supervisor's
    # log file), by the formatter every Lakewire process uses; the code location's console
    # logger stays silent so each record is printed once (pipelines/run_logs.py).
    "dagster_handler_config": {
        "handlers": {
            "lakewire_json": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "lakewire_json",
            }
        },
        "formatters": {"lakewire_json": {"()": "lakehouse.jsonlogs.JsonFormatter"}},
    }
}


def instance_config(settings: Settings) -> dict[str, object]:
    home = settings.dagster_home
    storage: dict[str, object] = {"sqlite": {"base_dir": str(home / "storage")}}
    if settings.dagster_postgres_url is not None:
        # The URL (it holds a password) stays in the environment; the file names the variable.
        storage = {"postgres": {"postgres_url": {"env": POSTGRES_URL_ENV}}}
    return {
        "storage": storage,
        "local_artifact_storage": {
            "module": "dagster._core.storage.root",
            "class": "LocalArtifactStorage",
            "config": {"base_dir": str(home)},
        },
        "run_coordinator": {
            "module": "dagster._core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {
                "dequeue_interval_seconds": 1,
                "max_concurrent_runs": 4,
                "tag_concurrency_limits": [
                    {
                        "key": "lakewire/table",
                        "value": {"applyLimitPerUniqueValue": True},
                        "limit": 1,
                    },
                    {
                        "key": "lakewire/tenant",
                        "value": {"applyLimitPerUniqueValue": True},
                        "limit": settings.tenant_max_concurrent_runs,
                    },
                ],
            },
        },
        # A run whose worker died (killed with its daemon, or by the OOM killer) must not stay
        # STARTED holding its table's concurrency slot: the launcher's worker health check
        # fails it within a poll; any run still going after MAX_RUNTIME_SECONDS is failed too.
        # Runs are not resumed (a later run ingests what was left; the ledger makes it safe).
        # Run workers are forked warm by the run-workers service (lakewire/run_workers.py).
        "run_launcher": {
            "module": "lakewire.run_launcher",
            "class": "LocalRunLauncher",
            "config": {"worker_socket": str(worker_socket(settings))},
        },
        "run_monitoring": {
            "enabled": True,
            "start_timeout_seconds": 120,
            "max_runtime_seconds": MAX_RUNTIME_SECONDS,
            "max_resume_run_attempts": 0,
            "poll_interval_seconds": RUN_MONITORING_POLL_SECONDS,
        },
        "python_logs": PYTHON_LOGS,
        "telemetry": {"enabled": False},
        "nux": {"enabled": False},
    }


def workspace_config() -> dict[str, object]:
    return {
        "load_from": [
            {"python_module": {"module_name": "pipelines.definitions", "location_name": "lakewire"}}
        ]
    }


def write_dagster_home(settings: Settings) -> Path:
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config(settings), sort_keys=False))
    workspace = home / "workspace.yaml"
    workspace.write_text(yaml.safe_dump(workspace_config(), sort_keys=False))
    return workspace
