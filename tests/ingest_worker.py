"""One ingestion process of the concurrent-writers fault: ``python -m tests.ingest_worker
DATA_DIR WORKER OBJECTS GO_FILE`` waits until ``GO_FILE`` exists (so the processes start
together), then ingests every landed object, five per commit, starting at its own offset so
the writers overlap on every object."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from lakehouse.objectstore import open_object_store
from lakehouse.settings import Settings
from lakehouse.tables import TableRef
from pipelines.ingestion import ingest_batch
from pipelines.reconcile import current_source

TABLE = "delta.default.writers"


def main(data_dir: str, worker: int, objects: int, go: str) -> None:
    settings = Settings(data_dir=Path(data_dir))
    store = open_object_store(settings)
    sources = [current_source(store, "landing", f"writers/f{i:03d}.csv") for i in range(objects)]
    offset = (worker * objects) // 4
    sources = sources[offset:] + sources[:offset]
    while not Path(go).exists():
        time.sleep(0.01)
    for i in range(0, len(sources), 5):
        ingest_batch(settings, store, TableRef.parse(TABLE), sources[i : i + 5], f"w{worker}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
