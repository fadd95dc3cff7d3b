"""The lifecycle rules editor (/static/lifecycle.html) driven in headless Chromium against a
real service process: templates, edit, disable, delete, and a 422 naming the rule and field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed (it is in the dev dependency group)"
)

from playwright.sync_api import Page, expect

from tests.browsers import chromium
from tests.helpers import API_KEY, service_process

pytestmark = pytest.mark.browser


@pytest.fixture
def service_url(tmp_path: Path) -> Iterator[str]:
    with service_process(tmp_path) as proc:
        yield proc.url


@pytest.fixture
def page(service_url: str) -> Iterator[Page]:
    with chromium() as browser:
        pg = browser.new_page()
        pg.set_default_timeout(15_000)
        pg.goto(f"{service_url}/static/lifecycle.html")
        yield pg


def _rules(url: str) -> list[dict[str, object]]:
    r = httpx.get(
        f"{url}/api/buckets/landing/lifecycle", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    return r.json()["Rules"] if r.status_code == 200 else []


def test_lifecycle_editor_templates_edit_disable_delete(page: Page, service_url: str) -> None:
    assert API_KEY not in page.content()
    page.fill("#lc-key", API_KEY)
    page.click("#lc-key-form button[type=submit]")
    expect(page.locator("#lc-bucket")).to_have_value("landing")
    expect(page.locator("#lc-status")).to_have_text("0 rules on landing")

    page.click("#lc-template-expire")
    page.click("#lc-save")
    expect(page.locator('tr[data-rule="expire-temp"]')).to_be_visible()
    page.click("#lc-template-warm")
    page.click("#lc-save")
    expect(page.locator("#lc-status")).to_have_text("2 rules on landing")
    assert [r["ID"] for r in _rules(service_url)] == ["expire-temp", "warm-after-90-days"]

    # an invalid edit is refused with the rule and field named; nothing is saved
    page.click('tr[data-rule="expire-temp"] .lc-edit')
    page.fill(
        "#lc-rule-json", '{"ID": "expire-temp", "Status": "Enabled", "Expiration": {"Days": 0}}'
    )
    page.click("#lc-save")
    expect(page.locator("#lc-error")).to_contain_text("rule 'expire-temp' field Expiration.Days")
    assert _rules(service_url)[0]["Expiration"] == {"Days": 30}
    page.fill(
        "#lc-rule-json",
        '{"ID": "expire-temp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, '
        '"Expiration": {"Days": 7}}',
    )
    page.click("#lc-save")
    expect(page.locator("#lc-error")).to_have_text("")
    assert _rules(service_url)[0]["Expiration"] == {"Days": 7}

    page.click('tr[data-rule="warm-after-90-days"] .lc-disable')
    expect(page.locator('tr[data-rule="warm-after-90-days"] td').nth(1)).to_have_text("Disabled")
    assert _rules(service_url)[1]["Status"] == "Disabled"

    page.click('tr[data-rule="expire-temp"] .lc-delete')
    page.click('tr[data-rule="warm-after-90-days"] .lc-delete')
    expect(page.locator("#lc-status")).to_have_text("0 rules on landing")
    assert _rules(service_url) == []

    # table locations are refused
    page.select_option("#lc-bucket", "lake")
    page.click("#lc-template-expire")
    page.click("#lc-save")
    expect(page.locator("#lc-error")).to_contain_text("table maintenance")
