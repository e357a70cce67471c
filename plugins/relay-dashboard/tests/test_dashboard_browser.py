"""The dashboard in a real browser: headless Chromium driven by Playwright over a live
server on 127.0.0.1, on a workspace of real relay-mock jobs.

These tests also take the README's screenshots (dashboard-jobs.png, dashboard-job.png) at a
fixed 1280x800 viewport: into a temporary folder, or, to refresh the README's, into the
folder ``$RELAY_SCREENSHOTS`` names (``RELAY_SCREENSHOTS=docs pytest ...`` from the root).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_workspace import XSS, LiveServer, make_hub, submit_batch, submit_one
from playwright.sync_api import Browser, Page, expect, sync_playwright

from relay_dashboard import Settings

CHROMIUM = os.environ.get("RELAY_CHROMIUM", "/usr/bin/chromium")
# The machine's network is closed: without these, Chromium stalls on refused connections.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
TOKEN = "dash-5e6f7a8b9c0d1e2f"


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("RELAY_SCREENSHOTS")
    return Path(where) if where else tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, timezone_id="UTC", locale="en-US")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == []  # no script error on any page a test visited


def rows(page: Page) -> list[str]:
    return page.locator("#jobs tbody tr").evaluate_all("rows => rows.map(row => row.dataset.job)")


def test_the_jobs_table_shows_every_job_and_filters_narrow_it(
    live: LiveServer, page: Page, shots: Path
) -> None:
    page.goto(live.url + "/")
    assert set(rows(page)) == {
        "crashed",
        "eval-nightly",
        "labels-flaky",
        "hostile",
        "batch-done",
        "batch-cancelled",
        "batch-waiting",
    }
    # The description is shown as text, and its script never ran.
    expect(page.locator('tr[data-job="hostile"] td.job .sub')).to_have_text(XSS)
    assert page.evaluate("window.__pwned") is None
    expect(page.locator('tr[data-job="crashed"]')).to_contain_text("interrupted")
    expect(page.locator("#summary")).to_contain_text("592")  # requests in all
    page.screenshot(path=str(shots / "dashboard-jobs.png"))

    page.get_by_label("Status").select_option("completed")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**/?status=completed*")
    assert set(rows(page)) == {"eval-nightly", "labels-flaky", "hostile", "batch-done"}

    page.get_by_label("Search id or description").fill("flaky")
    page.get_by_label("Search id or description").press("Enter")
    page.wait_for_url("**q=flaky*")
    assert rows(page) == ["labels-flaky"]
    # The view is a URL: opened again, it shows the same jobs with the filters filled in.
    page.goto(page.url)
    assert rows(page) == ["labels-flaky"]
    expect(page.get_by_label("Status")).to_have_value("completed")
    expect(page.get_by_label("Search id or description")).to_have_value("flaky")


def test_a_job_page_shows_results_and_errors_and_pages_through_them(
    live: LiveServer, page: Page, shots: Path
) -> None:
    page.goto(live.url + "/jobs/labels-flaky")
    table = page.locator("#results tbody tr")
    expect(table).to_have_count(30)
    expect(table.nth(0)).to_contain_text("Question 0 of label?")
    expect(table.nth(2)).to_contain_text("failed")
    expect(table.nth(2)).to_contain_text("ProviderUnavailable")
    page.screenshot(path=str(shots / "dashboard-job.png"))

    page.get_by_role("link", name="failed").click()
    expect(table).to_have_count(10)
    expect(page.locator("#range")).to_have_text("Rows 1–10 of 10")

    page.goto(live.url + "/jobs/eval-nightly")
    expect(table).to_have_count(50)
    page.get_by_role("link", name="Next →").click()
    expect(page.locator("#range")).to_have_text("Rows 51–100 of 120")
    expect(table.nth(0)).to_contain_text("eval-050")
    page.get_by_role("link", name="Next →").click()
    expect(table).to_have_count(20)
    expect(page.get_by_role("link", name="Next →")).to_have_count(0)
    page.get_by_role("link", name="← Previous").click()
    expect(page.locator("#range")).to_have_text("Rows 51–100 of 120")


def test_the_download_returns_the_results_jsonl(live: LiveServer, page: Page) -> None:
    page.goto(live.url + "/jobs/batch-done")
    with page.expect_download() as caught:
        page.get_by_role("link", name="Download results (JSONL)").click()
    download = caught.value
    assert download.suggested_filename == "batch-done.results.jsonl"
    lines = [json.loads(line) for line in Path(download.path()).read_text().splitlines()]
    assert [line["custom_id"] for line in lines] == [f"b-{i:03d}" for i in range(20)]


def test_cancel_from_the_job_page(live: LiveServer, page: Page) -> None:
    page.goto(live.url + "/jobs/batch-waiting")
    expect(page.locator("#job-details .status-line")).to_contain_text("submitted")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel job").click()
    expect(page.locator("#job-details .status-line")).to_contain_text("cancelled")
    expect(page.get_by_role("button", name="Cancel job")).to_be_disabled()
    expect(page.locator("#action-status")).to_have_text("Job is cancelled.")


def test_auto_refresh_brings_new_jobs_without_a_reload_and_pause_stops_it(
    tmp_path: Path, page: Page
) -> None:
    submit_one(tmp_path, "first")
    hub = make_hub()
    # Refresh every second, as a user would pick it (the choice is kept in localStorage).
    page.add_init_script("localStorage.setItem('relay-dashboard.refresh', '1')")
    try:
        with LiveServer(tmp_path, Settings(), hub) as server:
            page.goto(server.url + "/?q=arrival")
            page.evaluate("window.__sameDocument = true")
            expect(page.locator("#empty")).to_be_visible()

            submit_one(tmp_path, "second", description="New arrival")
            expect(page.locator('tr[data-job="second"]')).to_be_visible()
            expect(page.locator("#shown")).to_have_text("1 job shown")
            assert page.evaluate("window.__sameDocument") is True  # no reload
            assert page.url.endswith("/?q=arrival")  # the filter held
            expect(page.locator("#summary [data-field=jobs]")).to_have_text("1")

            page.get_by_role("button", name="Pause").click()
            expect(page.locator("#refresh-status")).to_have_text("Paused")
            calls: list[str] = []
            page.on("request", lambda request: calls.append(request.url))
            submit_one(tmp_path, "third", description="Another arrival")
            page.wait_for_timeout(2500)  # more than two periods
            assert calls == []
            expect(page.locator('tr[data-job="third"]')).to_have_count(0)

            page.get_by_role("button", name="Resume").click()
            expect(page.locator('tr[data-job="third"]')).to_be_visible()
    finally:
        hub.close()


def test_a_token_given_once_in_the_url_is_kept_for_the_tab_and_asked_for_elsewhere(
    tmp_path: Path, browser: Browser
) -> None:
    submit_batch(tmp_path, "first")
    submit_batch(tmp_path, "second")
    hub = make_hub()
    context = browser.new_context(viewport=VIEWPORT)
    context.on("dialog", lambda dialog: dialog.accept())
    try:
        with LiveServer(tmp_path, Settings(token=TOKEN), hub) as server:
            page = context.new_page()
            page.goto(f"{server.url}/jobs/first?token={TOKEN}")
            # Out of the address bar (and so of history and bookmarks) at once.
            page.wait_for_url(f"{server.url}/jobs/first")
            page.get_by_role("button", name="Cancel job").click()
            expect(page.locator("#action-status")).to_have_text("Job is cancelled.")

            # Another tab does not have it: the page asks, then acts.
            other = context.new_page()
            other.goto(f"{server.url}/jobs/second")
            other.get_by_role("button", name="Cancel job").click()
            other.get_by_label("This dashboard needs its access token").fill(TOKEN)
            other.get_by_role("button", name="Use token").click()
            expect(other.locator("#action-status")).to_have_text("Job is cancelled.")
    finally:
        context.close()
        hub.close()


def test_beyond_localhost_the_pages_ask_for_the_token_then_show_and_act(
    tmp_path: Path, page: Page
) -> None:
    submit_batch(tmp_path, "first")
    hub = make_hub()
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        with LiveServer(tmp_path, Settings(host="0.0.0.0", token=TOKEN), hub) as server:
            page.goto(f"{server.url}/jobs/first")
            expect(page.get_by_role("heading", name="Log in")).to_be_visible()
            expect(page.locator("#results")).to_have_count(0)  # no data before the login

            page.get_by_label("Access token", exact=True).fill("not-the-token")
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("alert")).to_have_text("That is not this dashboard's token.")

            page.get_by_label("Access token", exact=True).fill(TOKEN)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(f"{server.url}/jobs/first")
            expect(page.locator("#job-details .status-line")).to_contain_text("submitted")
            # The session cookie is out of the page script's reach.
            assert "relay_dashboard_session" not in page.evaluate("document.cookie")

            # The login covers the actions too: no second prompt for the token.
            page.get_by_role("button", name="Cancel job").click()
            expect(page.locator("#action-status")).to_have_text("Job is cancelled.")
            expect(page.locator("#token-form")).to_be_hidden()
    finally:
        hub.close()
