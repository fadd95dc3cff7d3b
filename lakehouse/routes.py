"""Routes: which landing objects feed which table, and how (see docs/routes.md).

Routes are data, declared in YAML and validated when loaded, so adding or changing one needs no
code change and a mistake is reported with the route and field at fault before any object is
touched. The first route (by ``priority``, then file order) whose bucket and key glob match an
object wins. Globs are gitignore-style (``lakehouse.route_globs``).

Loading also analyses the routes as a whole: a route that can never win (every key it matches is
taken by routes before it) or whose ``{dataset}`` cannot be read from its keys is an error; two
routes that partly overlap are a warning naming a key both match; and a file written for the old
``fnmatch`` globs (no ``version: 2``) gets a warning naming keys whose route changed.

The model lives in ``lakehouse`` (it imports nothing from above) so the storage service, the
Dagster code location and the CLI all read routes the same way, from the routes file or from
the runtime routes in the system bucket (``lakehouse.routes_store``).
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import polars as pl
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from lakehouse.formats import (
    BadObject,
    CsvOptions,
    DeclaredFormat,
    ReadOptions,
    detect_format,
    parse_type,
)
from lakehouse.route_globs import (
    GlobSyntaxError,
    Pattern,
    SearchLimit,
    check_glob,
    compile_patterns,
    first_segment_is_fixed,
    glob_match,
    literal_pattern,
    witness,
)
from lakehouse.settings import Settings
from lakehouse.tables import TableFormat, TableRef, WriteSpec

log = logging.getLogger("lakewire.routes")

TABLE_RE = re.compile(
    r"^([a-z_][a-z0-9_]*|\{dataset\}|\{tenant\})\.([a-z_][a-z0-9_]*|[a-z0-9_]*\{dataset\}[a-z0-9_]*)$"
)
# The project's routes file; LAKEWIRE_ROUTES_FILE points elsewhere.
DEFAULT_FILE = Path(__file__).resolve().parents[1] / "routes.yaml"
# The admin-only bucket that holds runtime state such as the live routes (DECISIONS: issue 17).
SYSTEM_BUCKET = "lakewire-system"
CURRENT_VERSION = 2  # route file syntax: 1 = fnmatch globs (before issue 18), 2 = wcmatch globs
# Where any supported file under landing/<dataset>/ goes when no other route takes it.
CATCH_ALL_GLOB = "*/**"


@dataclass(frozen=True)
class Issue:
    """One finding of validation or analysis, with the route and field it is about."""

    message: str
    route: str | None = None
    field: str | None = None
    example: str | None = None  # a key that shows it

    def __str__(self) -> str:
        where = f"route '{self.route}'" if self.route else ""
        if self.field:
            where += f" field '{self.field}'" if where else f"field '{self.field}'"
        return f"{where}: {self.message}" if where else self.message

    def as_dict(self) -> dict[str, str | None]:
        return {
            "route": self.route,
            "field": self.field,
            "message": self.message,
            "example": self.example,
        }


class RoutesError(ValueError):
    """Routes that cannot be used; ``issues`` names each route and field at fault."""

    def __init__(self, message: str, issues: list[Issue] | None = None) -> None:
        super().__init__(message)
        self.issues = issues or [Issue(message)]


class Evolution(BaseModel):
    """What happens when an object's columns differ from the table's."""

    model_config = ConfigDict(extra="forbid")

    add_columns: bool = Field(default=True, description="New columns are added, nullable.")
    renamed_columns: dict[str, str] = Field(
        default_factory=dict,
        description="A column renamed at the source: old name (the object's header or its "
        "normalised name) -> the table's column, so later files keep filling it instead of "
        "adding a new column.",
    )
    on_type_conflict: Literal["quarantine"] = "quarantine"


class TableMaintenance(BaseModel):
    """How the scheduled table maintenance treats this route's table (issue 12): the time a
    table keeps for time travel belongs with the table, not with each maintenance run."""

    model_config = ConfigDict(extra="forbid")

    retention_hours: int | None = Field(
        default=None,
        gt=0,
        description="Time travel kept by vacuum / snapshot expiry, in hours; the service's "
        "minimum (vacuum_min_retention_hours, 7 days) when unset. Below the minimum the "
        "scheduled run refuses rather than break running queries.",
    )
    z_order: list[str] = Field(
        default_factory=list,
        description="Delta only: columns the weekly optimize Z-orders by (the table's column "
        "names); plain compaction when empty.",
    )

    @field_validator("z_order")
    @classmethod
    def _columns(cls, value: list[str]) -> list[str]:
        if any(not c for c in value):
            raise ValueError("empty column name")
        if len(set(value)) != len(value):
            raise ValueError("a column is named twice")
        return value


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    bucket: str = "landing"
    glob: str = Field(
        min_length=1,
        description="Key glob: '*' within a segment, '**' any number of segments, '?', "
        "'[...]', '{a,b}'.",
    )
    priority: int = Field(default=0, description="Higher is tried first; ties keep file order.")
    format: TableFormat = "delta"
    table: str = Field(
        description="'schema.table'; '{dataset}' is the key's first folder; '{tenant}' the "
        "schema of the tenant whose folder the key is under ('default' if none)."
    )
    file_format: DeclaredFormat = "auto"
    csv: CsvOptions = CsvOptions()
    read: ReadOptions = ReadOptions()
    mode: Literal["append", "merge", "overwrite"] = "append"
    merge_keys: list[str] = []
    partition_by: list[str] = []
    schema_: dict[str, str] | None = Field(default=None, alias="schema")
    evolution: Evolution = Evolution()
    on_delete: Literal["ignore", "delete_rows"] = "ignore"
    max_object_bytes: int | None = Field(default=None, gt=0)
    maintenance: TableMaintenance = Field(default_factory=TableMaintenance)
    _tenants: frozenset[str] = PrivateAttr(default_factory=frozenset)

    @field_validator("table")
    @classmethod
    def _table(cls, value: str) -> str:
        if not TABLE_RE.match(value):
            raise ValueError(
                f"'{value}' is not 'schema.table' (lowercase letters, digits, '_'; "
                "'{dataset}' and a '{tenant}' schema allowed)"
            )
        return value

    @field_validator("glob")
    @classmethod
    def _glob(cls, value: str) -> str:
        try:
            check_glob(value)
        except GlobSyntaxError as exc:
            raise ValueError(f"'{value}': {exc}") from None
        return value

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if value == SYSTEM_BUCKET:
            raise ValueError(f"'{SYSTEM_BUCKET}' holds Lakewire's own state; no route reads it")
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
        if self.maintenance.z_order and self.format != "delta":
            raise ValueError("maintenance.z_order is for Delta tables (optimize Z-orders Delta)")
        return self

    @property
    def is_pattern(self) -> bool:
        return "{dataset}" in self.table or "{tenant}" in self.table

    def with_tenants(self, tenants: Collection[str]) -> Route:
        """This route knowing the registered tenant ids (DECISIONS "Routes": the first key
        segment is the tenant when it is one), as the live routes are loaded."""
        route = self.model_copy()
        route._tenants = frozenset(tenants)
        return route

    @property
    def dtypes(self) -> dict[str, pl.DataType] | None:
        return {c: parse_type(t) for c, t in self.schema_.items()} if self.schema_ else None

    @property
    def write_spec(self) -> WriteSpec:
        return WriteSpec(self.mode, tuple(self.merge_keys), tuple(self.partition_by))

    @property
    def literal_prefix(self) -> str:
        """The longest literal start of every key the glob can match (for listing)."""
        m = re.search(r"[*?\[{\\]", self.glob)
        return self.glob[: m.start()] if m else self.glob

    def matches(self, bucket: str, key: str) -> bool:
        return bucket == self.bucket and glob_match(self.glob, key)

    def tenant_of(self, key: str) -> str | None:
        """The registered tenant whose folder the key is under, if any."""
        first, sep, _ = key.partition("/")
        return first if sep and first in self._tenants else None

    def table_for(self, key: str) -> TableRef:
        """With ``{tenant}``, a key under a registered tenant's folder (``<tenant>/<dataset>/…``)
        goes to the tenant's schema and ``{dataset}`` is the folder after the tenant's."""
        from lakehouse.tenants import tenant_schema  # lakehouse.tenants imports this module

        schema = "default"
        tenant = self.tenant_of(key)
        if "{tenant}" in self.table and tenant is not None:
            schema, key = tenant_schema(tenant), key.split("/", 1)[1]
        dataset = key.split("/", 1)[0] if "/" in key else "default"
        qualified = self.table.replace("{dataset}", identifier(dataset))
        qualified = qualified.replace("{tenant}", schema)
        schema, _, name = qualified.partition(".")
        return TableRef(self.format, schema, name)

    def static_table(self) -> TableRef | None:
        if self.is_pattern:
            return None
        schema, _, name = self.table.partition(".")
        return TableRef(self.format, schema, name)

    def summary(self) -> dict[str, Any]:
        """The route as a plain mapping, as written in a routes file (defaults left out)."""
        return self.model_dump(by_alias=True, exclude_defaults=True, mode="json") | {
            "name": self.name,
            "glob": self.glob,
            "table": self.table,
        }


def identifier(text: str) -> str:
    out = "".join(c if c.isalnum() else "_" for c in text.lower())
    return out if out and not out[0].isdigit() else f"t_{out}"


class RoutesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1, 2] = Field(
        default=1,
        description="Glob syntax the file was written for: 2 = gitignore-style (wcmatch); "
        "1 (or absent) = written for the old fnmatch globs, checked for keys whose route moved.",
    )
    routes: list[Route] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> RoutesFile:
        seen: set[str] = set()
        for r in self.routes:
            if r.name in seen:
                raise ValueError(f"route name '{r.name}' is used twice")
            seen.add(r.name)
        return self


CATCH_ALL = Route(
    name="landing_files",
    bucket="landing",
    glob=CATCH_ALL_GLOB,
    table="{tenant}.{dataset}",
    file_format="auto",
)
DEFAULT_ROUTES = [CATCH_ALL]
DEFAULT_TEXT = (
    f"version: {CURRENT_VERSION}\nroutes:\n"
    "  # landing/<dataset>/<any depth>/<file> -> delta.default.<dataset>, format by extension\n"
    "  # (landing/<tenant>/<dataset>/... -> delta.<tenant schema>.<dataset>)\n"
    f'  - name: {CATCH_ALL.name}\n    bucket: landing\n    glob: "{CATCH_ALL_GLOB}"\n'
    '    table: "{tenant}.{dataset}"\n    file_format: auto\n'
)


def ordered(routes: list[Route]) -> list[Route]:
    """Routes in the order they are tried: higher ``priority`` first, then file order."""
    return sorted(routes, key=lambda r: -r.priority)  # sorted() is stable


# -- analysis -----------------------------------------------------------------------------------
def _pats(route: Route, syntax: Literal["glob", "fnmatch"] = "glob") -> tuple[Pattern, ...]:
    return compile_patterns(route.glob, syntax)


def _old_route(routes: list[Route], bucket: str, key: str) -> Route | None:
    return next(
        (r for r in routes if r.bucket == bucket and fnmatch.fnmatchcase(key, r.glob)), None
    )


def _new_route(routes: list[Route], bucket: str, key: str) -> Route | None:
    return next((r for r in routes if r.matches(bucket, key)), None)


def _dest(route: Route | None, key: str) -> str:
    if route is None:
        return "no route (ignored)"
    return f"route '{route.name}' ({route.table_for(key).qualified})"


def analyze(
    routes: list[Route], version: int = CURRENT_VERSION, quarantine_prefix: str = "quarantine/"
) -> tuple[list[Issue], list[Issue]]:
    """(errors, warnings) of routes in the order they are tried (see the module docstring)."""
    errors: list[Issue] = []
    warnings: list[Issue] = []
    quarantine = literal_pattern(quarantine_prefix)
    with_folder = compile_patterns(CATCH_ALL_GLOB)
    try:
        for route in routes:
            if "{dataset}" not in route.table:
                continue
            loose = witness([_pats(route)], [with_folder, quarantine])
            fixed = first_segment_is_fixed(route.glob)
            if loose is not None:
                errors.append(
                    Issue(
                        f"'{{dataset}}' is the key's first folder, but glob '{route.glob}' "
                        f"matches '{loose}', which has none (start the glob with '*/')",
                        route.name,
                        "table",
                        loose,
                    )
                )
            elif fixed is not None:
                errors.append(
                    Issue(
                        f"'{{dataset}}' is the key's first folder, but glob '{route.glob}' "
                        f"only matches keys under '{fixed}/': name the table instead",
                        route.name,
                        "table",
                    )
                )
        shadowed: set[str] = set()
        for j, later in enumerate(routes):
            earlier = [r for r in routes[:j] if r.bucket == later.bucket]
            any_key = witness([_pats(later)], [quarantine])
            if any_key is None:
                errors.append(
                    Issue(
                        f"glob '{later.glob}' matches no key outside '{quarantine_prefix}'",
                        later.name,
                        "glob",
                    )
                )
                shadowed.add(later.name)
                continue
            if not earlier:
                continue
            if witness([_pats(later)], [*(_pats(r) for r in earlier), quarantine]) is None:
                alone = [
                    r for r in earlier if witness([_pats(later)], [_pats(r), quarantine]) is None
                ]
                by = [alone[0]] if alone else earlier
                names = ", ".join(f"'{r.name}'" for r in by)
                errors.append(
                    Issue(
                        f"route '{later.name}' (glob '{later.glob}') can never match: every key "
                        f"it matches is taken first by {'route' if len(by) == 1 else 'routes'} "
                        f"{names} (e.g. '{any_key}'); move it before them or give it a higher "
                        "priority",
                        later.name,
                        "glob",
                        any_key,
                    )
                )
                shadowed.add(later.name)
        for j, later in enumerate(routes):
            if later.name in shadowed:
                continue
            for first in routes[:j]:
                if first.bucket != later.bucket or first.name in shadowed:
                    continue
                both = witness([_pats(first), _pats(later)], [quarantine])
                if both is None:
                    continue
                # A special case listed before the general one is the intended idiom.
                if witness([_pats(first)], [_pats(later), quarantine]) is None:
                    continue
                warnings.append(
                    Issue(
                        f"routes '{first.name}' and '{later.name}' overlap: '{both}' matches "
                        f"both and goes to '{first.name}' (tried first); narrow a glob or set "
                        "priority to say which wins",
                        later.name,
                        "glob",
                        both,
                    )
                )
        if version < CURRENT_VERSION:
            warnings.extend(_migration(routes, quarantine))
    except SearchLimit as exc:
        warnings.append(Issue(f"analysis skipped: {exc}"))
    return errors, warnings


def _migration(routes: list[Route], quarantine: tuple[Pattern, ...]) -> list[Issue]:
    """Keys whose route changed from the fnmatch globs to today's, one example per glob."""
    out: list[Issue] = []
    seen: set[tuple[str, str]] = set()
    for route in routes:
        old = _pats(route, "fnmatch")
        new = _pats(route)
        for key in (witness([old], [new, quarantine]), witness([new], [old, quarantine])):
            if key is None or (route.bucket, key) in seen:
                continue
            seen.add((route.bucket, key))
            before = _old_route(routes, route.bucket, key)
            after = _new_route(routes, route.bucket, key)
            if before is after:
                continue
            out.append(
                Issue(
                    f"glob '{route.glob}' means something else under the gitignore-style rules: "
                    f"'{route.bucket}/{key}' went to {_dest(before, key)}, now to "
                    f"{_dest(after, key)}. Check the globs (docs/routes.md, 'Migrating from "
                    "fnmatch globs'), then add 'version: 2' to the file",
                    route.name,
                    "glob",
                    key,
                )
            )
    return out


# -- parsing and loading ------------------------------------------------------------------------
@dataclass
class RouteSet:
    """Validated routes in the order they are tried, with the analysis' warnings."""

    routes: list[Route]
    warnings: list[Issue] = field(default_factory=list)
    version: int = CURRENT_VERSION
    origin: str = "<routes>"
    text: str = ""


def _describe(exc: ValidationError, raw: dict[str, Any]) -> list[Issue]:
    issues = []
    for err in exc.errors():
        loc = list(err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if len(loc) >= 2 and loc[0] == "routes" and isinstance(loc[1], int):
            routes = raw.get("routes") or []
            item = routes[loc[1]] if loc[1] < len(routes) else None
            name = item.get("name") if isinstance(item, dict) else None
            rest = ".".join(str(p) for p in loc[2:]) or None
            label = f"route {loc[1] + 1}" + (f" '{name}'" if name else "")
            issues.append(Issue(msg, str(name) if name else label, rest))
        else:
            issues.append(Issue(msg, None, ".".join(str(p) for p in loc) or None))
    return issues


def _issue_line(issue: Issue, raw: dict[str, Any]) -> str:
    """The message as the routes file's readers know it: 'route 2 'orders': glob: ...'."""
    names = [r.get("name") for r in raw.get("routes") or [] if isinstance(r, dict)]
    label = issue.route
    if issue.route in names:
        label = f"route {names.index(issue.route) + 1} '{issue.route}'"
    where = ": ".join(p for p in (label, issue.field or ("(route)" if label else None)) if p)
    return f"{where}: {issue.message}" if where else issue.message


@lru_cache(maxsize=64)
def _check_cached(text: str, origin: str, quarantine_prefix: str) -> RouteSet:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RoutesError(f"{origin}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("routes"), list):
        raise RoutesError(f"{origin}: expected a mapping with a 'routes' list")
    try:
        parsed = RoutesFile.model_validate(raw)
    except ValidationError as exc:
        issues = _describe(exc, raw)
        raise RoutesError(
            f"{origin}: " + "; ".join(_issue_line(i, raw) for i in issues), issues
        ) from exc
    routes = ordered(parsed.routes)
    errors, warnings = analyze(routes, parsed.version, quarantine_prefix)
    if errors:
        raise RoutesError(f"{origin}: " + "; ".join(_issue_line(i, raw) for i in errors), errors)
    return RouteSet(routes, warnings, parsed.version, origin, text)


_logged: set[str] = set()


def check_routes(
    text: str, origin: str = "<routes>", quarantine_prefix: str = "quarantine/"
) -> RouteSet:
    """Parse, validate and analyse routes; raises RoutesError naming each route and field."""
    got = _check_cached(text, origin, quarantine_prefix)
    return RouteSet(list(got.routes), list(got.warnings), got.version, got.origin, got.text)


def log_warnings(checked: RouteSet) -> RouteSet:
    """Log the analysis' warnings, once per routes content and process (ticks repeat)."""
    digest = hashlib.sha256(f"{checked.origin}\0{checked.text}".encode()).hexdigest()
    if checked.warnings and digest not in _logged:
        _logged.add(digest)
        for w in checked.warnings:
            log.warning("%s: %s", checked.origin, w)
    return checked


def parse_routes(text: str, origin: str = "<routes>") -> list[Route]:
    """The routes in the order they are tried; warnings are logged once per file content."""
    return log_warnings(check_routes(text, origin)).routes


def read_routes_file(path: Path | None) -> tuple[str, str]:
    """(text, origin) of a routes file; ``None`` is the project's routes.yaml or the default."""
    if path is None:
        if not DEFAULT_FILE.is_file():
            return DEFAULT_TEXT, "<built-in routes>"
        path = DEFAULT_FILE
    try:
        return path.read_text(), str(path)
    except OSError as exc:
        raise RoutesError(f"cannot read routes file {path}: {exc}") from exc


def load_routes(path: Path | None) -> list[Route]:
    """Routes from ``path``; ``None`` means the project's routes.yaml (built-in route if absent)."""
    text, origin = read_routes_file(path)
    return parse_routes(text, origin)


def settings_routes(settings: Settings) -> list[Route]:
    """The live routes: the system bucket's current version if there is one, else the file.

    Read on every sensor tick and every run, so a change takes effect with the next event.
    """
    from lakehouse.routes_store import live_routes

    return log_warnings(live_routes(settings)).routes


def route_for(routes: list[Route], bucket: str, key: str, settings: Settings) -> Route | None:
    """The first matching route; keys under the quarantine prefix never match."""
    if key.startswith(settings.quarantine_prefix):
        return None
    return next((r for r in routes if r.matches(bucket, key)), None)


def matching_routes(routes: list[Route], bucket: str, key: str, settings: Settings) -> list[Route]:
    """Every route that matches, the winner first (what ``lakewire routes explain`` shows)."""
    if key.startswith(settings.quarantine_prefix):
        return []
    return [r for r in routes if r.matches(bucket, key)]


@dataclass
class Explanation:
    """Where an object goes: the winning route, its table and file format, the other matches."""

    bucket: str
    key: str
    route: Route | None
    table: str | None
    file_format: str | None
    also_matched: list[str]
    note: str | None = None


def explain_key(routes: list[Route], bucket: str, key: str, settings: Settings) -> Explanation:
    matched = matching_routes(routes, bucket, key, settings)
    if not matched:
        why = (
            f"under the quarantine prefix '{settings.quarantine_prefix}': never routed"
            if key.startswith(settings.quarantine_prefix)
            else "no route matches: the object is ignored"
        )
        return Explanation(bucket, key, None, None, None, [], why)
    win = matched[0]
    fmt: str | None = None
    note: str | None = None
    try:
        fmt = detect_format(key, win.file_format)
    except BadObject as exc:
        note = f"would be quarantined: {exc}"
    table = win.table_for(key).qualified
    return Explanation(bucket, key, win, table, fmt, [r.name for r in matched[1:]], note)


def route_named(routes: list[Route], name: str) -> Route:
    for r in routes:
        if r.name == name:
            return r
    raise RoutesError(f"no route named '{name}' (routes: {', '.join(r.name for r in routes)})")
