"""The content security policy: every answer carries it, no served page has inline script or
style for it to forbid, and real Chromium reports no violation while the pages start.

The static check parses every ``static/*.html`` (an HTML parser, not a regex) so a new page or a
pasted ``<script>`` fails here before a browser test has to notice a silently blocked handler.
"""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from lakehouse.settings import Settings
from storage_service.app import STATIC_DIR
from tests.helpers import API_KEY, Service, ServiceProcess, service_process

PAGES = sorted(p.name for p in STATIC_DIR.glob("*.html"))


class InlineFinder(HTMLParser):
    """Collects what a no-'unsafe-inline' policy would block: inline scripts and styles,
    ``on…=`` handlers, ``style=`` attributes and ``javascript:`` links."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name: value or "" for name, value in attrs}
        if tag == "script" and not names.get("src"):
            self.found.append("inline <script>")
        if tag == "style":
            self.found.append("<style>")
        for name, value in names.items():
            if name.startswith("on") or name == "style":
                self.found.append(f"<{tag} {name}=…>")
            if value.strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}=javascript:…>")


def inline_parts(html: str) -> list[str]:
    finder = InlineFinder()
    finder.feed(html)
    return finder.found


def test_the_finder_sees_what_the_policy_blocks() -> None:
    assert inline_parts(
        '<script>x()</script><style>a{}</style><a onclick="x()" style="c" href="javascript:x">'
    ) == ["inline <script>", "<style>", "<a onclick=…>", "<a style=…>", "<a href=javascript:…>"]
    assert inline_parts('<script src="/static/app.js"></script><link rel="stylesheet">') == []


def test_every_answer_carries_the_policy_and_no_page_has_inline_code(settings: Settings) -> None:
    with Service(settings) as service:
        check_answers(service.client)


def check_answers(client: TestClient) -> None:
    answers = {
        "/": client.get("/"),
        "/healthz": client.get("/healthz"),
        "/api/buckets": client.get("/api/buckets"),
        "/api/buckets (no key)": client.get("/api/buckets", headers={"Authorization": ""}),
        "/nowhere": client.get("/nowhere"),
        **{f"/static/{name}": client.get(f"/static/{name}") for name in PAGES},
    }
    for what, resp in answers.items():
        csp = resp.headers.get("content-security-policy", "")
        assert "script-src 'self'" in csp, what
        assert "style-src 'self'" in csp, what
        assert "frame-ancestors 'none'" in csp, what
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, what
        assert resp.headers["x-content-type-options"] == "nosniff", what
        assert resp.headers["referrer-policy"] == "no-referrer", what
    assert {"index.html", "lifecycle.html", "sql.html"} <= set(PAGES)
    for what, resp in answers.items():
        if resp.headers.get("content-type", "").startswith("text/html"):
            assert inline_parts(resp.text) == [], what
    # The API docs page loads Swagger UI from its CDN; its set-up is a file too.
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert inline_parts(docs.text) == []
    assert "unsafe-inline" not in docs.headers["content-security-policy"]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    with service_process(tmp_path_factory.mktemp("csp")) as proc:
        yield proc


@pytest.mark.browser
def test_chromium_reports_no_policy_violation_on_any_page(running: ServiceProcess) -> None:
    pytest.importorskip("playwright.sync_api", reason="Playwright is in the dev dependency group")
    from tests.browsers import chromium

    with chromium() as browser:
        page = browser.new_context().new_page()
        page.set_default_timeout(15_000)
        complaints: list[str] = []
        page.on(
            "console",
            lambda msg: (
                complaints.append(msg.text) if "Content Security Policy" in msg.text else None
            ),
        )
        page.on("pageerror", lambda err: complaints.append(str(err)))
        page.add_init_script(f"sessionStorage.setItem('lakewire.apiKey', {API_KEY!r})")
        for path in ["/", *(f"/static/{name}" for name in PAGES)]:
            page.goto(f"{running.url}{path}")
            page.wait_for_load_state("networkidle")
        assert complaints == []
