"""Stripe's return page, /purchase/complete: it refreshes while the payment is
confirmed, for a bounded time, then says what to do; a session id we cannot
know is a clear 404 at once."""

from __future__ import annotations

import html
import re

import pytest

from prefs_service.web.purchase import CONFIRM_REFRESH_SECONDS, CONFIRM_REFRESHES
from tests.orders.stripe_events import apply_accepted, checkout_session, event, post

REFRESH = re.compile(rb'<meta http-equiv="refresh" content="(\d+); url=([^"]+)">')


def refresh_of(page) -> tuple[int, str] | None:
    found = REFRESH.search(page.data)
    return (int(found.group(1)), html.unescape(found.group(2).decode())) if found else None


def follow_refreshes(client, url: str):
    """Follow the page's own refreshes, as a browser left open would: the last
    page and how long the refreshing lasted."""
    page, waited = client.get(url), 0
    while (refresh := refresh_of(page)) is not None:
        seconds, url = refresh
        waited += seconds
        assert waited <= 10 * 60, "the page refreshes for ever"
        page = client.get(url)
    return page, waited


@pytest.mark.parametrize("session_id", ["", "abc", "cs_", "cs_<script>", "cs_" + "a" * 300, "pi_123"])
def test_a_session_id_that_cannot_be_stripes_is_a_404_saying_what_to_do(client, session_id):
    page = client.get("/purchase/complete", query_string={"session_id": session_id})
    assert page.status_code == 404 and refresh_of(page) is None
    assert b"the receipt we mailed you has a link" in page.data and b"write to help@example.com with the date and amount" in page.data


def test_an_unknown_session_refreshes_for_a_minute_then_is_a_404_with_what_to_do(client):
    first = client.get("/purchase/complete?session_id=cs_test_never_heard_of")
    assert first.status_code == 200 and b"being confirmed" in first.data
    assert refresh_of(first) == (CONFIRM_REFRESH_SECONDS, "/purchase/complete?session_id=cs_test_never_heard_of&waited=1")
    last, waited = follow_refreshes(client, "/purchase/complete?session_id=cs_test_never_heard_of")
    assert waited == CONFIRM_REFRESHES * CONFIRM_REFRESH_SECONDS == 60
    assert last.status_code == 404
    assert b"<title>We cannot find this payment \xe2\x80\x93 Example Test Ltd</title>" in last.data
    assert b"do not pay a second time" in last.data and b'write to <a href="mailto:help@example.com">help@example.com</a>' in last.data
    assert b'href="/purchase/complete?session_id=cs_test_never_heard_of"' in last.data  # check again: a fresh minute


@pytest.mark.parametrize("waited", ["abc", "-5", ""])
def test_a_mangled_count_starts_the_minute_again(client, waited):
    page = client.get("/purchase/complete", query_string={"session_id": "cs_test_x", "waited": waited})
    assert refresh_of(page) == (CONFIRM_REFRESH_SECONDS, "/purchase/complete?session_id=cs_test_x&waited=1")


def test_a_payment_the_bank_has_not_confirmed_stops_refreshing_and_says_what_to_do(app, client):
    post(client, event("checkout.session.completed", checkout_session("cs_test_debit", payment_status="unpaid")))
    apply_accepted(app)
    assert b"being confirmed" in client.get("/purchase/complete?session_id=cs_test_debit").data
    last, waited = follow_refreshes(client, "/purchase/complete?session_id=cs_test_debit")
    assert waited == 60 and last.status_code == 200
    text = last.data.decode()
    assert "<title>Your payment is not confirmed yet \u2013 Example Test Ltd</title>" in text
    reference = re.search(r"order (ORD-[0-9A-Z-]+)", text).group(1)
    assert (
        "take a few working days" in text
        and f'Write to <a href="mailto:help@example.com">help@example.com</a>, quoting order {reference}' in text
    )
    assert "do not pay a second time" in text

    post(client, event("checkout.session.async_payment_succeeded", checkout_session("cs_test_debit", payment_status="paid")))
    apply_accepted(app)
    again = client.get(re.search(r'href="([^"]+)">Check again now', text).group(1).replace("&amp;", "&"))
    assert again.status_code == 200 and b"Set up your system" in again.data
