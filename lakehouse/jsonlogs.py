"""JSON-lines logs for every Lakewire process: one object per line, with the request, run and
object it concerns where those are known, so a log shipper (Loki, Vector, CloudWatch) reads the
storage service, the dispatcher, the run workers and Dagster's run logs without a
parsing rule per process.

It lives in the lowest layer because every process imports ``lakehouse``; the storage service
sets the request fields (``storage_service/logs.py``), the dispatcher and the runs set the run
fields, and Dagster's run log records carry their run in ``dagster_meta``, which is
read here. Dagster's instance configuration names :class:`JsonFormatter` in ``python_logs``
(``lakewire/dagster_home.py``), so one formatter writes them all.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

# The context a line is logged in: set around a request or a run, read by the formatter.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
request_object: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_object", default=None
)
run_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("run_id", default=None)
_CONTEXT = (("request_id", request_id), ("object", request_object), ("run_id", run_id))

# Attributes every LogRecord has; anything else was passed as ``extra=`` and is logged too.
# uvicorn's ``color_message`` is the same text with terminal colours; ``dagster_meta`` is read
# field by field below, and the event objects Dagster attaches are in it too.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "color_message",
    "dagster_meta",
    "dagster_event",
    "dagster_event_batch_metadata",
}
# Run tags worth a field of their own (the table a run writes is how operators search).
_RUN_TAGS = {"lakewire/table": "table"}


def _dagster_fields(meta: dict[str, Any]) -> dict[str, Any]:
    """The run, step and event of a Dagster log record; the message as the code logged it
    (Dagster's own message repeats the job, run id and step in one string)."""
    out: dict[str, Any] = {"msg": meta.get("orig_message")}
    for key in ("run_id", "job_name", "step_key"):
        if meta.get(key):
            out[key] = meta[key]
    tags = meta.get("job_tags") or {}
    out.update({field: tags[tag] for tag, field in _RUN_TAGS.items() if tag in tags})
    event = meta.get("dagster_event")
    if event is not None:
        out["event"] = getattr(event, "event_type_value", None)
    return {k: v for k, v in out.items() if v is not None}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name, var in _CONTEXT:
            value = var.get()
            if value is not None:
                line[name] = value
        meta = getattr(record, "dagster_meta", None)
        if isinstance(meta, dict):
            line.update(_dagster_fields(meta))
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure_json_logging(level: int = logging.INFO, quiet: tuple[str, ...] = ()) -> None:
    """Every logger of the process writes JSON lines to stderr (the supervisor's log file);
    loggers named in ``quiet`` only from WARNING up (a library's line per batch of changes)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)  # a library's warning is a log line too, not raw stderr
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
