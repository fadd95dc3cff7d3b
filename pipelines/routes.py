"""Routes: which landing objects feed which table, declared in YAML (no code change to add one).

The built-in route sends ``landing/<dataset>/...`` CSV files to the Delta table
``delta.default.<dataset>``; a routes file (``LAKEWIRE_ROUTES_FILE``) replaces it.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError

from lakehouse.tables import TableRef


class RoutesError(ValueError):
    pass


class Route(BaseModel):
    name: str
    bucket: str = "landing"
    glob: str = Field(description="Key glob; '{dataset}' in the table name takes the first folder.")
    format: Literal["delta", "iceberg"] = "delta"
    table: str = Field(description="'schema.table'; may use '{dataset}'.")
    file_format: Literal["csv", "ndjson", "parquet", "auto"] = "auto"

    def matches(self, bucket: str, key: str) -> bool:
        return bucket == self.bucket and fnmatch.fnmatchcase(key, self.glob)

    def table_for(self, key: str) -> TableRef:
        dataset = key.split("/", 1)[0] if "/" in key else "default"
        qualified = self.table.format(dataset=_identifier(dataset))
        schema, _, name = qualified.partition(".")
        return TableRef(self.format, schema, name)


def _identifier(text: str) -> str:
    out = "".join(c if c.isalnum() else "_" for c in text.lower())
    return out if out and not out[0].isdigit() else f"t_{out}"


DEFAULT_ROUTES = [
    Route(name="landing_csv", bucket="landing", glob="*/*.csv", table="default.{dataset}"),
]


def load_routes(path: Path | None) -> list[Route]:
    if path is None:
        return DEFAULT_ROUTES
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RoutesError(f"cannot read routes file {path}: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("routes"), list):
        raise RoutesError(f"{path}: expected a mapping with a 'routes' list")
    try:
        return [Route.model_validate(item) for item in raw["routes"]]
    except ValidationError as exc:
        raise RoutesError(f"{path}: {exc}") from exc


def route_for(routes: list[Route], bucket: str, key: str) -> Route | None:
    return next((r for r in routes if r.matches(bucket, key)), None)
