"""The page's tenants section and a tenant's sign-in, in real headless Chromium against the
service in its own process: the admin creates a tenant (its key shown once), the tenant's page
shows only its buckets and no admin controls, and disabling the tenant signs it out."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed (it is in the dev dependency group)"
)

from playwright.sync_api import Browser, Page, expect

from tests.browsers import chromium
from tests.helpers import API_KEY, ServiceProcess, service_process

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    with service_process(tmp_path_factory.mktemp("tenants-page")) as proc:
        yield proc


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def signed_in(browser: Browser, url: str, key: str) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
    page.set_default_timeout(15_000)
    page.goto(url)
    page.fill("#login-key", key)
    page.click("#login-form button[type=submit]")
    return page


def test_admin_creates_a_tenant_and_the_tenant_sees_only_its_part(
    browser: Browser, running: ServiceProcess
) -> None:
    admin = signed_in(browser, running.url, API_KEY)
    expect(admin.locator("#whoami")).to_have_text("admin")
    expect(admin.locator("#tenants")).to_be_visible()
    admin.fill("#tenant-id", "page-t")
    admin.fill("#tenant-name", "Page Team")
    admin.fill("#tenant-scopes", "datasets/page-t/")
    admin.click("#tenant-form button[type=submit]")
    key = admin.locator("#tenant-new-key").inner_text()
    assert key.startswith("lw.page-t.")
    row = admin.locator('tr[data-tenant="page-t"]')
    expect(row.locator(".tenant-status")).to_have_text("active")

    tenant = signed_in(browser, running.url, key)
    expect(tenant.locator("#whoami")).to_have_text("tenant page-t")
    expect(tenant.locator("#total-buckets")).to_have_text("1")
    expect(tenant.locator(".card")).to_have_count(1)
    expect(tenant.locator('.card[data-bucket="datasets"]')).to_be_visible()
    expect(tenant.locator("#create-open")).to_be_hidden()
    expect(tenant.locator("#tenants")).to_be_hidden()
    expect(tenant.locator(".card [data-action=delete]")).to_have_count(0)
    assert key not in tenant.url

    admin.click("#refresh")
    expect(admin.locator("#audit-table tbody tr").first).to_contain_text("POST /api/tenants")
    row.locator("[data-action=toggle]").click()
    expect(row.locator(".tenant-status")).to_have_text("disabled")
    tenant.click("#refresh")  # the next call is refused: the tenant is signed out
    expect(tenant.locator("#login")).to_be_visible()
