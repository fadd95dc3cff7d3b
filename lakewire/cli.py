"""``lakewire``: run the embedded platform and work with its data from a shell."""

from __future__ import annotations

import csv
import json
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from lakehouse.objectstore import ObjectStore, StorageError, open_object_store
from lakehouse.settings import Settings
from lakewire import supervisor
from lakewire.cli_tenants import tenant_app

if TYPE_CHECKING:
    from lakehouse.routes import RouteSet

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console(soft_wrap=True)  # a line a script parses must not be folded


def print_table(table: Table) -> None:
    """A table as wide as it needs when the output is not a terminal (a pipe, a file, a test):
    a script or a log then sees whole cells, never ones folded at an assumed 80 columns."""
    if console.is_terminal:
        console.print(table)
    else:  # rich caps a print's width at the console's: print through a wide one
        Console(file=console.file, soft_wrap=True, width=max(console.width, 200)).print(table)


err = Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def _banner(settings: Settings) -> None:
    console.print(
        f"""
[bold green]Lakewire is up[/bold green] (data in {settings.resolved_data_dir})

  Object Storage page   {settings.storage_url}/
  Storage API (OpenAPI) {settings.storage_url}/docs
  Dagster UI            {settings.dagster_url}/
  NATS JetStream        {settings.effective_nats_url}  stream {settings.stream_name}

Put a CSV and query it:
  lakewire put orders.csv landing/orders/orders.csv
  lakewire sql "SELECT count(*) FROM delta.default.orders"

API key for the Object Storage page and API: lakewire status --show-key
""",
        highlight=False,
    )


@app.command()
def up(
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Return once healthy.")] = False,
) -> None:
    """Start what is not running (all of it on a stopped platform); wait until healthy.

    The services run under supervisord, which restarts one that dies. On a running platform
    this starts only what is missing and leaves the rest alone.
    """
    settings = Settings()
    try:
        result = supervisor.start(settings, progress=lambda m: console.print(f"  [dim]{m}[/dim]"))
    except supervisor.PlatformError as exc:
        raise _fail(str(exc), 2) from None
    if result.fresh:
        _banner(settings)
    elif result.started:
        console.print(
            f"Lakewire was running from {settings.resolved_data_dir}; started "
            f"{', '.join(result.started)}, left {len(result.already)} running services alone",
            highlight=False,
        )
    else:
        console.print(
            f"Lakewire is already up (data in {settings.resolved_data_dir}); nothing to do",
            highlight=False,
        )
    for reason in result.failed.values():
        err.print(f"[red]error:[/red] {reason}", highlight=False)
    if result.failed:
        raise typer.Exit(2)
    if detach:
        return
    if not result.fresh:
        console.print("It runs in the background under supervisord; 'lakewire down' stops it.")
        return
    console.print("Press Ctrl-C to stop.")

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        supervisor.wait_forever(settings)
        err.print("supervisord exited (see logs under the data dir)")
    except KeyboardInterrupt:
        pass
    finally:
        stopped = supervisor.stop(settings)
        console.print(f"stopped: {', '.join(stopped) or 'nothing'}")


@app.command()
def down() -> None:
    """Stop every service of a running platform (run workers included) and its supervisor."""
    stopped = supervisor.stop(Settings())
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


@app.command()
def status(
    show_key: Annotated[bool, typer.Option("--show-key", help="Print the API key.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """Per service: state, pid, uptime, restarts, last exit reason; URLs; (on request) the key.

    Exits 3 unless every service is RUNNING.
    """
    from lakewire import health
    from storage_service.auth import load_or_create_api_key

    settings = Settings()
    report = supervisor.status(settings)
    report["health"] = health.collect(settings)  # issue 15: beyond "running"
    if as_json:
        if show_key:
            report["api_key"] = load_or_create_api_key(settings)
        print(json.dumps(report, indent=2))
    else:
        table = Table("service", "state", "pid", "uptime", "restarts", "last exit")
        for row in report["services"]:
            table.add_row(
                row["name"],
                row["state"],
                str(row["pid"] or "-"),
                _age(row["uptime_seconds"]),
                str(row["restarts"]),
                row["last_exit"] or "-",
            )
        print_table(table)
        for row in report["services"]:
            if row.get("last_log_lines"):
                console.print(f"last lines of {row['log']}:", highlight=False)
                for line in row["last_log_lines"][-5:]:
                    console.print(f"  {line}", highlight=False, markup=False)
        sup = report["supervisor"]
        state = f"supervisord pid {sup['pid']}" if sup["running"] else "supervisord not running"
        console.print(f"Supervisor:          {state} (log {sup['log']})", highlight=False)
        console.print(f"Object Storage page: {settings.storage_url}/")
        console.print(f"Dagster UI:          {settings.dagster_url}/")
        for line in health.lines(report["health"]):
            console.print(line, highlight=False, markup=False)
        if show_key:
            console.print(f"API key: {load_or_create_api_key(settings)}", highlight=False)
    if not report["all_running"]:
        raise typer.Exit(3)


@app.command()
def restart(
    services: Annotated[
        list[str] | None, typer.Argument(help="Services to restart; default: all, in order.")
    ] = None,
) -> None:
    """Stop and start services through the supervisor, waiting until each is healthy again."""
    settings = Settings()
    try:
        done = supervisor.restart(settings, services or [])
    except supervisor.PlatformError as exc:
        raise _fail(str(exc), 2) from None
    console.print(f"restarted: {', '.join(done)}", highlight=False)


@app.command()
def logs(
    services: Annotated[
        list[str] | None,
        typer.Argument(help="Services (or 'supervisord'); default: all of them."),
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing lines.")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", help="Lines of history per log.")] = 20,
) -> None:
    """Print the services' logs (kept under <data dir>/logs, rotated at 10 MB, 5 kept)."""
    import time

    settings = Settings()
    try:
        paths = supervisor.log_files(settings, services or [])
    except supervisor.PlatformError as exc:
        raise _fail(str(exc), 2) from None
    prefix = len(paths) > 1
    offsets: dict[Path, int] = {}
    for path in paths:
        size = path.stat().st_size if path.exists() else 0
        for line in _last_lines(path, lines):
            print(f"{path.stem} | {line}" if prefix else line)
        offsets[path] = size
    while follow:
        sys.stdout.flush()
        time.sleep(0.5)
        for path in paths:
            size = path.stat().st_size if path.exists() else 0
            if size < offsets[path]:  # rotated: the new file starts empty
                offsets[path] = 0
            if size > offsets[path]:
                with path.open("rb") as fh:
                    fh.seek(offsets[path])
                    chunk = fh.read(size - offsets[path])
                offsets[path] = size
                for line in chunk.decode(errors="replace").splitlines():
                    print(f"{path.stem} | {line}" if prefix else line)


def _last_lines(path: Path, n: int) -> list[str]:
    if not path.exists() or n <= 0:
        return []
    with path.open("rb") as fh:
        fh.seek(max(0, path.stat().st_size - 256 * 1024))
        return fh.read().decode(errors="replace").splitlines()[-n:]


@app.command()
def put(
    file: Annotated[Path, typer.Argument(help="Local file to upload.")],
    target: Annotated[str, typer.Argument(help="BUCKET/KEY, e.g. landing/orders/2024.csv")],
) -> None:
    """Upload a file into a bucket (it lands atomically: no partial object is ever seen)."""
    settings = Settings()
    if not file.is_file():
        raise _fail(f"no such file: {file}")
    bucket, _, key = target.partition("/")
    if not key or key.endswith("/"):
        key = (key or "") + file.name
    store = open_object_store(settings)
    try:
        info = store.put(bucket, key, file)
    except StorageError as exc:
        raise _fail(str(exc)) from None
    # The store's etag is the one users see everywhere else (API, events, ledger).
    console.print(f"put {bucket}/{info.key} ({info.size} bytes, etag {info.etag})", highlight=False)


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="SQL; tables as catalog.schema.table.")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="table, csv, json or parquet")
    ] = "table",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the result to this file.")
    ] = None,
    local: Annotated[
        bool,
        typer.Option("--local", help="Run in-process on the data dir, not through the service."),
    ] = False,
    engine: Annotated[
        str | None, typer.Option("--engine", help="trino or embedded (default: the platform's)")
    ] = None,
) -> None:
    """Run a query: through the service's SQL API when the platform runs, else in-process.

    Through the API the same authorisation applies as for SQL Studio (DECISIONS); ``--local``
    runs the engine in this process on the data dir, for the machine's owner.
    """
    import time

    from lakehouse.query import EngineName

    if fmt not in ("table", "csv", "json", "parquet"):
        raise _fail("--format is table, csv, json or parquet")
    if fmt == "parquet" and output is None:
        raise _fail("--format parquet needs --output FILE")
    if engine not in (None, "trino", "embedded"):
        raise _fail("--engine is trino or embedded")
    eng: EngineName | None = "trino" if engine == "trino" else "embedded" if engine else None
    settings = Settings()
    t0 = time.perf_counter()
    with err.status("running the query…", spinner="dots") if err.is_terminal else _nullctx():
        if not local and _service_up(settings):
            columns, rows, parquet = _sql_http(settings, query, eng, fmt == "parquet")
        else:
            columns, rows, parquet = _sql_local(settings, query, eng, fmt == "parquet")
    elapsed = time.perf_counter() - t0
    _write_result(columns, rows, parquet, fmt, output)
    if elapsed > 1 and err.is_terminal:
        err.print(f"{len(rows)} rows in {elapsed:.1f} s", highlight=False)


class _nullctx:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _service_up(settings: Settings) -> bool:
    import httpx

    try:
        return httpx.get(f"{settings.storage_url}/healthz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _sql_http(
    settings: Settings, query: str, engine: str | None, want_parquet: bool
) -> tuple[list[str], list[list[object]], bytes | None]:
    """Every page of the query through ``POST /api/sql`` (and the Parquet download)."""
    import httpx

    from storage_service.auth import load_or_create_api_key

    headers = {"Authorization": f"Bearer {load_or_create_api_key(settings)}"}
    body: dict[str, object] = {"statement": query, "limit": 10_000}
    if engine:
        body["engine"] = engine
    with httpx.Client(base_url=settings.storage_url, headers=headers, timeout=None) as client:
        resp = client.post("/api/sql", json=body)
        page = _sql_page(resp)
        columns = [c["name"] for c in page["columns"]]
        rows: list[list[object]] = list(page["rows"])
        while page["next_page_token"]:
            nxt = {"page_token": page["next_page_token"], "limit": 10_000}
            page = _sql_page(client.post("/api/sql", json=nxt))
            rows.extend(page["rows"])
        if page.get("truncated"):
            err.print(
                f"[yellow]warning:[/yellow] the result was cut at {len(rows)} rows "
                "(LAKEWIRE_SQL_MAX_ROWS); use --local for all of them",
                highlight=False,
            )
        parquet = None
        if want_parquet:
            dl = client.get(f"/api/sql/{page['query_id']}/download", params={"format": "parquet"})
            if dl.status_code != 200:
                raise _fail(f"download failed: HTTP {dl.status_code}")
            parquet = dl.content
    return columns, rows, parquet


def _sql_page(resp: object) -> dict[str, Any]:
    import httpx

    assert isinstance(resp, httpx.Response)
    if resp.status_code == 200:
        data: dict[str, Any] = resp.json()
        return data
    try:
        detail = resp.json()
    except ValueError:
        raise _fail(f"HTTP {resp.status_code}: {resp.text[:500]}") from None
    where = f" (line {detail['line']}, column {detail['column']})" if detail.get("line") else ""
    raise _fail(f"{detail.get('detail')}{where}")


def _sql_local(
    settings: Settings, query: str, engine: Any, want_parquet: bool
) -> tuple[list[str], list[list[object]], bytes | None]:
    from lakehouse.query import query_arrow
    from lakehouse.sql_guard import SqlError

    try:
        table = query_arrow(query, settings=settings, engine=engine, admin=True)
    except SqlError as exc:
        where = f" (line {exc.line}, column {exc.column})" if exc.line else ""
        raise _fail(f"{exc.message}{where}") from None
    parquet = None
    if want_parquet:
        import io

        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(table, buf)
        parquet = buf.getvalue()
    rows = [list(r.values()) for r in table.to_pylist()]
    return table.column_names, rows, parquet


def _write_result(
    columns: list[str],
    rows: list[list[object]],
    parquet: bytes | None,
    fmt: str,
    output: Path | None,
) -> None:
    if fmt == "parquet":
        assert output is not None and parquet is not None
        output.write_bytes(parquet)
        return
    out = output.open("w", newline="") if output else sys.stdout
    try:
        if fmt == "csv":
            writer = csv.writer(out)
            writer.writerow(columns)
            writer.writerows(rows)
        elif fmt == "json":
            records = [dict(zip(columns, r, strict=True)) for r in rows]
            print(json.dumps(records, default=str), file=out)
        else:
            table = Table(*columns)
            for row in rows:
                table.add_row(*(str(v) for v in row))
            if output:
                Console(file=out, soft_wrap=True, width=200).print(table)
            else:
                print_table(table)
    finally:
        if output:
            out.close()


@app.command()
def replay(
    target: Annotated[
        str | None, typer.Argument(help="BUCKET/KEY of the object to re-drive.")
    ] = None,
    quarantined: Annotated[
        bool, typer.Option("--quarantined", help="Re-drive every quarantined object.")
    ] = False,
    prefix: Annotated[
        str | None,
        typer.Option("--prefix", help="BUCKET/PREFIX: re-route every object under it (--route)."),
    ] = None,
    route: Annotated[
        str | None, typer.Option("--route", help="With --prefix: the route the objects take.")
    ] = None,
    remove_from: Annotated[
        str | None,
        typer.Option(
            "--remove-from",
            help="With --prefix: delete the objects' rows from this table (catalog.schema.table)"
            " once they are in the route's table, in the same run.",
        ),
    ] = None,
) -> None:
    """Re-emit an object's bucket event (after fixing it or its route); clears its quarantine.

    With --prefix and --route, re-drive every object under the prefix through that route, in a
    Dagster run per table (exactly once: a repeat moves nothing twice).
    """
    if prefix is not None or route is not None or remove_from is not None:
        _reroute(prefix, route, remove_from)
        return
    from lakehouse.routes import RoutesError
    from pipelines.reconcile import (
        EventsUnavailable,
        ReplayError,
        replay_object,
        replay_quarantined,
    )

    settings = Settings()
    if (target is None) == (not quarantined):
        raise _fail("give either BUCKET/KEY or --quarantined")
    store = open_object_store(settings)
    try:
        if quarantined:
            events = replay_quarantined(settings, store)
        else:
            assert target is not None
            bucket, _, key = target.partition("/")
            if not key:
                raise _fail(f"'{target}' is not BUCKET/KEY")
            events = [replay_object(settings, store, bucket, key)]
    except (ReplayError, RoutesError, StorageError, EventsUnavailable) as exc:
        raise _fail(str(exc)) from None
    for ev in events:
        console.print(f"replayed {ev.bucket}/{ev.key} (etag {ev.etag})", highlight=False)
    if not events:
        console.print("nothing in quarantine")


def _reroute(prefix: str | None, route: str | None, remove_from: str | None) -> None:
    import os

    from dagster import DagsterInstance

    from lakehouse.routes import RoutesError
    from pipelines.reroute import reroute

    if prefix is None or route is None:
        raise _fail("a re-route needs both --prefix BUCKET/PREFIX and --route NAME")
    settings = Settings()
    bucket, _, key_prefix = prefix.partition("/")
    # The platform's own instance, so the runs show in its Dagster UI with their logs.
    os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home))
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    try:
        result = reroute(
            settings,
            open_object_store(settings),
            DagsterInstance.get(),
            bucket,
            key_prefix,
            route,
            remove_from,
        )
    except (RoutesError, StorageError, ValueError) as exc:
        raise _fail(str(exc)) from None
    if not result.runs:
        console.print(f"no object under {prefix} matches route '{route}'")
    for run in result.runs:
        state = "ok" if run.success else "FAILED"
        console.print(
            f"{run.table}: {run.objects} objects, run {run.run_id} {state}", highlight=False
        )
    if not all(run.success for run in result.runs):
        raise typer.Exit(1)


@app.command()
def reconcile(
    grace: Annotated[
        float | None,
        typer.Option("--grace", help="Only objects older than this many seconds."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report, do not re-emit.")] = False,
) -> None:
    """Find landing objects that never reached their table and re-emit their events."""
    from lakehouse.routes import RoutesError
    from pipelines.reconcile import EventsUnavailable
    from pipelines.reconcile import reconcile as sweep

    settings = Settings()
    try:
        result = sweep(settings, open_object_store(settings), grace_seconds=grace, dry_run=dry_run)
    except (RoutesError, StorageError, EventsUnavailable) as exc:
        raise _fail(str(exc)) from None
    verb = "would re-emit" if dry_run else "re-emitted"
    for ev in result.missing:
        console.print(f"{verb} {ev.bucket}/{ev.key}", highlight=False)
    console.print(
        f"{result.listed} routed objects listed, {len(result.missing)} {verb}, "
        f"{result.quarantined} in quarantine",
        highlight=False,
    )


@app.command()
def demo(
    run: Annotated[
        bool, typer.Option("--run/--no-run", help="Also materialize the CO2 example pipeline.")
    ] = True,
) -> None:
    """Put generated samples into co2-data, ais-data, synthetic-data and landing, then run the
    example pipeline (dataset in datasets/, model and evaluation in models/, a Delta table)."""
    from lakewire import demo as demo_data

    settings = Settings()
    try:
        result = demo_data.load_samples(settings, open_object_store(settings))
    except StorageError as exc:
        raise _fail(str(exc)) from None
    for bucket in result.created_buckets:
        console.print(f"created bucket {bucket}", highlight=False)
    for path, rows in result.written.items():
        console.print(f"put {path} ({rows} rows)", highlight=False)
    with_ais = run and demo_data.ais_table_ready(settings)
    if run:
        run_id = demo_data.run_example(settings, with_ais=with_ais)
        console.print(f"example pipeline: run {run_id} ok", highlight=False)
        console.print(f"  {settings.dagster_url}/runs/{run_id}", highlight=False)
        console.print(
            "  models/co2/model.pkl, models/co2/evaluation.parquet, "
            "datasets/co2/emissions_clean.parquet",
            highlight=False,
        )
        for table in ("co2_by_country", *(["ais_vessels"] if with_ais else [])):
            console.print(f'  lakewire sql "SELECT * FROM delta.default.{table}"', highlight=False)
    if not with_ais:
        console.print(
            "landing/ais_positions/ becomes delta.default.ais_positions once the platform's "
            "sensor ingests it (lakewire up); then materialize the ais_example group in the "
            "Dagster UI, or run lakewire demo again",
            highlight=False,
        )


app.add_typer(tenant_app, name="tenant")


# -- routes -------------------------------------------------------------------------------------
routes_app = typer.Typer(
    no_args_is_help=True,
    help="See, check, explain and change the routes (which landing objects feed which table).",
)
app.add_typer(routes_app, name="routes")

FileArg = Annotated[
    Path | None,
    typer.Option("--file", "-f", help="A routes file instead of the live routes."),
]


def _author() -> str:
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except Exception:  # no user name in a container without /etc/passwd entry
        user = "unknown"
    return f"cli {user}@{socket.gethostname()}"


def _routeset(settings: Settings, file: Path | None) -> tuple[RouteSet, str]:
    from lakehouse.routes import check_routes, read_routes_file
    from lakehouse.routes_store import live

    if file is not None:
        text, origin = read_routes_file(file)
        return check_routes(text, origin, settings.quarantine_prefix), origin
    current = live(settings)
    return current.routes, current.source


def _print_warnings(checked: RouteSet) -> None:
    for w in checked.warnings:
        err.print(f"[yellow]warning:[/yellow] {w}", highlight=False)


@routes_app.command("ls")
def routes_ls(file: FileArg = None) -> None:
    """The routes in the order they are tried: glob, table, format, mode."""
    from lakehouse.routes import RoutesError

    settings = Settings()
    try:
        checked, source = _routeset(settings, file)
    except (RoutesError, StorageError) as exc:
        raise _fail(str(exc)) from None
    console.print(f"routes from {source}", highlight=False)
    table = Table()
    for column in ("#", "name", "bucket", "glob", "priority", "table", "file format", "mode"):
        table.add_column(column, overflow="fold")  # a glob is never cut short
    for n, r in enumerate(checked.routes, 1):
        table.add_row(
            str(n),
            r.name,
            r.bucket,
            r.glob,
            str(r.priority),
            f"{r.format}.{r.table}",
            r.file_format,
            r.mode,
        )
    print_table(table)
    _print_warnings(checked)


@routes_app.command("check")
def routes_check(
    file: Annotated[
        Path | None, typer.Argument(help="Routes file to check; default: the live routes.")
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too (exit 2).")] = False,
) -> None:
    """Validate and analyse routes (shadowed, overlapping, placeholders); exit 1 on errors."""
    from lakehouse.routes import RoutesError

    settings = Settings()
    try:
        checked, source = _routeset(settings, file)
    except RoutesError as exc:
        for issue in exc.issues:
            err.print(f"[red]error:[/red] {issue}", highlight=False)
        raise typer.Exit(1) from None
    except StorageError as exc:
        raise _fail(str(exc)) from None
    _print_warnings(checked)
    console.print(
        f"ok: {len(checked.routes)} routes in {source}, {len(checked.warnings)} warnings",
        highlight=False,
    )
    if strict and checked.warnings:
        raise typer.Exit(2)


@routes_app.command("explain")
def routes_explain(
    targets: Annotated[list[str], typer.Argument(help="BUCKET/KEY of objects (need not exist).")],
    file: FileArg = None,
) -> None:
    """Where each object would go: the winning route, table, options, other matches."""
    from lakehouse.routes import RoutesError, explain_key

    settings = Settings()
    try:
        checked, source = _routeset(settings, file)
    except (RoutesError, StorageError) as exc:
        raise _fail(str(exc)) from None
    console.print(f"routes from {source}", highlight=False)
    for target in targets:
        bucket, _, key = target.partition("/")
        if not key:
            raise _fail(f"'{target}' is not BUCKET/KEY")
        e = explain_key(checked.routes, bucket, key, settings)
        console.print(f"\n[bold]{bucket}/{key}[/bold]", highlight=False)
        if e.route is None:
            console.print(f"  {e.note}", highlight=False)
            continue
        console.print(f"  route:        {e.route.name} (glob {e.route.glob})", highlight=False)
        console.print(f"  table:        {e.table}", highlight=False)
        console.print(f"  file format:  {e.file_format or '-'}", highlight=False)
        options = {k: v for k, v in e.route.summary().items() if k not in ("name", "glob", "table")}
        shown = json.dumps(options) if options else "(defaults)"
        console.print(f"  options:      {shown}", highlight=False)
        others = ", ".join(e.also_matched) or "none"
        console.print(f"  also matched: {others} (the first route wins)", highlight=False)
        if e.note:
            console.print(f"  note:         {e.note}", highlight=False)


@routes_app.command("apply")
def routes_apply(
    file: Annotated[Path, typer.Argument(help="Routes file to make live.")],
    comment: Annotated[str, typer.Option("--message", "-m", help="Why (kept in history).")] = "",
) -> None:
    """Make a routes file the live routes (a new version in the system bucket)."""
    from lakehouse.routes import RoutesError, read_routes_file
    from lakehouse.routes_store import RoutesStore

    settings = Settings()
    try:
        text, _ = read_routes_file(file)
        saved = RoutesStore(settings).save(text, _author(), "cli", comment)
    except RoutesError as exc:
        for issue in exc.issues:
            err.print(f"[red]error:[/red] {issue}", highlight=False)
        raise typer.Exit(1) from None
    except StorageError as exc:
        raise _fail(str(exc)) from None
    console.print(f"routes version {saved.version} is live", highlight=False)


@routes_app.command("history")
def routes_history(
    diff: Annotated[bool, typer.Option("--diff", help="Show each version's diff.")] = False,
) -> None:
    """Every version of the live routes: who, when, why."""
    from lakehouse.routes import RoutesError
    from lakehouse.routes_store import RoutesStore, history_with_diffs

    settings = Settings()
    try:
        versions = history_with_diffs(RoutesStore(settings))
    except (RoutesError, StorageError) as exc:
        raise _fail(str(exc)) from None
    if not versions:
        console.print("no live routes yet: the routes file is used", highlight=False)
    for v, d in versions:
        console.print(
            f"v{v.version}  {v.at}  {v.source:<8}  {v.author}  {v.comment}", highlight=False
        )
        if diff:
            console.print(d, highlight=False, markup=False)


@routes_app.command("rollback")
def routes_rollback(
    version: Annotated[int, typer.Argument(help="The version to make live again.")],
    comment: Annotated[str, typer.Option("--message", "-m", help="Why (kept in history).")] = "",
) -> None:
    """Make an old version live again (as a new version: history is never rewritten)."""
    from lakehouse.routes import RoutesError
    from lakehouse.routes_store import RoutesStore

    settings = Settings()
    try:
        saved = RoutesStore(settings).rollback(version, _author(), comment)
    except (RoutesError, StorageError) as exc:
        raise _fail(str(exc)) from None
    console.print(f"routes version {saved.version} is live (the text of v{version})")


@routes_app.command("export")
def routes_export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    version: Annotated[
        int | None, typer.Option("--version", help="An older version instead of the live one.")
    ] = None,
) -> None:
    """Write the live routes (or a version) as a routes file, e.g. to seed a new platform."""
    from lakehouse.routes import RoutesError
    from lakehouse.routes_store import RoutesStore, live

    settings = Settings()
    try:
        text = RoutesStore(settings).get(version).text if version else live(settings).routes.text
    except (RoutesError, StorageError) as exc:
        raise _fail(str(exc)) from None
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        console.print(f"wrote {output}", highlight=False)


# -- ilm (object lifecycle, issue 12) -------------------------------------------------------
ilm_app = typer.Typer(
    no_args_is_help=True,
    help="Object lifecycle rules (S3 lifecycle JSON): import, export, ls, rm, plan, apply.",
)
app.add_typer(ilm_app, name="ilm")

AtOption = Annotated[
    str | None,
    typer.Option("--at", help="ISO time to plan for (default: now), e.g. 2027-01-01T00:00Z."),
]


def _at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _fail(f"--at: not an ISO time: {value!r}", 2) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _ilm_buckets(store: ObjectStore, bucket: str | None) -> list[str]:
    from lakehouse.lifecycle import RulesStore

    return [bucket] if bucket else RulesStore(store).buckets()


@ilm_app.command("import")
def ilm_import(
    bucket: Annotated[str, typer.Argument(help="The bucket the rules apply to.")],
    file: Annotated[
        Path | None, typer.Argument(help='Lifecycle JSON ({"Rules": [...]}); default: stdin.')
    ] = None,
) -> None:
    """Set a bucket's rules from S3 lifecycle JSON (as `mc ilm rule import` takes it)."""
    from lakehouse.lifecycle import LifecycleError, RulesStore, parse_config, refused_bucket

    settings = Settings()
    text = file.read_text() if file is not None else sys.stdin.read()
    why = refused_bucket(settings, bucket)
    if why is not None:
        raise _fail(f"lifecycle rules are refused on {why}")
    try:
        config = parse_config(text, tiers=settings.lifecycle_tiers)
    except LifecycleError as exc:
        raise _fail(str(exc)) from None
    store = open_object_store(settings)
    if not store.bucket_exists(bucket):
        raise _fail(f"bucket '{bucket}' does not exist")
    RulesStore(store).put(bucket, config)
    console.print(f"{len(config.Rules)} rules set on {bucket}", highlight=False)


@ilm_app.command("export")
def ilm_export(bucket: Annotated[str, typer.Argument(help="The bucket.")]) -> None:
    """Print a bucket's rules as S3 lifecycle JSON."""
    from lakehouse.lifecycle import RulesStore

    config = RulesStore(open_object_store(Settings())).get(bucket)
    if config is None:
        raise _fail(f"bucket '{bucket}' has no lifecycle configuration")
    sys.stdout.write(json.dumps(config.to_json(), indent=2) + "\n")


@ilm_app.command("ls")
def ilm_ls(
    bucket: Annotated[str | None, typer.Argument(help="Default: every bucket.")] = None,
) -> None:
    """The rules: bucket, ID, status, filter, actions."""
    from lakehouse.lifecycle import RulesStore

    store = open_object_store(Settings())
    table = Table("bucket", "rule", "status", "filter", "actions")
    for b in _ilm_buckets(store, bucket):
        config = RulesStore(store).get(b)
        for r in config.Rules if config else []:
            flt = r.Filter.model_dump(exclude_none=True) if r.Filter else {"Prefix": r.Prefix or ""}
            actions = r.model_dump(exclude_none=True, exclude={"ID", "Status", "Filter", "Prefix"})
            acts = {k: v for k, v in actions.items() if v not in ([], None)}
            table.add_row(b, r.ID, r.Status, json.dumps(flt), json.dumps(acts, default=str))
    print_table(table)


@ilm_app.command("rm")
def ilm_rm(
    bucket: Annotated[str, typer.Argument(help="The bucket.")],
    rule: Annotated[str | None, typer.Argument(help="Rule ID; omit with --all.")] = None,
    all_rules: Annotated[bool, typer.Option("--all", help="Remove every rule.")] = False,
) -> None:
    """Remove one rule (by ID) or, with --all, the bucket's whole configuration."""
    from lakehouse.lifecycle import RulesStore

    rules = RulesStore(open_object_store(Settings()))
    if all_rules:
        rules.delete(bucket)
        console.print(f"removed every lifecycle rule of {bucket}", highlight=False)
        return
    config = rules.get(bucket)
    if rule is None or config is None or rule not in {r.ID for r in config.Rules}:
        raise _fail(f"no rule {rule!r} on {bucket} (give a rule ID or --all)")
    config.Rules = [r for r in config.Rules if rule != r.ID]
    if config.Rules:
        rules.put(bucket, config)
    else:
        rules.delete(bucket)
    console.print(f"removed rule {rule} of {bucket}", highlight=False)


@ilm_app.command("plan")
def ilm_plan(
    bucket: Annotated[str | None, typer.Argument(help="Default: every bucket with rules.")] = None,
    at: AtOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """Every action due (object, rule, action, bytes, target). Changes nothing."""
    from lakehouse.lifecycle import plan

    settings = Settings()
    store = open_object_store(settings)
    when = _at(at)
    actions = [a for b in _ilm_buckets(store, bucket) for a in plan(settings, store, b, at=when)]
    if as_json:
        sys.stdout.write(json.dumps([a.as_dict() for a in actions], indent=2) + "\n")
        return
    table = Table("object", "rule", "action", "bytes", "target")
    for a in actions:
        d = a.as_dict()
        what = f"transition {a.current_class}->{a.storage_class}" if a.storage_class else "expire"
        obj = d["object"] + (f" (version {a.version_id})" if a.version_id else "")
        table.add_row(obj, a.rule, what, str(a.size), d["target"] or "")
    print_table(table)
    console.print(f"{len(actions)} actions, {sum(a.size for a in actions)} bytes", highlight=False)


@ilm_app.command("apply")
def ilm_apply(
    bucket: Annotated[str | None, typer.Argument(help="Default: every bucket with rules.")] = None,
    at: AtOption = None,
) -> None:
    """Apply what is due now (or --at): idempotent; an interrupted apply resumes."""
    from pipelines.lifecycle import run_lifecycle

    settings = Settings()
    store = open_object_store(settings)
    when = _at(at)
    for b in _ilm_buckets(store, bucket):
        actions, outcome = run_lifecycle(settings, store, b, at=when)
        o = outcome.as_dict()
        console.print(
            f"{b}: {len(actions)} planned, {o['expired']} expired ({o['expired_bytes']} B), "
            f"{o['transitioned']} transitioned ({o['transitioned_bytes']} B), "
            f"{len(o['skipped'])} skipped",
            highlight=False,
        )


# -- maintain (table maintenance, issue 12) ----------------------------------------------------
maintain_app = typer.Typer(
    no_args_is_help=True,
    help="Table maintenance: Delta optimize and vacuum, Iceberg snapshot expiry.",
)
app.add_typer(maintain_app, name="maintain")

TableArg = Annotated[str, typer.Argument(help="format.schema.table, e.g. delta.default.orders")]
RetentionOption = Annotated[
    int | None, typer.Option("--retention-hours", help="Default: vacuum_min_retention_hours.")
]
ForceOption = Annotated[bool, typer.Option("--force", help="Allow a retention below the minimum.")]


def _maintain(action: str, table: str, **kwargs: object) -> None:
    from lakehouse.tables import TableRef
    from pipelines import maintenance

    settings = Settings()
    store = open_object_store(settings)
    try:
        ref = TableRef.parse(table)
        fn = getattr(maintenance, action)
        report = fn(settings, store, ref, **kwargs)
    except (ValueError, StorageError) as exc:
        raise _fail(str(exc)) from None
    console.print(
        f"{report.table} {report.action}: files {report.files_before} -> {report.files_after}, "
        f"bytes {report.bytes_before} -> {report.bytes_after} "
        f"{json.dumps(report.detail, default=str)}",
        highlight=False,
    )


@maintain_app.command("optimize")
def maintain_optimize(
    table: TableArg,
    z_order: Annotated[
        list[str] | None, typer.Option("--z-order", help="Columns to Z-order by.")
    ] = None,
) -> None:
    """Compact a Delta table's small files (results unchanged; old versions stay readable)."""
    _maintain("optimize", table, z_order=z_order or None)


@maintain_app.command("vacuum")
def maintain_vacuum(
    table: TableArg,
    retention_hours: RetentionOption = None,
    force: ForceOption = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List, remove nothing.")] = False,
) -> None:
    """Remove Delta files older than the retention that no newer version needs."""
    _maintain("vacuum", table, retention_hours=retention_hours, force=force, dry_run=dry_run)


@maintain_app.command("expire-snapshots")
def maintain_expire(
    table: TableArg, retention_hours: RetentionOption = None, force: ForceOption = False
) -> None:
    """Expire an Iceberg table's snapshots older than the retention (ledger kept)."""
    _maintain("expire_snapshots", table, retention_hours=retention_hours, force=force)


@maintain_app.command("compact")
def maintain_compact(table: TableArg) -> None:
    """Rewrite an Iceberg table's small data files as one (old snapshots stay readable)."""
    _maintain("compact_iceberg", table)


@maintain_app.command("remove-orphans")
def maintain_remove_orphans(
    table: TableArg, retention_hours: RetentionOption = None, force: ForceOption = False
) -> None:
    """Delete files under an Iceberg table that nothing references, older than the retention."""
    _maintain("remove_orphan_files", table, retention_hours=retention_hours, force=force)


if __name__ == "__main__":
    app()
