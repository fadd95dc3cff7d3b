"""The console side of Dagster's run logs: left to the instance's JSON handler.

Every run log record reaches the handler that ``python_logs.dagster_handler_config``
names in the instance's ``dagster.yaml`` (``lakehouse.jsonlogs.JsonFormatter``, one line per
event with its run id and table). Dagster's default ``console`` logger would print each record
a second time in its coloured text, breaking the run workers' JSON-lines log, so the code
location's ``console`` logger is this one, which prints nothing. Dagster uses a job's loggers
only when the run config names them (otherwise its coloured default), so every run Lakewire
requests names it (:func:`with_json_logs`); a run launched by hand from the UI without it
prints Dagster's coloured lines as well.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from dagster import InitLoggerContext, LoggerDefinition


def _silent_console(_context: InitLoggerContext) -> logging.Logger:
    quiet = logging.getLogger("lakewire.dagster_console")
    quiet.handlers[:] = [logging.NullHandler()]
    quiet.propagate = False
    return quiet


console = LoggerDefinition(
    _silent_console,
    description="Prints nothing: the instance's python_logs handler writes JSON lines.",
)


def with_json_logs(run_config: Mapping[str, Any]) -> dict[str, Any]:
    """``run_config`` naming the silent ``console`` logger, for every run Lakewire requests."""
    return {**run_config, "loggers": {"console": {}}}
