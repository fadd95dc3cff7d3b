"""SQL Studio driven in real headless Chromium (Debian's), against a real service over Delta and
Iceberg tables the ingestion wrote: browse to a table, run, page, an inline error, cancel a long
query, history, download CSV, and the navigation bar between the two pages. Screenshots go to
test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed (it is in the dev dependency group)"
)

from playwright.sync_api import Browser, Page, expect

from tests.browsers import ARTIFACTS, chromium
from tests.helpers import API_KEY, service_process
from tests.test_sql_api import SLOW, write_tables

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("sqlpage")
    write_tables(tmp / "data", rows=250)
    with service_process(tmp) as proc:
        yield proc.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Browser, url: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    pg.goto(url)
    try:
        yield pg
    finally:
        context.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"sql-studio-{name}.png"), full_page=True)


def test_sql_studio_end_to_end(page: Page, url: str, tmp_path: Path) -> None:
    # Sign in on the Object Storage page, then the nav bar leads to SQL Studio (same key).
    page.fill("#login-key", API_KEY)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#status")).to_have_text("CONNECTED")
    page.click(".appnav a:has-text('SQL Studio')")
    expect(page.locator("#studio")).to_be_visible()
    assert API_KEY not in page.content()

    # Browse: catalog → schema → table → columns with types.
    page.click('details[data-catalog="iceberg"] > summary')  # closed now
    page.click('details[data-catalog="iceberg"] > summary')  # open again
    page.click('details[data-schema="iceberg.sales"] > summary')
    table = page.locator('details[data-table="iceberg.sales.orders"]')
    table.locator("summary").click()
    expect(table.locator(".col").first).to_contain_text("id")
    expect(table.locator(".col").first).to_contain_text("bigint")
    shot(page, "catalog")

    # Run from the table's Query button: 255 rows, first page of 100, then page on.
    table.locator("button[data-query]").click()
    expect(page.locator("#result-status")).to_contain_text("255 rows")
    expect(page.locator("#page-info")).to_have_text("Rows 1\u2013100 of 255")
    expect(page.locator("#grid tbody tr")).to_have_count(100)
    page.click("#next")
    expect(page.locator("#page-info")).to_have_text("Rows 101\u2013200 of 255")
    page.click("#next")
    expect(page.locator("#page-info")).to_have_text("Rows 201\u2013255 of 255")
    expect(page.locator("#next")).to_be_disabled()
    page.click("#prev")
    expect(page.locator("#page-info")).to_have_text("Rows 101\u2013200 of 255")
    shot(page, "results")

    # Ctrl-Enter runs the editor; the result downloads as CSV.
    page.fill("#editor", "SELECT id, name FROM delta.sales.orders WHERE id < 3 ORDER BY id")
    page.press("#editor", "Control+Enter")
    expect(page.locator("#result-status")).to_contain_text("3 rows")
    expect(page.locator("#grid tbody tr").first).to_contain_text("0")
    with page.expect_download() as info:
        page.click("#download-csv")
    target = tmp_path / "result.csv"
    info.value.save_as(target)
    lines = target.read_text().splitlines()
    assert lines[0] == '"id","name"' and len(lines) == 4 and lines[1].startswith("0,")

    # SQL is highlighted as it is typed.
    expect(page.locator("#editor-highlight .tok-keyword").first).to_have_text("SELECT")

    # A table's history (one row per commit) from the catalog tree.
    page.click('details[data-schema="delta.sales"] > summary')
    delta = page.locator('details[data-table="delta.sales.orders"]')
    delta.locator("summary").click()
    delta.locator("button[data-history]").click()
    expect(page.locator("#grid thead")).to_contain_text("rows_added")
    expect(page.locator("#grid tbody")).to_contain_text("250")
    shot(page, "table-history")

    # An error is shown inline, with the line it points at.
    page.fill("#editor", "SELECT id\nFROM delta.sales.orders\nWHERE (id = 1")
    page.click("#run")
    error = page.locator("#sql-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("line 3")
    shot(page, "error")

    # A long query can be cancelled.
    page.fill("#editor", SLOW)
    page.click("#run")
    expect(page.locator("#cancel")).to_be_enabled()
    page.wait_for_timeout(800)
    page.click("#cancel")
    expect(page.locator("#result-status")).to_contain_text("Cancelled", timeout=30_000)
    expect(page.locator("#run")).to_be_enabled()

    # History (kept in the browser) brings an earlier statement back.
    history = page.locator("#history li")
    expect(history.first).to_contain_text("range(200000)")
    page.locator("#history li", has_text="WHERE id < 3").click()
    expect(page.locator("#editor")).to_have_value(
        "SELECT id, name FROM delta.sales.orders WHERE id < 3 ORDER BY id"
    )
    shot(page, "history")

    # And back to the Object Storage page through the nav bar, still signed in; a Delta
    # table's folder in the lake bucket has a "Query" button that opens it in SQL Studio.
    page.click(".appnav a:has-text('Object Storage')")
    expect(page.locator("#status")).to_have_text("CONNECTED")
    page.goto(f"{url}/#/b/lake/sales/")
    expect(page.locator("#bucket-title")).to_have_text("lake / sales/")
    expect(page.locator("#sql-query-shortcut")).to_have_count(0)
    page.click('tr[data-folder="sales/orders/"] a')
    expect(page.locator("#bucket-title")).to_have_text("lake / sales/orders/")
    page.click("#sql-query-shortcut")
    expect(page.locator("#editor")).to_have_value("SELECT * FROM delta.sales.orders")
    expect(page.locator("#result-status")).to_contain_text("255 rows")
    shot(page, "from-storage-page")
