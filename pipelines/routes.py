"""Routes: which landing objects feed which table, and how (see docs/routes.md).

Routes are data, declared in a YAML file and validated when loaded, so adding or changing one
needs no code change and a mistake is reported with the route and field at fault before any
object is touched. The first route whose bucket and key glob match an object wins.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Literal

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lakehouse.formats import CsvOptions, parse_type
from lakehouse.settings import Settings
from lakehouse.tables import TableFormat, TableRef, WriteSpec

TABLE_RE = re.compile(
    r"^([a-z_][a-z0-9_]*|\{dataset\})\.([a-z_][a-z0-9_]*|[a-z0-9_]*\{dataset\}[a-z0-9_]*)$"
)
# The project's routes file; LAKEWIRE_ROUTES_FILE points elsewhere.
DEFAULT_FILE = Path(__file__).resolve().parents[1] / "routes.yaml"


class RoutesError(ValueError):
    pass


class Evolution(BaseModel):
    """What happens when an object's columns differ from the table's."""

    model_config = ConfigDict(extra="forbid")

    add_columns: bool = Field(default=True, description="New columns are added, nullable.")
    on_type_conflict: Literal["quarantine"] = "quarantine"


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    bucket: str = "landing"
    glob: str = Field(min_length=1, description="Key glob ('*' crosses '/').")
    format: TableFormat = "delta"
    table: str = Field(description="'schema.table'; '{dataset}' is the key's first folder.")
    file_format: Literal["csv", "ndjson", "parquet", "auto"] = "auto"
    csv: CsvOptions = CsvOptions()
    mode: Literal["append", "merge", "overwrite"] = "append"
    merge_keys: list[str] = []
    partition_by: list[str] = []
    schema_: dict[str, str] | None = Field(default=None, alias="schema")
    evolution: Evolution = Evolution()
    on_delete: Literal["ignore", "delete_rows"] = "ignore"
    max_object_bytes: int | None = Field(default=None, gt=0)

    @field_validator("table")
    @classmethod
    def _table(cls, value: str) -> str:
        if not TABLE_RE.match(value):
            raise ValueError(
                f"'{value}' is not 'schema.table' (lowercase letters, digits, '_'; "
                "'{dataset}' allowed)"
            )
        return value

    @field_validator("schema_")
    @classmethod
    def _schema(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for col, type_name in (value or {}).items():
            parse_type(type_name)  # raises ValueError naming the accepted types
            if not col:
                raise ValueError("empty column name in schema")
        return value

    @model_validator(mode="after")
    def _mode(self) -> Route:
        if self.mode == "merge" and not self.merge_keys:
            raise ValueError("mode 'merge' needs merge_keys (the columns that identify a row)")
        if self.mode == "overwrite" and not self.partition_by:
            raise ValueError("mode 'overwrite' replaces partitions: it needs partition_by")
        if self.mode != "merge" and self.merge_keys:
            raise ValueError("merge_keys is only meaningful with mode 'merge'")
        return self

    @property
    def is_pattern(self) -> bool:
        return "{dataset}" in self.table

    @property
    def dtypes(self) -> dict[str, pl.DataType] | None:
        return {c: parse_type(t) for c, t in self.schema_.items()} if self.schema_ else None

    @property
    def write_spec(self) -> WriteSpec:
        return WriteSpec(self.mode, tuple(self.merge_keys), tuple(self.partition_by))

    def matches(self, bucket: str, key: str) -> bool:
        return bucket == self.bucket and fnmatch.fnmatchcase(key, self.glob)

    def table_for(self, key: str) -> TableRef:
        dataset = key.split("/", 1)[0] if "/" in key else "default"
        qualified = self.table.replace("{dataset}", identifier(dataset))
        schema, _, name = qualified.partition(".")
        return TableRef(self.format, schema, name)

    def static_table(self) -> TableRef | None:
        if self.is_pattern:
            return None
        schema, _, name = self.table.partition(".")
        return TableRef(self.format, schema, name)


def identifier(text: str) -> str:
    out = "".join(c if c.isalnum() else "_" for c in text.lower())
    return out if out and not out[0].isdigit() else f"t_{out}"


class RoutesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    routes: list[Route] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> RoutesFile:
        seen: set[str] = set()
        for r in self.routes:
            if r.name in seen:
                raise ValueError(f"route name '{r.name}' is used twice")
            seen.add(r.name)
        return self


DEFAULT_ROUTES = [
    Route(name="landing_csv", bucket="landing", glob="*/*.csv", table="default.{dataset}"),
]


def _describe(exc: ValidationError, raw: dict) -> str:
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = ".".join(str(p) for p in loc)
        if len(loc) >= 2 and loc[0] == "routes" and isinstance(loc[1], int):
            routes = raw.get("routes") or []
            item = routes[loc[1]] if loc[1] < len(routes) else None
            name = item.get("name") if isinstance(item, dict) else None
            rest = ".".join(str(p) for p in loc[2:]) or "(route)"
            where = f"route {loc[1] + 1}" + (f" '{name}'" if name else "") + f": {rest}"
        lines.append(f"{where}: {err['msg']}")
    return "; ".join(lines)


def parse_routes(text: str, origin: str = "<routes>") -> list[Route]:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RoutesError(f"{origin}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("routes"), list):
        raise RoutesError(f"{origin}: expected a mapping with a 'routes' list")
    try:
        return RoutesFile.model_validate(raw).routes
    except ValidationError as exc:
        raise RoutesError(f"{origin}: {_describe(exc, raw)}") from exc


def load_routes(path: Path | None) -> list[Route]:
    """Routes from ``path``; ``None`` means the project's routes.yaml (built-in route if absent)."""
    if path is None:
        if not DEFAULT_FILE.is_file():
            return DEFAULT_ROUTES
        path = DEFAULT_FILE
    try:
        text = path.read_text()
    except OSError as exc:
        raise RoutesError(f"cannot read routes file {path}: {exc}") from exc
    return parse_routes(text, str(path))


def settings_routes(settings: Settings) -> list[Route]:
    return load_routes(settings.routes_file)


def route_for(routes: list[Route], bucket: str, key: str, settings: Settings) -> Route | None:
    """The first matching route; keys under the quarantine prefix never match."""
    if key.startswith(settings.quarantine_prefix):
        return None
    return next((r for r in routes if r.matches(bucket, key)), None)


def route_named(routes: list[Route], name: str) -> Route:
    for r in routes:
        if r.name == name:
            return r
    raise RoutesError(f"no route named '{name}' (routes: {', '.join(r.name for r in routes)})")
