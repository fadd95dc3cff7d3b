"""Reading landing objects (CSV/TSV, NDJSON, JSON arrays, Parquet; plain or compressed) into
frames, and fitting them to a table.

Everything a bad object can do wrong surfaces here as one ``BadObject`` with a ``kind``, so the
caller can quarantine it with a reason a person can act on, instead of failing the whole batch.
Large objects are scanned lazily (read in batches) so a multi-gigabyte CSV never sits in
memory whole.

Files are read the way people's tools write them, with no route options (docs/routes.md):

- the format comes from the extension, under an optional compression suffix (``.csv.gz``,
  ``.jsonl.zst``, ``.tsv.bz2``); a gzip/zstd/bzip2 object without one is recognised by its
  magic bytes. ``.json`` holds either a JSON array of records or NDJSON (sniffed).
- the null tokens spreadsheets, R, pandas and databases write (``NULL_TOKENS``) are nulls in
  CSV/TSV; ISO 8601 dates and timestamps in text columns become ``date``/``timestamp`` (with a
  zone: UTC ``timestamp``; without: ``timestamp_ntz``). Only ISO forms are parsed, so
  ``01/02/2024`` (day or month first?) stays text.
- column names become SQL-safe lowercase snake_case (``Culmen Length (mm)`` ->
  ``culmen_length_mm``, ``studyName`` -> ``study_name``), the object's own header kept beside
  each name (``ReadResult.columns``) for the table to record.
- a UTF-8 BOM is skipped, UTF-16 (with BOM) is transcoded; Latin-1 or Windows-1252 text needs
  ``csv.encoding`` and anything undecodable is quarantined saying where and what to set.
- types are inferred from the first ``infer_schema_length`` rows; a later value that does not
  fit (``oops`` in a numeric column) widens the column (the object is read again with every
  row seen) or, with ``read.mixed_types: quarantine``, quarantines the object naming the
  column, row and value.
"""

from __future__ import annotations

import codecs
import io
import json
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypedDict

import polars as pl
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

FileFormat = Literal["csv", "tsv", "ndjson", "json", "parquet"]
DeclaredFormat = Literal["csv", "tsv", "ndjson", "json", "parquet", "auto"]
Compression = Literal["gzip", "zstd", "bzip2"]
BadKind = Literal["unparseable", "empty", "schema_conflict", "too_large", "unknown_format"]
Encoding = Literal["utf8", "utf8-lossy", "latin1", "cp1252", "utf16"]
MixedTypes = Literal["widen", "quarantine"]

EXTENSIONS: dict[str, FileFormat] = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
COMPRESSIONS: dict[str, Compression] = {
    ".gz": "gzip",
    ".gzip": "gzip",
    ".zst": "zstd",
    ".zstd": "zstd",
    ".bz2": "bzip2",
}
_ARROW_CODEC: dict[Compression, str] = {"gzip": "gzip", "zstd": "zstd", "bzip2": "bz2"}
_HINTS = {
    ".xlsx": "Excel workbooks are not read: export the sheet as CSV",
    ".xls": "Excel workbooks are not read: export the sheet as CSV",
    ".zip": "zip archives are not read: land the files inside it (or gzip each one)",
    ".tar": "tar archives are not read: land the files inside it",
}

# What people's tools write for "no value": empty (Excel, most exporters), NA (R), N/A and -
# (spreadsheets), NaN/None (pandas), null/NULL (databases, JSON-minded tools).
NULL_TOKENS: tuple[str, ...] = ("", "NA", "N/A", "NaN", "null", "NULL", "None", "-")

# Rows read to infer column types before the whole object is (JSON; CSV: csv.infer_schema_length).
JSON_INFER_ROWS = 10_000
# Rows sampled from a large object to decide which text columns hold ISO dates.
DATE_SAMPLE_ROWS = 1_000

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

_ENCODING_ALIASES: dict[str, Encoding] = {
    "utf8": "utf8",
    "utf-8": "utf8",
    "utf8-lossy": "utf8-lossy",
    "utf-8-lossy": "utf8-lossy",
    "latin1": "latin1",
    "latin-1": "latin1",
    "iso-8859-1": "latin1",
    "iso8859-1": "latin1",
    "cp1252": "cp1252",
    "windows-1252": "cp1252",
    "utf16": "utf16",
    "utf-16": "utf16",
}
_PY_CODEC: dict[Encoding, str] = {"latin1": "latin-1", "cp1252": "cp1252", "utf16": "utf-16"}
_BOM_UTF8 = b"\xef\xbb\xbf"
_BOMS_UTF16 = (b"\xff\xfe", b"\xfe\xff")


class BadObject(ValueError):
    """A landing object that cannot become rows as it is; ``kind`` says which way it is bad."""

    def __init__(self, kind: BadKind, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


class CsvOptions(BaseModel):
    """How CSV/TSV objects are parsed (a route's ``csv:``)."""

    model_config = ConfigDict(extra="forbid")

    # One character; None: by format (',' for CSV, tab for TSV).
    separator: str | None = Field(default=None, min_length=1, max_length=1)
    has_header: bool = True
    quote_char: str | None = '"'
    null_values: list[str] = Field(default_factory=lambda: list(NULL_TOKENS))
    skip_rows: int = Field(default=0, ge=0)
    encoding: Encoding = "utf8"
    # Rows type inference reads first (None: every row; slower, as the whole object is read
    # twice). A later value that does not fit is handled by ``read.mixed_types``.
    infer_schema_length: int | None = Field(default=10_000, ge=1)

    @field_validator("encoding", mode="before")
    @classmethod
    def _encoding(cls, value: object) -> object:
        return _ENCODING_ALIASES.get(str(value).strip().lower(), value)


class ReadOptions(BaseModel):
    """How any landing object becomes columns, whatever its format (a route's ``read:``)."""

    model_config = ConfigDict(extra="forbid")

    normalize_columns: bool = Field(
        default=True,
        description="SQL-safe snake_case column names, the original header kept beside each "
        "(new tables only: an existing table keeps the naming it was created with)",
    )
    try_parse_dates: bool = Field(
        default=True, description="ISO 8601 dates/timestamps in CSV/TSV/JSON text become typed"
    )
    json_flatten: bool = Field(
        default=False,
        description="nested objects become top-level columns (parent_child) instead of structs",
    )
    mixed_types: MixedTypes = Field(
        default="widen",
        description="a value after the rows types were inferred from that does not fit: "
        "widen the column (read every row) or quarantine naming column, row and value",
    )


@dataclass(frozen=True)
class ObjectFormat:
    format: FileFormat
    compression: Compression | None = None

    def __str__(self) -> str:
        return self.format + (f" ({self.compression})" if self.compression else "")


@dataclass
class ReadResult:
    """An object's rows (``frame`` when read whole, ``lazy`` when streamed) and, per column, the
    name the object itself gave it (every column when names are normalised; none otherwise)."""

    frame: pl.DataFrame | None = None
    lazy: pl.LazyFrame | None = None
    columns: dict[str, str] = field(default_factory=dict)


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


# -- formats by extension ------------------------------------------------------------------------
def split_extension(key: str) -> tuple[str, Compression | None]:
    """The format extension of a key's last segment and its compression suffix, if any:
    ``a/b.csv.gz`` -> ``(".csv", "gzip")``."""
    name = key.rsplit("/", 1)[-1].lower()
    compression: Compression | None = None
    for ext, comp in COMPRESSIONS.items():
        if name.endswith(ext):
            compression, name = comp, name[: -len(ext)]
            break
    dot = name.rfind(".")
    return (name[dot:] if dot > 0 else ""), compression


def detect_object(key: str, declared: DeclaredFormat = "auto") -> ObjectFormat:
    """The file format (declared, or by extension) and compression (by suffix) of an object."""
    suffix, compression = split_extension(key)
    if declared != "auto":
        return ObjectFormat(declared, compression)
    fmt = EXTENSIONS.get(suffix)
    if fmt is None:
        known = " ".join(EXTENSIONS)
        zipped = " ".join(COMPRESSIONS)
        seen = suffix or "(none)"
        if compression:
            seen += f" under {compression} compression"
        hint = _HINTS.get(suffix)
        raise BadObject(
            "unknown_format",
            f"cannot tell the file format of '{key}' from its extension {seen}"
            + (f": {hint}" if hint else "")
            + f"; readable: {known}, each optionally compressed as {zipped}; "
            "or declare file_format on the route",
        )
    return ObjectFormat(fmt, compression)


def detect_format(key: str, declared: DeclaredFormat = "auto") -> FileFormat:
    """The file format of an object (``BadObject("unknown_format")`` when the extension names
    none); compression suffixes are looked through (``.csv.gz`` is CSV)."""
    return detect_object(key, declared).format


def _sniff_compression(head: bytes) -> Compression | None:
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    if head.startswith(b"BZh") and head[4:10] == b"1AY&SY":
        return "bzip2"
    return None


# -- column names --------------------------------------------------------------------------------
_CAMEL = (
    re.compile(r"([a-z])([A-Z])"),  # studyName -> study_Name
    re.compile(r"([A-Z]+)([A-Z][a-z])"),  # HTTPStatus -> HTTP_Status
    re.compile(r"([0-9])([A-Z][a-z])"),  # iso3166Code -> iso3166_Code
)
_WORDS = {"%": " pct ", "#": " num ", "&": " and ", "ß": "ss", "æ": "ae", "ø": "o", "œ": "oe"}
_NOT_IDENT = re.compile(r"[^a-z0-9]+")
_POLARS_DUP = re.compile(r"^(.*)_duplicated_\d+$")


def column_name(header: str, position: int = 1) -> str:
    """A SQL-safe lowercase snake_case identifier for a header (``position``, 1-based, names a
    header with no letters or digits: ``column_3``)."""
    text = header
    for sym, word in _WORDS.items():
        text = text.replace(sym, word).replace(sym.upper(), word)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    for pattern in _CAMEL:
        text = pattern.sub(r"\1_\2", text)
    name = _NOT_IDENT.sub("_", text.lower()).strip("_")
    if not name:
        return f"column_{position}"
    return f"col_{name}" if name[0].isdigit() else name


def column_names(headers: Iterable[str]) -> list[str]:
    """``column_name`` of each header, made unique: a later header that lands on a taken name
    gets the first free ``_2``, ``_3``... (never one another header would get on its own)."""
    headers = list(headers)
    natural = [column_name(h, i) for i, h in enumerate(headers, 1)]
    reserved = set(natural)
    used: set[str] = set()
    out: list[str] = []
    for name in natural:
        if name in used:
            n = 2
            while f"{name}_{n}" in used or f"{name}_{n}" in reserved:
                n += 1
            name = f"{name}_{n}"
        used.add(name)
        out.append(name)
    return out


def _source_headers(names: list[str]) -> list[str]:
    """The object's own headers behind polars' names: polars renames a repeated header
    ``a`` to ``a_duplicated_0``."""
    seen: set[str] = set()
    out = []
    for name in names:
        m = _POLARS_DUP.match(name)
        out.append(m.group(1) if m and m.group(1) in seen else name)
        seen.add(name)
    return out


# -- reading -------------------------------------------------------------------------------------
class _CsvKwargs(TypedDict):
    """The arguments ``pl.read_csv`` and ``pl.scan_csv`` both take from ``CsvOptions``."""

    separator: str
    has_header: bool
    quote_char: str | None
    null_values: list[str] | None
    skip_rows: int
    encoding: Literal["utf8", "utf8-lossy"]


def polars_csv_kwargs(opts: CsvOptions, fmt: FileFormat = "csv") -> _CsvKwargs:
    """What ``pl.read_csv``/``pl.scan_csv`` are given for ``opts`` (the raw-polars benchmark
    baseline reads with the same ones). Non-UTF-8 encodings are transcoded before polars."""
    return {
        "separator": opts.separator or ("\t" if fmt == "tsv" else ","),
        "has_header": opts.has_header,
        "quote_char": opts.quote_char,
        "null_values": opts.null_values or None,
        "skip_rows": opts.skip_rows,
        "encoding": "utf8-lossy" if opts.encoding == "utf8-lossy" else "utf8",
    }


@dataclass(frozen=True)
class ObjectReader:
    """How one route reads its objects into one table.

    ``normalize`` is the table's naming policy (snake_case names or the objects' own), decided
    by the table when it exists (see ``TableTarget.column_naming``) and by
    ``ReadOptions.normalize_columns`` when it does not. ``inflate_limit`` is how many
    decompressed bytes a compressed object may take in memory before it is streamed from a
    temporary file instead, like an uncompressed object of that size.
    """

    file_format: DeclaredFormat = "auto"
    csv: CsvOptions = field(default_factory=CsvOptions)
    options: ReadOptions = field(default_factory=ReadOptions)
    dtypes: Mapping[str, pl.DataType] | None = None
    normalize: bool = True
    inflate_limit: int = 256 * 1024 * 1024
    # A route's declared renames (``evolution.renamed_columns``): a column the object names
    # by its old header or old name lands in the table's column of the new name.
    renamed_columns: Mapping[str, str] = field(default_factory=dict)

    def detect(self, key: str) -> ObjectFormat:
        return detect_object(key, self.file_format)

    # -- whole objects -----------------------------------------------------------------------
    def read(self, key: str, data: bytes, workdir: Path | None = None) -> ReadResult:
        """Parse a (small) object; an empty or unparseable one raises ``BadObject``. A compressed
        object that inflates past ``inflate_limit`` is streamed from a file in ``workdir``."""
        obj = self.detect(key)
        if not data or data.isspace():
            raise BadObject("empty", "the object has no content")
        compression = obj.compression or _sniff_compression(data[:16])
        if compression is not None:
            inflated = _inflate(data, compression, self.inflate_limit, workdir)
            if isinstance(inflated, Path):
                return self._scan(obj.format, inflated, workdir)
            data = inflated
            if not data or data.isspace():
                raise BadObject("empty", f"the {compression} object holds no content")
        try:
            frame = self._parse(obj.format, data)
            result = self._finish(obj.format, frame)
        except BadObject:
            raise
        except Exception as exc:
            raise BadObject("unparseable", f"not valid {obj}: {_first_line(exc)}") from exc
        assert result.frame is not None
        if result.frame.height == 0:
            raise BadObject("empty", f"the {obj.format} object has no rows")
        return result

    def _parse(self, fmt: FileFormat, data: bytes) -> pl.DataFrame:
        if fmt == "parquet":
            return pl.read_parquet(io.BytesIO(data))
        data = self._to_utf8(fmt, data)
        if fmt in ("csv", "tsv"):
            return self._read_csv(fmt, data)
        return self._read_json(data)

    def _to_utf8(self, fmt: FileFormat, data: bytes) -> bytes:
        encoding: Encoding = self.csv.encoding if fmt in ("csv", "tsv") else "utf8"
        if data.startswith(_BOMS_UTF16):
            encoding = "utf16"
        elif data.startswith(_BOM_UTF8) and fmt not in ("csv", "tsv"):
            data = data[3:]  # polars' CSV reader skips a UTF-8 BOM itself; its JSON readers not
        if encoding in _PY_CODEC:
            try:
                return data.decode(_PY_CODEC[encoding]).encode()
            except UnicodeDecodeError as exc:
                raise _undecodable(data, encoding, exc) from exc
        return data

    def _read_csv(self, fmt: FileFormat, data: bytes) -> pl.DataFrame:
        kwargs = polars_csv_kwargs(self.csv, fmt)
        overrides: dict[str, pl.DataType] | None = None

        def attempt(rows: int | None) -> pl.DataFrame:
            return pl.read_csv(
                io.BytesIO(data), infer_schema_length=rows, schema_overrides=overrides, **kwargs
            )

        def head(rows: int) -> pl.Schema:  # inference only: nothing past the rows is parsed
            return pl.scan_csv(
                io.BytesIO(data), infer_schema_length=rows, schema_overrides=overrides, **kwargs
            ).collect_schema()

        try:
            if self.dtypes:  # declared types are applied while parsing, by the header's names
                overrides = self._declared(head(0).names()) or None
            return self._inferred(attempt, head, self.csv.infer_schema_length)
        except pl.exceptions.ComputeError as exc:
            if self.csv.encoding == "utf8" and "utf-8" in str(exc).lower():
                raise _undecodable_utf8(data) from exc
            raise

    def _read_json(self, data: bytes) -> pl.DataFrame:
        start = data.lstrip()[:1]
        if start == b"[":

            def attempt(rows: int | None) -> pl.DataFrame:
                return pl.read_json(io.BytesIO(data), infer_schema_length=rows)

            def head(rows: int) -> pl.Schema:
                first = json.dumps(json.loads(data)[:rows]).encode()
                return pl.read_json(io.BytesIO(first), infer_schema_length=rows).schema

        else:

            def attempt(rows: int | None) -> pl.DataFrame:
                return pl.read_ndjson(io.BytesIO(data), infer_schema_length=rows)

            def head(rows: int) -> pl.Schema:
                lazy = pl.scan_ndjson(io.BytesIO(data), infer_schema_length=rows)
                return lazy.collect_schema()

        try:
            frame = self._inferred(attempt, head, JSON_INFER_ROWS)
        except pl.exceptions.ComputeError as exc:
            if "utf-8" in str(exc).lower():
                raise _undecodable_utf8(data) from exc
            if start != b"{":
                raise
            try:  # one pretty-printed object: a single row
                frame = pl.read_json(io.BytesIO(data), infer_schema_length=None)
            except Exception:
                raise exc from None
        if self.dtypes:
            frame = _cast_declared(frame, self._declared(frame.columns))
        return frame

    def _inferred(
        self,
        attempt: Callable[[int | None], pl.DataFrame],
        head: Callable[[int], pl.Schema],
        rows: int | None,
    ) -> pl.DataFrame:
        """``attempt`` with types inferred from ``rows`` rows; when a later value does not fit,
        widen (read again seeing every row) or quarantine it, as ``mixed_types`` says (``head``
        gives the types the first rows alone infer)."""
        try:
            return attempt(rows)
        except pl.exceptions.ComputeError as exc:
            if rows is None or "utf-8" in str(exc).lower():
                raise
            first = exc
        try:
            frame = attempt(None)
        except Exception:
            raise first from None  # not a late value: the object does not parse
        if self.options.mixed_types == "quarantine":
            assert rows is not None
            raise _late_value(frame, head(rows), rows, first)
        return frame

    def _declared(self, names: list[str]) -> dict[str, pl.DataType]:
        """The route's declared types by the object's column names; a declared name matches a
        column by its name in the object or its normalised one (either spelling works)."""
        if not self.dtypes:
            return {}
        headers = _source_headers(names)
        out = {}
        for name, header, norm in zip(names, headers, column_names(headers), strict=True):
            for key in (name, header, norm):
                if key in self.dtypes:
                    out[name] = self.dtypes[key]
                    break
        return out

    def _finish(self, fmt: FileFormat, frame: pl.DataFrame) -> ReadResult:
        text = fmt != "parquet"
        if fmt == "parquet" and self.dtypes:
            frame = _cast_declared(frame, self._declared(frame.columns))
        paths = _struct_paths(frame.schema) if self.options.json_flatten else None
        if paths:
            frame = frame.select(_flatten_exprs(paths))
        declared = set(self._declared(frame.columns))
        if text and self.options.try_parse_dates:
            frame = _parse_iso_eager(frame, skip=declared)
        if text:  # a column with no values: no type of its own (it takes the table's)
            untyped = [
                pl.lit(None, pl.Null).alias(c)
                for c, t in frame.schema.items()
                if t == pl.String and c not in declared and frame[c].null_count() == frame.height
            ]
            if untyped:  # each call runs the engine: a burst of small objects pays for it
                frame = frame.with_columns(untyped)
        renames, originals = self._names(frame.columns, paths)
        changed = {k: v for k, v in renames.items() if k != v}
        if changed:
            frame = frame.rename(changed)
        return ReadResult(frame=frame, columns=originals)

    def _names(
        self, names: list[str], paths: dict[str, tuple[str, ...]] | None
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Renames (current name -> table name; empty: keep them all), and each table column's
        name in the object (every column when names are normalised, none otherwise)."""
        headers = _source_headers(names)
        if paths:
            headers = [
                ".".join(paths[n]) if len(paths.get(n, ())) > 1 else h
                for n, h in zip(names, headers, strict=True)
            ]
        if self.normalize:
            table = column_names(headers)
        elif paths:  # flattened, names kept: parent_child, never a dotted name
            table = [n.replace(".", "_") for n in names]
        else:
            table = list(names)
        if self.renamed_columns:
            table = [
                self.renamed_columns.get(h, self.renamed_columns.get(t, t))
                for h, t in zip(headers, table, strict=True)
            ]
        renames = dict(zip(names, table, strict=True))
        if self.normalize:
            return renames, dict(zip(table, headers, strict=True))
        return ({} if renames == {n: n for n in names} else renames), {}

    # -- large objects -----------------------------------------------------------------------
    def scan(self, key: str, path: Path, workdir: Path | None = None) -> ReadResult:
        """A lazy reader over a local file, for objects too large to load whole; compressed,
        non-UTF-8 or BOM-prefixed files are first rewritten as plain UTF-8 in ``workdir``."""
        obj = self.detect(key)
        with path.open("rb") as fh:
            head = fh.read(16)
        compression = obj.compression or _sniff_compression(head)
        if compression is not None:
            workdir = _workdir(workdir)
            path = _inflate_file(path, compression, workdir)
        return self._scan(obj.format, path, workdir)

    def _scan(self, fmt: FileFormat, path: Path, workdir: Path | None) -> ReadResult:
        try:
            if fmt != "parquet":
                path = self._utf8_file(fmt, path, workdir)
            lazy = self._lazy(fmt, path)
            result = self._finish_lazy(fmt, lazy)
            assert result.lazy is not None
            result.lazy.collect_schema()
        except BadObject:
            raise
        except Exception as exc:
            raise BadObject("unparseable", f"not valid {fmt}: {_first_line(exc)}") from exc
        return result

    def _utf8_file(self, fmt: FileFormat, path: Path, workdir: Path | None) -> Path:
        with path.open("rb") as fh:
            head = fh.read(4)
        encoding: Encoding = self.csv.encoding if fmt in ("csv", "tsv") else "utf8"
        if head.startswith(_BOMS_UTF16):
            encoding = "utf16"
        if encoding in _PY_CODEC:
            return _transcode_file(path, encoding, _workdir(workdir))
        if head.startswith(_BOM_UTF8) and fmt in ("ndjson", "json"):
            return _copy_from(path, 3, _workdir(workdir))  # polars' CSV reader skips a BOM
        return path

    def _lazy(self, fmt: FileFormat, path: Path) -> pl.LazyFrame:
        if fmt in ("csv", "tsv"):
            kwargs = polars_csv_kwargs(self.csv, fmt)
            rows = self.csv.infer_schema_length
            overrides: dict[str, pl.DataType] | None = None
            if self.dtypes:
                names = pl.scan_csv(path, infer_schema_length=0, **kwargs).collect_schema()
                overrides = self._declared(names.names()) or None
            return pl.scan_csv(path, infer_schema_length=rows, schema_overrides=overrides, **kwargs)
        if fmt == "parquet":
            lazy = pl.scan_parquet(path)
        else:
            with path.open("rb") as fh:
                array = fh.read(4096).lstrip()[:1] == b"["
            # A JSON array cannot be read in pieces: it is read whole (within max_object_bytes).
            if array:
                lazy = pl.read_json(path, infer_schema_length=None).lazy()
            else:
                lazy = pl.scan_ndjson(path, infer_schema_length=JSON_INFER_ROWS)
        declared = self._declared(lazy.collect_schema().names())
        return _cast_declared_lazy(lazy, declared) if declared else lazy

    def _finish_lazy(self, fmt: FileFormat, lazy: pl.LazyFrame) -> ReadResult:
        schema = lazy.collect_schema()
        paths = _struct_paths(schema) if self.options.json_flatten else None
        if paths:
            lazy = lazy.select(_flatten_exprs(paths))
            schema = lazy.collect_schema()
        if fmt != "parquet" and self.options.try_parse_dates:
            declared = set(self._declared(schema.names()))
            strings = [c for c, t in schema.items() if t == pl.String and c not in declared]
            if strings:
                sample = lazy.select(strings).head(DATE_SAMPLE_ROWS).collect()
                lazy = lazy.with_columns(_parse_iso_lazy(sample))
        renames, originals = self._names(schema.names(), paths)
        if any(k != v for k, v in renames.items()):
            lazy = lazy.rename({k: v for k, v in renames.items() if k != v})
        return ReadResult(lazy=lazy, columns=originals)


def _workdir(workdir: Path | None) -> Path:
    """Where rewritten copies of an object go: the caller's directory (removed with its batch),
    else a new temporary one."""
    return workdir if workdir is not None else Path(tempfile.mkdtemp(prefix="lakewire-read-"))


def read_frame(
    data: bytes,
    fmt: FileFormat,
    csv: CsvOptions | None = None,
    dtypes: dict[str, pl.DataType] | None = None,
) -> pl.DataFrame:
    """A whole (small) object as a frame, names kept as the object has them."""
    reader = ObjectReader(fmt, csv or CsvOptions(), dtypes=dtypes, normalize=False)
    result = reader.read(f"object.{fmt}", data)
    assert result.frame is not None
    return result.frame


def scan_frame(
    path: Path,
    fmt: FileFormat,
    csv: CsvOptions | None = None,
    dtypes: dict[str, pl.DataType] | None = None,
) -> pl.LazyFrame:
    """A lazy reader over a local file, names kept as the object has them."""
    reader = ObjectReader(fmt, csv or CsvOptions(), dtypes=dtypes, normalize=False)
    result = reader.scan(path.name, path)
    assert result.lazy is not None
    return result.lazy


# -- compression and encodings -------------------------------------------------------------------
_CHUNK = 1 << 20


def _inflate(
    data: bytes, compression: Compression, limit: int, workdir: Path | None
) -> bytes | Path:
    """The decompressed bytes, or (past ``limit`` bytes, with a ``workdir``) a file of them."""
    stream = pa.input_stream(pa.py_buffer(data), compression=_ARROW_CODEC[compression])
    parts: list[bytes] = []
    size = 0
    try:
        while chunk := stream.read(_CHUNK):
            parts.append(chunk)
            size += len(chunk)
            if size > limit and workdir is not None:
                out = _temp_path(workdir, "inflated")
                with out.open("wb") as fh:
                    fh.writelines(parts)
                    while chunk := stream.read(_CHUNK):
                        fh.write(chunk)
                return out
    except (OSError, pa.ArrowException) as exc:
        raise BadObject("unparseable", f"not valid {compression} data: {_first_line(exc)}") from exc
    return b"".join(parts)


def _inflate_file(path: Path, compression: Compression, workdir: Path) -> Path:
    out = _temp_path(workdir, "inflated")
    try:
        with (
            pa.input_stream(str(path), compression=_ARROW_CODEC[compression]) as src,
            out.open("wb") as fh,
        ):
            while chunk := src.read(_CHUNK):
                fh.write(chunk)
    except (OSError, pa.ArrowException) as exc:
        raise BadObject("unparseable", f"not valid {compression} data: {_first_line(exc)}") from exc
    return out


def _transcode_file(path: Path, encoding: Encoding, workdir: Path) -> Path:
    out = _temp_path(workdir, "utf8")
    decoder = codecs.getincrementaldecoder(_PY_CODEC[encoding])()
    offset = 0
    with path.open("rb") as src, out.open("w", encoding="utf-8", newline="") as fh:
        while True:
            chunk = src.read(_CHUNK)
            try:
                fh.write(decoder.decode(chunk, final=not chunk))
            except UnicodeDecodeError as exc:
                raise BadObject(
                    "unparseable",
                    f"not valid {_LABEL[encoding]} text at byte {offset + exc.start}: "
                    f"{chunk[exc.start : exc.start + 8]!r}",
                ) from exc
            if not chunk:
                return out
            offset += len(chunk)


def _copy_from(path: Path, skip: int, workdir: Path) -> Path:
    out = _temp_path(workdir, "nobom")
    with path.open("rb") as src, out.open("wb") as fh:
        src.seek(skip)
        while chunk := src.read(_CHUNK):
            fh.write(chunk)
    return out


def _temp_path(workdir: Path, what: str) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"{what}-", dir=workdir)
    os.close(fd)
    return Path(name)


_LABEL: dict[Encoding, str] = {
    "utf8": "UTF-8",
    "utf8-lossy": "UTF-8",
    "latin1": "Latin-1",
    "cp1252": "Windows-1252",
    "utf16": "UTF-16",
}


def _where(data: bytes, offset: int) -> str:
    line = data.count(b"\n", 0, offset) + 1
    return f"byte {offset} (line {line})"


def _undecodable(data: bytes, encoding: Encoding, exc: UnicodeDecodeError) -> BadObject:
    bad = data[exc.start : exc.start + 8]
    return BadObject(
        "unparseable",
        f"not valid {_LABEL[encoding]} text at {_where(data, exc.start)}: {bad!r}",
    )


def _undecodable_utf8(data: bytes) -> BadObject:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 8]
        where = _where(data, exc.start)
    else:
        bad, where = b"", "some byte"
    return BadObject(
        "unparseable",
        f"not valid UTF-8 text at {where}: {bad!r}; if the file is Latin-1 or Windows-1252 "
        "(what Excel writes on Windows), set csv.encoding to latin1 or cp1252 on the route",
    )


# -- values: dates, declared types, flattening ---------------------------------------------------
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}(?P<sep>[T ])\d{2}:\d{2}(?P<sec>:\d{2}(?P<frac>[.,]\d{1,9})?)?"
    r"(?P<zone>\s?(Z|[+-]\d{2}(:?\d{2})?))?$"
)


def _iso_kind(value: str) -> tuple[pl.DataType, str | None] | None:
    """The type an ISO date/timestamp text parses to, and its exact strptime format (None when
    only polars' inference reads it), or None when ``value`` is not ISO 8601."""
    if _ISO_DATE.match(value):
        return pl.Date(), "%Y-%m-%d"
    m = _ISO_DATETIME.match(value)
    if m is None:
        return None
    zoned = m.group("zone") is not None
    dtype = pl.Datetime("us", "UTC") if zoned else pl.Datetime("us")
    if zoned or m.group("frac"):
        return dtype, None
    return dtype, f"%Y-%m-%d{m.group('sep')}%H:%M" + (":%S" if m.group("sec") else "")


def _iso_expr(col: str, dtype: pl.DataType, fmt: str | None, strict: bool) -> pl.Expr:
    c = pl.col(col)
    if dtype == pl.Date:
        return c.str.to_date("%Y-%m-%d", strict=strict).alias(col)
    zone = "UTC" if isinstance(dtype, pl.Datetime) and dtype.time_zone else None
    return c.str.to_datetime(fmt, time_unit="us", time_zone=zone, strict=strict, cache=False).alias(
        col
    )


def _first_value(series: pl.Series) -> str | None:
    if series.null_count() == series.len():
        return None
    return str(series[int(series.is_not_null().arg_max() or 0)])


def _parse_iso_eager(frame: pl.DataFrame, skip: set[str]) -> pl.DataFrame:
    """The frame with each text column whose every value is an ISO date (or timestamp) turned
    into that type; a column with any other value stays text."""
    parsed: list[pl.Series] = []
    for col, dtype in frame.schema.items():
        if dtype != pl.String or col in skip:
            continue
        value = _first_value(frame[col])
        kind = _iso_kind(value) if value else None
        if kind is None:
            continue
        target, fmt = kind
        nulls = frame[col].null_count()
        for f in (fmt, None) if fmt else (None,):
            out = frame.select(_iso_expr(col, target, f, strict=False)).to_series()
            if out.null_count() == nulls:
                parsed.append(out)
                break
    return frame.with_columns(parsed) if parsed else frame


def _parse_iso_lazy(sample: pl.DataFrame) -> list[pl.Expr]:
    """For a streamed object: the text columns whose sampled values are all ISO dates become
    dates, strictly (a later non-date value fails the object, naming it)."""
    exprs = []
    for col in sample.columns:
        value = _first_value(sample[col])
        kind = _iso_kind(value) if value else None
        if kind is None:
            continue
        target, _ = kind
        parsed = sample.select(_iso_expr(col, target, None, strict=False)).to_series()
        if parsed.null_count() == sample[col].null_count():
            exprs.append(_iso_expr(col, target, None, strict=True))
    return exprs


def parse_iso_dates(frame: pl.DataFrame) -> pl.DataFrame:
    """A frame with its ISO date/timestamp text columns typed (what ingestion does after
    ``pl.read_csv``; the raw-polars benchmark baseline can call it to read alike)."""
    return _parse_iso_eager(frame, set())


def _cast_expr(col: str, src: pl.DataType, dst: pl.DataType) -> pl.Expr:
    """A strict cast that also reads text as dates/timestamps (polars' cast does not)."""
    if src == pl.String and dst == pl.Date:
        return pl.col(col).str.strip_chars().str.to_date(strict=True).alias(col)
    if src == pl.String and isinstance(dst, pl.Datetime):
        zone = "UTC" if dst.time_zone else None
        return (
            pl.col(col)
            .str.strip_chars()
            .str.to_datetime(time_unit="us", time_zone=zone, strict=True)
            .cast(dst)
            .alias(col)
        )
    return pl.col(col).cast(dst, strict=True).alias(col)


def _cast_declared(frame: pl.DataFrame, declared: Mapping[str, pl.DataType]) -> pl.DataFrame:
    present = {c: t for c, t in declared.items() if c in frame.columns and frame.schema[c] != t}
    if not present:
        return frame
    try:
        return frame.with_columns(_cast_expr(c, frame.schema[c], t) for c, t in present.items())
    except Exception as exc:
        bad = _bad_value(frame, present, "the route's schema")
        raise bad or BadObject("schema_conflict", _first_line(exc)) from exc


def _cast_declared_lazy(lazy: pl.LazyFrame, declared: Mapping[str, pl.DataType]) -> pl.LazyFrame:
    """Declared types for the columns the object has (a declared column it lacks is left to
    the table: a missing column is null, as for a small object)."""
    schema = lazy.collect_schema()
    casts = [_cast_expr(c, schema[c], t) for c, t in declared.items() if c in schema]
    return lazy.with_columns(casts) if casts else lazy


def _struct_paths(schema: pl.Schema) -> dict[str, tuple[str, ...]] | None:
    """Top-level names after flattening, each with its field path; None when nothing nests."""
    if not any(isinstance(t, pl.Struct) for t in schema.values()):
        return None
    out: dict[str, tuple[str, ...]] = {}

    def walk(path: tuple[str, ...], dtype: pl.DataType) -> None:
        if isinstance(dtype, pl.Struct) and dtype.fields:
            for f in dtype.fields:
                walk((*path, f.name), _instance(f.dtype))
        else:
            out[".".join(path)] = path

    for name, dtype in schema.items():
        walk((name,), dtype)
    return out


def _flatten_exprs(paths: dict[str, tuple[str, ...]]) -> list[pl.Expr]:
    exprs = []
    for name, path in paths.items():
        expr = pl.col(path[0])
        for part in path[1:]:
            expr = expr.struct.field(part)
        exprs.append(expr.alias(name))
    return exprs


# -- one batch's schema --------------------------------------------------------------------------
def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:500] if text else type(exc).__name__


def storable(dtype: pl.DataType) -> pl.DataType:
    """The type a column is stored as: tables hold microsecond times and no null-typed columns
    (also inside structs and lists)."""
    if isinstance(dtype, pl.Datetime):
        return pl.Datetime("us", dtype.time_zone)
    if dtype == pl.Null:
        return pl.String()
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return pl.String()
    if isinstance(dtype, pl.Struct):
        return pl.Struct([pl.Field(f.name, storable(_instance(f.dtype))) for f in dtype.fields])
    if isinstance(dtype, pl.List):
        return pl.List(storable(_instance(dtype.inner)))
    return dtype


def _instance(dtype: PolarsDataType) -> pl.DataType:
    """A nested field's type as an instance (polars may hold a bare class, ``pl.Int64``)."""
    return dtype if isinstance(dtype, pl.DataType) else dtype()


def _wider(a: pl.DataType, b: pl.DataType) -> pl.DataType | None:
    """The type two objects' values of one new column both fit: int and float make float, a
    date and a timestamp a timestamp. Text and numbers make no wider type: across objects that
    is more likely one bad object than a text column, so the later object conflicts."""
    if a == b or b == pl.Null:
        return a
    if a == pl.Null:
        return b
    if a.is_integer() and b.is_integer():
        return pl.Int64()
    if a.is_numeric() and b.is_numeric() and not (a.is_decimal() or b.is_decimal()):
        return pl.Float64()
    if isinstance(a, pl.Datetime) and b == pl.Date:
        return a
    if isinstance(b, pl.Datetime) and a == pl.Date:
        return b
    return None


def target_schema(
    table: pl.Schema | None,
    frames: dict[str, pl.Schema],
    add_columns: bool,
) -> tuple[pl.Schema, dict[str, BadObject]]:
    """The schema a batch is written with, and the sources that conflict with it.

    Columns the table has keep their type (a source whose values cannot be stored in it
    conflicts; text, and floats into integer columns, are checked value by value in ``fit``).
    New columns are added, nullable, in first-seen order when ``add_columns`` allows it, with
    the wider type when the batch's objects differ (int in one object and float in another:
    float); otherwise the first-seen type wins and the later object conflicts.
    """
    fixed: dict[str, pl.DataType] = dict(table or {})
    new: dict[str, pl.DataType] = {}
    conflicts: dict[str, BadObject] = {}
    for name, schema in frames.items():
        added: dict[str, pl.DataType] = {}
        for col, dtype in schema.items():
            if col in fixed:
                if not _castable(storable(dtype), fixed[col]) and dtype != pl.Null:
                    conflicts[name] = BadObject(
                        "schema_conflict",
                        f"column '{col}' is {dtype} in the object but {fixed[col]} in the table",
                    )
                    break
            elif table is not None and not add_columns:
                conflicts[name] = BadObject(
                    "schema_conflict",
                    f"column '{col}' is not in the table and the route does not add columns",
                )
                break
            else:
                have = added.get(col, new.get(col))
                wide = dtype if have is None else _wider(have, dtype)
                if wide is None:
                    conflicts[name] = BadObject(
                        "schema_conflict",
                        f"column '{col}' is {dtype} in the object but {have} in another object "
                        "of the batch",
                    )
                    break
                added[col] = wide
        else:
            new.update(added)
    out = dict(fixed)
    out.update({c: storable(t) for c, t in new.items()})
    return pl.Schema(out), conflicts


def schema_changes(table: pl.Schema | None, schema: pl.Schema) -> list[str]:
    """What a batch's schema adds to its table, one line a change (for a run's metadata)."""
    if table is None:
        return [f"created with {len(schema)} columns"]
    return [f"added column {c} ({t})" for c, t in schema.items() if c not in table]


def _castable(src: pl.DataType, dst: pl.DataType) -> bool:
    """Types whose values can be stored in ``dst``: without loss, or checked value by value
    when the batch is fitted (text into any scalar type; floats into integers)."""
    if src == dst or src == pl.Null:
        return True
    if dst == pl.String:
        return True  # text formats infer types per file; any value has a text form
    if src == pl.String:
        return not dst.is_nested()
    if src.is_integer() and (dst.is_integer() or dst.is_float() or dst.is_decimal()):
        return True
    if src.is_float() and (dst.is_float() or dst.is_integer()):
        return True
    if isinstance(src, pl.Datetime) and isinstance(dst, pl.Datetime):
        return True
    if isinstance(src, pl.Struct) and isinstance(dst, pl.Struct):
        return [f.name for f in src.fields] == [f.name for f in dst.fields] and all(
            _castable(_instance(a.dtype), _instance(b.dtype))
            for a, b in zip(src.fields, dst.fields, strict=True)
        )
    return src == pl.Date and isinstance(dst, pl.Datetime)


def fit(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """Cast a frame to the batch schema, adding missing columns as nulls; a value that cannot
    be stored raises ``BadObject`` naming its column, row and value."""
    casts = {c: t for c, t in schema.items() if c in frame.columns and frame.schema[c] != t}
    lossy = _fractions(frame, casts)
    if lossy is not None:
        raise lossy
    exprs = []
    for col, dtype in schema.items():
        if col in casts:
            exprs.append(_cast_expr(col, frame.schema[col], dtype))
        elif col in frame.columns:
            exprs.append(pl.col(col))
        else:
            exprs.append(pl.lit(None, dtype).alias(col))
    try:
        return frame.select(exprs)
    except Exception as exc:
        bad = _bad_value(frame, casts, "the table")
        raise bad or BadObject("schema_conflict", _first_line(exc)) from exc


def _fractions(frame: pl.DataFrame, casts: Mapping[str, pl.DataType]) -> BadObject | None:
    """A float value bound for an integer column that is not a whole number."""
    for col, dst in casts.items():
        src = frame.schema[col]
        if src.is_float() and dst.is_integer():
            s = frame[col]
            bad = s.is_not_null() & ~(s.is_finite() & (s == s.floor())).fill_null(False)
            if bad.any():
                return _value_reason(col, s, bad, dst, "the table")
    return None


def _bad_value(
    frame: pl.DataFrame, casts: Mapping[str, pl.DataType], whose: str
) -> BadObject | None:
    """The first column and row whose value does not convert to its target type."""
    for col, dst in casts.items():
        s = frame[col]
        try:
            converted = frame.select(_lenient(col, s.dtype, dst)).to_series()
        except Exception:
            return BadObject(
                "schema_conflict",
                f"column '{col}' is {s.dtype} in the object and cannot be stored as {dst} "
                f"({whose}'s type)",
            )
        bad = converted.is_null() & s.is_not_null()
        if bad.any():
            return _value_reason(col, s, bad, dst, whose)
    return None


def _lenient(col: str, src: pl.DataType, dst: pl.DataType) -> pl.Expr:
    """``col`` converted to ``dst``, null where a value does not convert."""
    if src == pl.String and dst == pl.Date:
        return pl.col(col).str.strip_chars().str.to_date(strict=False)
    if src == pl.String and isinstance(dst, pl.Datetime):
        zone = "UTC" if dst.time_zone else None
        return (
            pl.col(col)
            .str.strip_chars()
            .str.to_datetime(time_unit="us", time_zone=zone, strict=False)
            .cast(dst, strict=False)
        )
    if src.is_float() and dst.is_integer():  # a fraction is no integer (a cast would truncate)
        c = pl.col(col)
        return pl.when(c == c.floor()).then(c.cast(dst, strict=False))
    return pl.col(col).cast(dst, strict=False)


def _value_reason(
    col: str, s: pl.Series, bad: pl.Series, dst: pl.DataType, whose: str
) -> BadObject:
    row = int(bad.arg_max() or 0)
    count = int(bad.sum())
    more = f" (and {count - 1} more rows)" if count > 1 else ""
    return BadObject(
        "schema_conflict",
        f"column '{col}' row {row + 1}: {s[row]!r} cannot be stored as {dst} ({whose}'s type)"
        + more,
    )


def _late_value(frame: pl.DataFrame, head: pl.Schema, rows: int, exc: BaseException) -> BadObject:
    """With ``mixed_types: quarantine``: the first value after the first ``rows`` rows that
    does not fit the type those rows gave its column."""
    for col, dtype in head.items():
        if col in frame.columns and frame.schema[col] != dtype and dtype != pl.String:
            s = frame[col]
            converted = frame.select(_lenient(col, s.dtype, dtype)).to_series()
            bad = converted.is_null() & s.is_not_null()
            if bad.any():
                row = int(bad.arg_max() or 0)
                return BadObject(
                    "schema_conflict",
                    f"column '{col}' row {row + 1}: {s[row]!r} is not {dtype} like the first "
                    f"{rows} rows (route read.mixed_types is quarantine; widen would store "
                    f"the column as {s.dtype})",
                )
    return BadObject("schema_conflict", _first_line(exc))
