"""The request metrics page in real Chromium: from the navigation, a year picked, the CSV downloaded, on a phone too."""

from __future__ import annotations

from tests.rights.report_support import make_requests
from tests.web.test_browser import browser, chromium, live_server, pages  # noqa: F401  (the browser fixtures)
from tests.web.test_staff_browser import create_staff, sign_in


def test_an_admin_picks_a_year_and_downloads_it(live_server, pages, tmp_path):  # noqa: F811
    app, base = live_server, live_server.config["PREFS"].base_url
    make_requests(app)
    create_staff(app, "lead@example.com", "admin")
    page = pages.new_page(accept_downloads=True)
    sign_in(page, base, "lead@example.com")
    page.get_by_role("link", name="Request metrics").click()
    page.get_by_label("Year").select_option("2025")
    page.get_by_role("button", name="Show").click()
    page.get_by_role("heading", name="Rights requests in 2025").wait_for()
    assert page.get_by_role("row", name="Access 7 2 2 1 3 10.0 11.2").is_visible()
    assert page.get_by_role("row", name="Correction 0 0 0 0 0 — —").is_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download 2025 as CSV").click()
    assert download.value.suggested_filename == "requests-2025.csv"
    saved = tmp_path / "requests-2025.csv"
    download.value.save_as(saved)
    assert "2025,erasure,4,3,1,0,0,4.0,4.5" in saved.read_text()


def test_on_a_phone_only_the_table_scrolls_sideways(live_server, pages):  # noqa: F811
    app, base = live_server, live_server.config["PREFS"].base_url
    create_staff(app, "phone@example.com", "admin")
    page = pages.new_page(viewport={"width": 390, "height": 844})
    sign_in(page, base, "phone@example.com")
    page.goto(base + "/staff/reports/requests?year=2025")
    page.get_by_role("heading", name="Rights requests in 2025").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.get_by_role("button", name="Show").is_visible()
