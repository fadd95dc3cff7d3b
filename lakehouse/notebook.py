"""What a notebook kernel has ready: ``minio``, the Object Storage helpers as one object.

``from lakehouse.notebook import minio`` then ``minio.read_csv("co2-data/…")``,
``minio.write_csv(df, "results/…")``, ``minio.ls("datasets")``, ``minio.tables.list()``,
``minio.sql.query("SELECT …")`` (see ``lakehouse.files``). ``minio`` is an attribute of this
module, not a module of its own, so it never shadows the ``minio`` SDK package: in a kernel
that ran the startup file (``deploy/jupyter/00-lakewire.py``), ``minio`` is this object and
``import minio`` still imports the SDK.

Nothing is opened at import: the store is opened on the first call, from the platform's
settings (``lakehouse.files.default_settings``).
"""

from __future__ import annotations

from lakehouse.files import Lake

__all__ = ["Lake", "lake", "minio"]

minio = Lake()
lake = minio  # the same object under the platform's own name
