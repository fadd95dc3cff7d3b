"""Dagster's default run launcher with warm run workers and a worker health check, for the
embedded platform.

With ``worker_socket`` set, a run worker is forked by the warm worker server
(``lakewire.run_workers``: Dagster and the pipelines already imported), which takes ~1.5 s off
every run's start; when that server does not answer, the run is launched exactly as
``DefaultRunLauncher`` launches it (a fresh worker started by the code server), so a dead
server slows runs down and loses none.

Both paths share ``check_run_worker_health``: the run worker reports its pid in its engine
events ("Started process for run (pid: N)"), and a worker whose pid is gone (killed with its
daemon, by the OOM killer, ...) is reported FAILED, so Dagster's run monitoring fails the run
at its next poll instead of leaving it STARTED and holding its table's concurrency slot. Runs
are not resumed: a later run ingests what was left (the ledger makes that safe).
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from dagster import DagsterEventType, DefaultRunLauncher, Field, StringSource
from dagster._core.errors import DagsterLaunchFailedError
from dagster._core.launcher.base import CheckRunHealthResult, LaunchRunContext, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import ConfigurableClassData, serialize_value

from lakewire.processes import pid_alive
from lakewire.run_workers import WorkerLaunchUnknown, WorkerServerUnavailable, request_worker

log = logging.getLogger(__name__)
WORKER_TAG = "lakewire/worker"
"""Set on runs a warm worker took: ``warm:<pid>`` (the UI shows how each run was started)."""


class LocalRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` whose run workers run on this host, forked warm when possible,
    and can be health-checked."""

    def __init__(
        self, inst_data: ConfigurableClassData | None = None, worker_socket: str | None = None
    ) -> None:
        super().__init__(inst_data=inst_data)
        self._worker_socket = Path(worker_socket) if worker_socket else None

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"worker_socket": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> Self:
        return cls(inst_data=inst_data, worker_socket=config_value.get("worker_socket"))

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        if self._worker_socket is not None and run.job_code_origin is not None:
            args = ExecuteRunArgs(
                job_origin=run.job_code_origin,
                run_id=run.run_id,
                instance_ref=self._instance.get_ref(),
                set_exit_code_on_failure=True,
            )
            try:
                pid = request_worker(self._worker_socket, serialize_value(args))
            except WorkerServerUnavailable as exc:
                log.warning("%s; starting run %s with a fresh worker", exc, run.run_id)
            except WorkerLaunchUnknown as exc:
                # A worker may have been forked: starting another would run the run twice.
                raise DagsterLaunchFailedError(f"run {run.run_id}: {exc}") from exc
            else:
                self._instance.add_run_tags(run.run_id, {WORKER_TAG: f"warm:{pid}"})
                return
        super().launch_run(context)

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        tag = run.tags.get(WORKER_TAG, "") if run else ""
        if run is None or run.is_finished or not tag.startswith("warm:"):
            return super().terminate(run_id)
        # As the code server stops its workers: mark the run canceling, interrupt the worker;
        # Dagster's run code inside it records the cancellation.
        self._instance.report_run_canceling(run)
        pid = int(tag.removeprefix("warm:"))
        if pid_alive(pid):
            os.kill(pid, signal.SIGINT)
        return True

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def _worker_pid(self, run: DagsterRun) -> int | None:
        records = self._instance.get_records_for_run(
            run.run_id, of_type=DagsterEventType.ENGINE_EVENT
        ).records
        pid = None
        for record in records:  # the last worker to report wins (a resumed run has a new one)
            event = record.event_log_entry.dagster_event
            if event is None or event.engine_event_data is None:
                continue
            value = event.engine_event_data.metadata.get("pid")
            text = getattr(value, "value", value)
            if text is not None and str(text).isdigit():
                pid = int(str(text))
        return pid

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        pid = self._worker_pid(run)
        if pid is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no worker pid reported yet")
        if pid_alive(pid):
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"run worker process {pid} is gone (killed or crashed)",
            run_worker_id=str(pid),
        )
