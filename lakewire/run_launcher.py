"""Dagster's default run launcher plus a worker health check, for the embedded platform.

Runs are launched exactly as ``DefaultRunLauncher`` launches them (a worker process started by
the code server on this machine). What it adds is ``check_run_worker_health``: the run worker
reports its pid in its engine events ("Started process for run (pid: N)"), and a worker whose pid
is gone (killed with its daemon, by the OOM killer, ...) is reported FAILED, so Dagster's run
monitoring fails the run at its next poll instead of leaving it STARTED and holding its table's
concurrency slot. Runs are not resumed: a later run ingests what was left (the ledger makes
that safe).
"""

from __future__ import annotations

from dagster import DagsterEventType, DefaultRunLauncher
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun

from lakewire.processes import pid_alive


class LocalRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` whose run workers run on this host and can be health-checked."""

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
