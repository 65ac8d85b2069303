"""Stripe's return page in Chromium: it stops refreshing and says what to do."""

from __future__ import annotations

from prefs_service.web.purchase import CONFIRM_REFRESH_SECONDS, CONFIRM_REFRESHES
from tests.web.test_browser import browser, chromium, live_server, pages  # noqa: F401  # the fixtures


def test_the_return_page_for_a_payment_never_heard_of_stops_refreshing_and_says_what_to_do(live_server, pages):  # noqa: F811
    base = live_server.config["PREFS"].base_url
    page = pages.new_page()
    last_refresh = CONFIRM_REFRESHES - 1  # the minute almost over
    page.goto(f"{base}/purchase/complete?session_id=cs_test_lost&waited={last_refresh}")
    assert "being confirmed" in page.get_by_role("status").inner_text()
    page.wait_for_selector("text=We cannot find this payment", timeout=(CONFIRM_REFRESH_SECONDS + 10) * 1000)  # refreshed by itself
    assert page.title() == f"We cannot find this payment – {live_server.config['PREFS'].org_name}"
    assert "do not pay a second time" in page.locator("main").inner_text()
    with page.expect_navigation(timeout=5000) as navigation:  # "Check again now" starts a fresh minute
        page.get_by_role("link", name="Check again now").click()
    assert navigation.value.url.endswith("/purchase/complete?session_id=cs_test_lost")
    assert "being confirmed" in page.get_by_role("status").inner_text()
