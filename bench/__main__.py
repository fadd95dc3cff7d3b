"""``python -m bench``: run the benchmarks, write their JSON, regenerate docs/performance.md.

``--smoke`` runs each at tiny sizes into ``bench/results/smoke/`` (gitignored), so ``make test``
keeps every benchmark runnable without ever overwriting the real results.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import typer

from bench import results
from bench.embedded import RunningPlatform, embedded_platform

app = typer.Typer(add_completion=False, help=__doc__)

PLATFORM_BENCHMARKS = ("freshness", "burst", "trickle")
LOCAL_BENCHMARKS = ("ingest_throughput", "sql", "peak_rss", "storage_api")
ALL = PLATFORM_BENCHMARKS + LOCAL_BENCHMARKS


def _local(name: str) -> Callable[[Path, bool], results.Result]:
    if name == "ingest_throughput":
        from bench import ingest_throughput

        return ingest_throughput.run
    if name == "sql":
        from bench import sql

        return sql.run
    if name == "peak_rss":
        from bench import peak_rss

        return peak_rss.run
    from bench import storage_api

    return storage_api.run


def _on_platform(name: str) -> Callable[[RunningPlatform, bool], results.Result]:
    if name == "freshness":
        from bench import freshness

        return freshness.run
    if name == "trickle":
        from bench import trickle

        return trickle.run
    from bench import burst

    return burst.run


class _SharedPlatform:
    """One platform for the benchmarks that need it, started only if one does.

    ``prestart`` boots it in the background: smoke runs overlap the ~30 s platform start with
    the in-process benchmarks (full runs never do, so nothing competes with a measurement).
    """

    def __init__(self, root: Path, stack: contextlib.ExitStack) -> None:
        self.root = root
        self.stack = stack
        self.pool = ThreadPoolExecutor(1)
        self.future: Future[RunningPlatform] | None = None

    def prestart(self) -> None:
        if self.future is None:
            self.future = self.pool.submit(
                lambda: self.stack.enter_context(embedded_platform(self.root))
            )

    def __call__(self) -> RunningPlatform:
        self.prestart()
        assert self.future is not None
        return self.future.result()


@app.command()
def main(
    smoke: Annotated[bool, typer.Option("--smoke", help="Tiny sizes, results/smoke/.")] = False,
    only: Annotated[
        list[str] | None, typer.Option("--only", help=f"Run only these: {', '.join(ALL)}.")
    ] = None,
    work_dir: Annotated[
        Path | None,
        typer.Option(
            "--work-dir", help="Keep data (platform logs too) here instead of a temp dir."
        ),
    ] = None,
    docs: Annotated[
        bool, typer.Option("--docs/--no-docs", help="Regenerate docs/performance.md.")
    ] = True,
) -> None:
    """Run the benchmarks (all by default) and write bench/results/<name>.json."""
    selected = list(only or ALL)
    unknown = sorted(set(selected) - set(ALL))
    if unknown:
        raise typer.BadParameter(f"unknown benchmark(s) {unknown}; choose from {list(ALL)}")
    out_dir = results.SMOKE_DIR if smoke else results.RESULTS_DIR
    started = time.monotonic()
    failed: list[str] = []
    with contextlib.ExitStack() as cleanup:
        if work_dir is None:
            root = Path(
                cleanup.enter_context(tempfile.TemporaryDirectory(prefix="lakewire-bench-"))
            )
        else:
            root = work_dir.resolve()
            root.mkdir(parents=True, exist_ok=True)
        platform = _SharedPlatform(root, cleanup)
        # Smoke: in-process benchmarks first, while the platform boots in the background.
        order = LOCAL_BENCHMARKS + PLATFORM_BENCHMARKS if smoke else ALL
        if smoke and set(selected) & set(PLATFORM_BENCHMARKS):
            platform.prestart()
        for name in order:
            if name not in selected:
                continue
            results.console.rule(f"[bold]{name}[/bold]")
            t0 = time.monotonic()
            try:
                if name in PLATFORM_BENCHMARKS:
                    result = _on_platform(name)(platform(), smoke)
                else:
                    work = root / name
                    work.mkdir(exist_ok=True)
                    result = _local(name)(work, smoke)
            except Exception:
                results.console.print_exception()
                failed.append(name)
                continue
            seconds = time.monotonic() - t0
            path = results.write(result, seconds, out_dir)
            results.show(result, seconds)
            results.console.print(f"  wrote {path}", highlight=False)
    total = time.monotonic() - started
    results.console.print(f"[bold]all benchmarks: {total:.1f} s[/bold]")
    if docs and not smoke and not failed:
        from bench import performance_page

        page = performance_page.regenerate(total if set(selected) == set(ALL) else None)
        results.console.print(f"  regenerated {page}", highlight=False)
    if failed:
        results.console.print(f"[red]failed: {', '.join(failed)}[/red]")
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
