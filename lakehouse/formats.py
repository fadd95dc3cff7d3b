"""Reading landing objects (CSV, NDJSON, Parquet) into frames, and fitting them to a table.

Everything a bad object can do wrong surfaces here as one ``BadObject`` with a ``kind``, so the
caller can quarantine it with a reason a person can act on, instead of failing the whole batch.
Large objects are scanned lazily (read in batches) so a multi-gigabyte CSV never sits in
memory whole.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Literal, TypedDict

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

FileFormat = Literal["csv", "ndjson", "parquet"]
BadKind = Literal["unparseable", "empty", "schema_conflict", "too_large", "unknown_format"]

EXTENSIONS: dict[str, FileFormat] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
    ".parquet": "parquet",
    ".pq": "parquet",
}

# Declared-schema type names (what a routes file may say) -> polars types.
TYPE_NAMES: dict[str, pl.DataType] = {
    "string": pl.String(),
    "int8": pl.Int8(),
    "int16": pl.Int16(),
    "int32": pl.Int32(),
    "int64": pl.Int64(),
    "float32": pl.Float32(),
    "float64": pl.Float64(),
    "double": pl.Float64(),
    "boolean": pl.Boolean(),
    "date": pl.Date(),
    "timestamp": pl.Datetime("us", "UTC"),
    "timestamp_ntz": pl.Datetime("us"),
}
DECIMAL_RE = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")


class BadObject(ValueError):
    """A landing object that cannot become rows as it is; ``kind`` says which way it is bad."""

    def __init__(self, kind: BadKind, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


class CsvOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    separator: str = Field(default=",", min_length=1, max_length=1)
    has_header: bool = True
    quote_char: str | None = '"'
    null_values: list[str] = []
    skip_rows: int = Field(default=0, ge=0)
    encoding: Literal["utf8", "utf8-lossy"] = "utf8"
    infer_schema_length: int = Field(default=10_000, ge=1)


def parse_type(name: str) -> pl.DataType:
    """A declared column type; raises ``ValueError`` naming the accepted types."""
    key = name.strip().lower()
    if key in TYPE_NAMES:
        return TYPE_NAMES[key]
    m = DECIMAL_RE.match(key)
    if m:
        return pl.Decimal(int(m.group(1)), int(m.group(2)))
    raise ValueError(
        f"unknown column type '{name}' (use one of {', '.join(TYPE_NAMES)} or decimal(p,s))"
    )


def detect_format(key: str, declared: FileFormat | Literal["auto"] = "auto") -> FileFormat:
    if declared != "auto":
        return declared
    suffix = Path(key).suffix.lower()
    fmt = EXTENSIONS.get(suffix)
    if fmt is None:
        raise BadObject(
            "unknown_format",
            f"cannot tell the file format of '{key}' from its extension '{suffix or '(none)'}'; "
            "declare file_format on the route",
        )
    return fmt


class _CsvKwargs(TypedDict):
    """The arguments ``pl.read_csv`` and ``pl.scan_csv`` both take from ``CsvOptions``."""

    separator: str
    has_header: bool
    quote_char: str | None
    null_values: list[str] | None
    skip_rows: int
    encoding: Literal["utf8", "utf8-lossy"]
    infer_schema_length: int
    schema_overrides: dict[str, pl.DataType] | None


def _csv_kwargs(opts: CsvOptions, dtypes: dict[str, pl.DataType] | None) -> _CsvKwargs:
    return {
        "separator": opts.separator,
        "has_header": opts.has_header,
        "quote_char": opts.quote_char,
        "null_values": opts.null_values or None,
        "skip_rows": opts.skip_rows,
        "encoding": opts.encoding,
        "infer_schema_length": opts.infer_schema_length,
        "schema_overrides": dtypes or None,
    }


def read_frame(
    data: bytes,
    fmt: FileFormat,
    csv: CsvOptions | None = None,
    dtypes: dict[str, pl.DataType] | None = None,
) -> pl.DataFrame:
    """Parse a whole (small) object; an empty or unparseable one raises ``BadObject``."""
    if not data.strip():
        raise BadObject("empty", "the object has no content")
    try:
        if fmt == "csv":
            df = pl.read_csv(io.BytesIO(data), **_csv_kwargs(csv or CsvOptions(), dtypes))
        elif fmt == "ndjson":
            df = pl.read_ndjson(io.BytesIO(data), schema_overrides=dtypes or None)
        else:
            df = pl.read_parquet(io.BytesIO(data))
            if dtypes:
                df = df.cast({c: t for c, t in dtypes.items() if c in df.columns}, strict=True)
    except BadObject:
        raise
    except Exception as exc:
        raise BadObject("unparseable", f"not valid {fmt}: {_first_line(exc)}") from exc
    if df.height == 0:
        raise BadObject("empty", f"the {fmt} object has no rows")
    return df


def scan_frame(
    path: Path,
    fmt: FileFormat,
    csv: CsvOptions | None = None,
    dtypes: dict[str, pl.DataType] | None = None,
) -> pl.LazyFrame:
    """A lazy reader over a local file, for objects too large to load whole."""
    try:
        if fmt == "csv":
            lf = pl.scan_csv(path, **_csv_kwargs(csv or CsvOptions(), dtypes))
        elif fmt == "ndjson":
            lf = pl.scan_ndjson(path, schema_overrides=dtypes or None)
        else:
            lf = pl.scan_parquet(path)
            if dtypes:
                lf = lf.cast(pl.Schema(dtypes), strict=True)
        lf.collect_schema()
    except Exception as exc:
        raise BadObject("unparseable", f"not valid {fmt}: {_first_line(exc)}") from exc
    return lf


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:500] if text else type(exc).__name__


def storable(dtype: pl.DataType) -> pl.DataType:
    """The type a column is stored as: tables hold microsecond times and no null-typed columns."""
    if isinstance(dtype, pl.Datetime):
        return pl.Datetime("us", dtype.time_zone)
    if dtype == pl.Null:
        return pl.String()
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return pl.String()
    return dtype


def target_schema(
    table: pl.Schema | None,
    frames: dict[str, pl.Schema],
    add_columns: bool,
) -> tuple[pl.Schema, dict[str, BadObject]]:
    """The schema a batch is written with, and the sources that conflict with it.

    Columns the table has keep their type (a source that cannot be cast to it conflicts); new
    columns are added, nullable, in first-seen order when ``add_columns`` allows it.
    """
    out: dict[str, pl.DataType] = dict(table or {})
    conflicts: dict[str, BadObject] = {}
    for name, schema in frames.items():
        added: dict[str, pl.DataType] = {}
        for col, dtype in schema.items():
            dtype = storable(dtype)
            if col in out:
                if not _castable(dtype, out[col]):
                    conflicts[name] = BadObject(
                        "schema_conflict",
                        f"column '{col}' is {dtype} in the object but {out[col]} in the table",
                    )
                    break
            elif table is not None and not add_columns:
                conflicts[name] = BadObject(
                    "schema_conflict",
                    f"column '{col}' is not in the table and the route does not add columns",
                )
                break
            else:
                added[col] = dtype
        else:
            out.update(added)
    return pl.Schema(out), conflicts


def _castable(src: pl.DataType, dst: pl.DataType) -> bool:
    """Types that convert without loss; anything else is a schema conflict."""
    if src == dst or src == pl.Null:
        return True
    if dst == pl.String:
        return True  # text formats infer types per file; any value has a text form
    if src.is_integer() and (dst.is_integer() or dst.is_float() or dst.is_decimal()):
        return True
    if src.is_float() and dst.is_float():
        return True
    if isinstance(src, pl.Datetime) and isinstance(dst, pl.Datetime):
        return True
    return src == pl.Date and isinstance(dst, pl.Datetime)


def fit(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """Cast a frame to the batch schema, adding missing columns as nulls; raises on bad values."""
    try:
        return frame.select(
            [
                pl.col(c).cast(t, strict=True) if c in frame.columns else pl.lit(None, t).alias(c)
                for c, t in schema.items()
            ]
        )
    except Exception as exc:
        raise BadObject("schema_conflict", _first_line(exc)) from exc
