"""Routes analysed as a whole when loaded: shadowed routes, overlaps, priority, placeholders,
the fnmatch migration check, and every documented example routes what its comments promise."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lakehouse.routes import DEFAULT_FILE, RoutesError, check_routes, route_for
from lakehouse.settings import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs" / "routes.md"
# "#   landing/orders/2024.csv -> iceberg.sales.orders" (or "-> nothing"); three spaces
PROMISE_RE = re.compile(r"^\s*#\s{3}(\S+?)/(.+?) -> (\S+)\s*$")


def routes(*lines: str, version: int = 2) -> str:
    return f"version: {version}\nroutes:\n" + "".join(f"  - {line}\n" for line in lines)


def test_a_route_shadowed_by_an_earlier_one_is_an_error_naming_both() -> None:
    text = routes(
        "{name: everything, glob: '*/**', table: 'default.{dataset}'}",
        "{name: orders, glob: 'orders/**/*.csv', format: iceberg, table: sales.orders}",
    )
    with pytest.raises(RoutesError) as err:
        check_routes(text, "routes.yaml")
    msg = str(err.value)
    assert "route 2 'orders': glob:" in msg and "taken first by route 'everything'" in msg
    assert "e.g. 'orders/" in msg
    (issue,) = err.value.issues
    assert (issue.route, issue.field) == ("orders", "glob")


def test_shadowed_by_several_routes_together() -> None:
    text = routes(
        "{name: csv, glob: 'a/*.csv', table: s.c}",
        "{name: json, glob: 'a/*.json', table: s.j}",
        "{name: both, glob: 'a/*.{csv,json}', table: s.b}",
    )
    with pytest.raises(RoutesError, match="taken first by routes 'csv', 'json'"):
        check_routes(text)


def test_priority_orders_routes_and_lifts_the_shadow() -> None:
    text = routes(
        "{name: everything, glob: '*/**', table: 'default.{dataset}'}",
        "{name: orders, glob: 'orders/**/*.csv', priority: 5, table: sales.orders}",
    )
    checked = check_routes(text)
    assert [r.name for r in checked.routes] == ["orders", "everything"]
    assert checked.warnings == []  # a special case before the general one is no overlap
    s = Settings()
    assert route_for(checked.routes, "landing", "orders/2024.csv", s).name == "orders"  # type: ignore[union-attr]
    assert route_for(checked.routes, "landing", "orders/x.json", s).name == "everything"  # type: ignore[union-attr]


def test_partial_overlap_is_a_warning_naming_a_key_both_match() -> None:
    text = routes(
        "{name: csvs, glob: '*/*.csv', table: 'raw.{dataset}'}",
        "{name: orders, glob: 'orders/**', table: sales.orders}",
    )
    checked = check_routes(text)
    (w,) = checked.warnings
    assert w.route == "orders" and w.example is not None
    assert w.example.startswith("orders/") and w.example.endswith(".csv")
    assert "'csvs' and 'orders' overlap" in w.message and "goes to 'csvs'" in w.message
    # routes in different buckets never overlap
    other = routes(
        "{name: a, glob: '*/*.csv', table: 'raw.{dataset}'}",
        "{name: b, bucket: other, glob: 'orders/**', table: sales.orders}",
    )
    assert check_routes(other).warnings == []


@pytest.mark.parametrize(
    ("glob", "message"),
    [
        ("**/*.csv", "matches 'a.csv', which has none"),
        ("*.csv", "which has none"),
        ("orders/**/*.csv", "only matches keys under 'orders/'"),
        ("{orders,orders}/*.csv", "only matches keys under 'orders/'"),
    ],
)
def test_dataset_placeholder_must_be_captured_by_the_glob(glob: str, message: str) -> None:
    with pytest.raises(RoutesError, match=re.escape(message)) as err:
        check_routes(routes(f"{{name: r, glob: '{glob}', table: 'default.{{dataset}}'}}"))
    assert (err.value.issues[0].route, err.value.issues[0].field) == ("r", "table")


@pytest.mark.parametrize("glob", ["*/**", "{orders,sales}/*.csv", "[a-z]*/**/*.csv", "?/x"])
def test_dataset_placeholder_accepted_where_the_first_folder_varies(glob: str) -> None:
    check_routes(routes(f"{{name: r, glob: '{glob}', table: 'default.{{dataset}}'}}"))


def test_bad_globs_and_system_bucket_are_refused_with_route_and_field() -> None:
    with pytest.raises(RoutesError, match=r"route 1 'r': glob: '/x/\*': .*start with '/'"):
        check_routes(routes("{name: r, glob: '/x/*', table: s.t}"))
    with pytest.raises(RoutesError, match="matches no key outside 'quarantine/'"):
        check_routes(routes("{name: r, glob: 'quarantine/**', table: s.t}"))
    with pytest.raises(RoutesError, match="route 1 'r': bucket: 'lakewire-system'"):
        check_routes(routes("{name: r, bucket: lakewire-system, glob: 'x/*', table: s.t}"))


def test_a_file_written_for_fnmatch_reports_the_keys_that_move() -> None:
    old = routes(
        "{name: orders, glob: 'orders/**/*.csv', format: iceberg, table: sales.orders}",
        "{name: landing_csv, glob: '*/*.csv', table: 'default.{dataset}'}",
        version=1,
    )
    warnings = check_routes(old).warnings
    by_route = {w.route: w for w in warnings}
    # orders/<x>.csv used to fall through to the catch-all; now it reaches the Iceberg table
    moved = by_route["orders"]
    assert moved.example is not None and moved.example.count("/") == 1
    assert "went to route 'landing_csv' (delta.default.orders)" in moved.message
    assert "now to route 'orders' (iceberg.sales.orders)" in moved.message
    # a/b/c.csv used to match '*/*.csv'; now no route takes it
    deep = by_route["landing_csv"]
    assert deep.example is not None and deep.example.count("/") >= 2
    assert "now to no route (ignored)" in deep.message
    # version 2 says the file was written for today's globs: no migration warnings (the
    # partial overlap of the two globs is still one)
    (overlap,) = check_routes(old.replace("version: 1", "version: 2")).warnings
    assert "overlap" in overlap.message


def _examples(text: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """YAML blocks with the promises in their comments: (yaml, [(bucket, key, table)])."""
    out = []
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        promises = [
            (m[1], m[2], m[3]) for line in block.splitlines() if (m := PROMISE_RE.match(line))
        ]
        out.append((block, promises))
    return out


def _check_promises(text: str, origin: str) -> int:
    checked = check_routes(text, origin)
    s = Settings()
    n = 0
    for line in text.splitlines():
        m = PROMISE_RE.match(line)
        if not m:
            continue
        bucket, key, expected = m.groups()
        route = route_for(checked.routes, bucket, key, s)
        got = route.table_for(key).qualified if route else "nothing"
        assert got == expected, (
            f"{origin}: {bucket}/{key} goes to {got}, its comment says {expected}"
        )
        n += 1
    return n


def test_every_routes_example_in_the_docs_routes_what_its_comments_promise() -> None:
    examples = _examples(DOCS.read_text())
    assert len(examples) >= 2
    for n, (block, promises) in enumerate(examples, 1):
        assert promises, f"example {n} in docs/routes.md promises nothing"
        checked = check_routes(block, f"docs/routes.md example {n}")
        assert checked.warnings == [], checked.warnings
        assert _check_promises(block, f"docs/routes.md example {n}") == len(promises)
    # The issue's example: orders/2024.csv reaches the Iceberg table, not delta.default.orders.
    first = examples[0][1]
    assert ("landing", "orders/2024.csv", "iceberg.sales.orders") in first


def test_the_shipped_routes_file_routes_what_its_comments_say() -> None:
    text = DEFAULT_FILE.read_text()
    assert _check_promises(text, "routes.yaml") >= 3
    assert check_routes(text).warnings == []
