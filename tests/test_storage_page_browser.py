"""The Object Storage page driven in real headless Chromium (Debian's), against a real service.

Without Playwright (a dev dependency) the module is skipped. With Playwright but without
Chromium the tests fail: `make browser` (part of `make test`) installs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed (it is in the dev dependency group)"
)

from playwright.sync_api import Browser, Locator, Page, expect

from tests.browsers import ARTIFACTS, chromium
from tests.helpers import API_KEY, ServiceProcess, service_process, wait_for

pytestmark = pytest.mark.browser


class RunningService:
    def __init__(self, proc: ServiceProcess) -> None:
        self.url = proc.url
        self.data_dir = proc.data_dir
        self.api = proc.client()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """The service as `lakewire up` runs it: its own process, port and data dir."""
    with service_process(
        tmp_path_factory.mktemp("page"), LAKEWIRE_UNROUTED_REFRESH_SECONDS="0.5"
    ) as proc:
        yield RunningService(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Browser, running: RunningService) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    pg.goto(running.url)
    try:
        yield pg
    finally:
        context.close()


def _sign_in(page: Page, key: str = API_KEY) -> None:
    page.fill("#login-key", key)
    page.click("#login-form button[type=submit]")


def _card(page: Page, name: str) -> Locator:
    return page.locator(f'.card[data-bucket="{name}"]')


def test_wrong_key_is_refused_and_the_page_holds_no_key(page: Page) -> None:
    assert API_KEY not in page.content()
    expect(page.locator("#login")).to_be_visible()
    _sign_in(page, "not-the-key")
    expect(page.locator("#login-error")).to_have_text("That key is not valid.")
    _sign_in(page)
    expect(page.locator("#status")).to_have_text("CONNECTED")
    expect(page.locator("#total-buckets")).to_have_text("9")


def test_create_browse_upload_rename_delete(
    page: Page, running: RunningService, tmp_path: Path
) -> None:
    _sign_in(page)
    expect(page.locator("#status")).to_have_text("CONNECTED")
    for name in ("datasets", "results", "landing", "lake", "dagster", "co2-data", "models"):
        expect(_card(page, name)).to_be_visible()
    # The landing card names the routes that watch it (the shipped catch-all among them).
    expect(_card(page, "landing").locator(".badge.routes")).to_contain_text("landing_files")
    expect(_card(page, "results").locator(".badge.routes")).to_have_count(0)

    # Create: an invalid name shows the rule inline and creates nothing.
    page.click("#create-open")
    page.fill("#create-name", "Bad_Name")
    page.click("#create-submit")
    expect(page.locator("#create-error")).to_contain_text(
        "may contain only lowercase letters, digits and hyphens"
    )
    expect(page.locator("#create-dialog")).to_be_visible()
    page.fill("#create-name", "ab")
    page.click("#create-submit")
    expect(page.locator("#create-error")).to_contain_text("3-63 characters")
    page.fill("#create-name", "sales-data")
    page.click("#create-submit")
    expect(page.locator("#create-dialog")).to_be_hidden()
    expect(_card(page, "sales-data")).to_be_visible()
    expect(page.locator("#total-buckets")).to_have_text("10")

    # Into the bucket, a new folder, upload with progress, and the file is there.
    _card(page, "sales-data").click()
    expect(page.locator("#bucket-title")).to_have_text("sales-data")
    expect(page.locator("#empty")).to_be_visible()
    page.click("#folder-open")
    page.fill("#folder-name", "reports")
    page.click("#folder-form button[value=ok]")
    expect(page.locator("#bucket-title")).to_have_text("sales-data / reports/")
    csv = tmp_path / "q1.csv"
    csv.write_text("region,amount\nnorth,10\nsouth,20\n")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024))
    page.set_input_files("#upload-input", [str(csv), str(big)])
    expect(page.locator('tr[data-key="reports/q1.csv"]')).to_be_visible()
    expect(page.locator('tr[data-key="reports/big.bin"]')).to_be_visible()
    got = running.api.get("/api/buckets/sales-data/objects/reports/q1.csv")
    assert got.content == csv.read_bytes()
    assert running.api.get("/api/buckets/sales-data/objects/reports/big.bin").content == (
        big.read_bytes()
    )

    # Back to the bucket root through the breadcrumb: the folder is listed; browse into it.
    page.click("#crumbs a:has-text('sales-data')")
    folder = page.locator('tr[data-folder="reports/"]')
    expect(folder).to_be_visible()
    folder.locator("a").click()
    expect(page.locator('tr[data-key="reports/q1.csv"]')).to_be_visible()
    expect(page.locator("#bucket-meta")).to_contain_text("2 objects")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "storage-bucket-detail.png"), full_page=True)

    # A presigned link that works without the key.
    page.locator('tr[data-key="reports/q1.csv"] [data-action=link]').click()
    expect(page.locator("#link-dialog")).to_be_visible()
    url = page.input_value("#link-url")
    assert httpx.get(url).content == csv.read_bytes()
    page.click("#link-dialog button[value=close]")

    # The bucket list shows the new stats (kept from the event path).
    page.click("#crumbs a:has-text('Object Storage')")

    def counted() -> bool:
        page.click("#refresh")
        return _card(page, "sales-data").locator(".objects").inner_text() == "2"

    wait_for(counted, timeout=15, what="sales-data to show 2 objects", interval=0.5)
    expect(_card(page, "sales-data").locator(".size")).to_have_text("3.0 MB")
    expect(page.locator(".toast")).to_have_count(0)  # toasts fade after a few seconds
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "storage-bucket-list.png"), full_page=True)

    # Rename with progress; the old card goes, the new one has the objects.
    _card(page, "sales-data").locator("[data-action=rename]").click()
    page.fill("#rename-name", "Sales")
    page.click("#rename-submit")
    expect(page.locator("#rename-error")).to_contain_text("lowercase")
    page.fill("#rename-name", "sales-2026")
    page.click("#rename-submit")
    expect(page.locator("#rename-dialog")).to_be_hidden()
    expect(_card(page, "sales-2026")).to_be_visible()
    expect(_card(page, "sales-data")).to_have_count(0)
    got = running.api.get("/api/buckets/sales-2026/objects/reports/q1.csv")
    assert got.content == csv.read_bytes()

    # Delete asks for the bucket's name.
    _card(page, "sales-2026").locator("[data-action=delete]").click()
    expect(page.locator("#delete-submit")).to_be_disabled()
    page.fill("#delete-confirm", "sales-202")
    expect(page.locator("#delete-submit")).to_be_disabled()
    page.fill("#delete-confirm", "sales-2026")
    expect(page.locator("#delete-submit")).to_be_enabled()
    page.click("#delete-submit")
    expect(_card(page, "sales-2026")).to_have_count(0)
    expect(page.locator("#total-buckets")).to_have_text("9")
    assert running.api.get("/api/buckets/sales-2026/objects").status_code == 404


def test_object_delete_and_download_from_the_page(page: Page, running: RunningService) -> None:
    running.api.put("/api/buckets/results/objects/out/old.csv", content=b"a\n1\n")
    running.api.put("/api/buckets/results/objects/out/keep.csv", content=b"b\n2\n")
    _sign_in(page)
    page.goto(f"{running.url}/#/b/results/out/")
    row = page.locator('tr[data-key="out/old.csv"]')
    expect(row).to_be_visible()
    with page.expect_download() as dl:
        page.locator('tr[data-key="out/keep.csv"] [data-action=download]').click()
    assert Path(dl.value.path()).read_bytes() == b"b\n2\n"
    page.once("dialog", lambda d: d.accept())
    row.locator("[data-action=delete-object]").click()
    expect(row).to_have_count(0)
    expect(page.locator('tr[data-key="out/keep.csv"]')).to_be_visible()
    assert running.api.head("/api/buckets/results/objects/out/old.csv").status_code == 404


def test_bucket_settings_events_and_versioning(page: Page, running: RunningService) -> None:
    _sign_in(page)
    page.goto(f"{running.url}/#/b/datasets/")
    page.click("#settings-open")
    expect(page.locator("#versioning-status")).to_have_text("Not supported")
    expect(page.locator("#versioning-toggle")).to_be_hidden()
    expect(page.locator("#rules")).to_contain_text("No rules")
    page.select_option("#rule-events", "created")
    page.fill("#rule-prefix", "incoming/")
    page.fill("#rule-suffix", ".csv")
    page.click("#rule-add")
    expect(page.locator('#rules tr[data-rule="0"]')).to_contain_text("incoming/")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "storage-bucket-settings.png"))
    rules = running.api.get("/api/buckets/datasets/notifications").json()["rules"]
    assert rules == [{"events": ["s3:ObjectCreated:*"], "prefix": "incoming/", "suffix": ".csv"}]
    page.locator('#rules tr[data-rule="0"] button').click()
    expect(page.locator("#rules")).to_contain_text("No rules")
    assert running.api.get("/api/buckets/datasets/notifications").json()["rules"] == []


def test_a_watched_bucket_card_counts_the_objects_no_route_takes(
    page: Page, running: RunningService
) -> None:
    _sign_in(page)
    expect(_card(page, "landing").locator(".badge.unrouted")).to_have_count(0)
    # Top-level in landing: the catch-all takes landing/<dataset>/..., nothing takes this.
    resp = running.api.put("/api/buckets/landing/objects/stray.bin", content=b"x")
    assert resp.status_code == 201, resp.text

    def counted() -> bool:
        view = running.api.get("/api/buckets/landing").json()
        return (view.get("unrouted") or {}).get("objects") == 1

    wait_for(counted, 30, "the background count to see stray.bin", 0.5)
    page.click("#refresh")
    badge = _card(page, "landing").locator(".badge.unrouted")
    expect(badge).to_have_text("1 unrouted object")
    assert "stray.bin" in (badge.get_attribute("title") or "")
    expect(_card(page, "results").locator(".badge.unrouted")).to_have_count(0)


def test_bucket_settings_lifecycle_rules_from_templates(
    page: Page, running: RunningService
) -> None:
    _sign_in(page)
    page.goto(f"{running.url}/#/b/results/")
    page.click("#settings-open")
    rules = page.locator("#lifecycle-rules")
    expect(rules).to_contain_text("No rules")
    page.click("#lifecycle-add-expire")
    row = page.locator('#lifecycle-rules tr[data-lifecycle-rule="expire-temp"]')
    expect(row.locator(".status")).to_have_text("Enabled")
    expect(row).to_contain_text('Expiration {"Days":30}')
    page.click("#lifecycle-add-warm")
    expect(
        page.locator('#lifecycle-rules tr[data-lifecycle-rule="warm-after-90-days"]')
    ).to_be_visible()
    # Disable one: the stored configuration says so, the other rule is untouched.
    row.locator("button.toggle").click()
    expect(row.locator(".status")).to_have_text("Disabled")
    stored = running.api.get("/api/buckets/results/lifecycle").json()["Rules"]
    assert [(r["ID"], r["Status"]) for r in stored] == [
        ("expire-temp", "Disabled"),
        ("warm-after-90-days", "Enabled"),
    ]
    # The same template twice is refused with the rule named; nothing changes.
    page.click("#lifecycle-add-warm")
    expect(page.locator("#settings-error")).to_contain_text("warm-after-90-days")
    assert len(running.api.get("/api/buckets/results/lifecycle").json()["Rules"]) == 2
    expect(page.locator("#lifecycle-edit")).to_have_attribute(
        "href", "/static/lifecycle.html#bucket=results"
    )
    for rule_id in ("expire-temp", "warm-after-90-days"):
        rule_row = page.locator(f'#lifecycle-rules tr[data-lifecycle-rule="{rule_id}"]')
        rule_row.locator("button.remove").click()
        expect(rule_row).to_have_count(0)  # saved and re-listed before the next click
    expect(rules).to_contain_text("No rules")
    assert running.api.get("/api/buckets/results/lifecycle").status_code == 404
