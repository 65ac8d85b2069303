"""What the purchase mails say: the plan by its label, the date and the seller on
the receipt, and where to write (URGENT in the subject) if delivery goes wrong."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from prefs_service.clock import utcnow
from tests.conftest import InProcessWorker
from tests.orders.stripe_events import checkout_session, event, post


def receipt_text(make_app, smtp, *, session_id: str, plans=None, **session) -> str:
    app = make_app(plans=plans or {})
    app.extensions["prefs.jobs"].start(threads=2)
    post(app.test_client(), event("checkout.session.completed", checkout_session(session_id, **session)))
    InProcessWorker(app).wait()
    [receipt] = smtp.wait_for(1)
    return receipt.get_body(("plain",)).get_content().replace("\r\n", "\n")


@pytest.mark.parametrize(
    ("plans", "stripe_label", "shown"),
    [
        ({"crm-standard": "OpenCRM Standard, monthly"}, "Stripe's name", "OpenCRM Standard, monthly"),  # the setting first
        ({"other": "Other plan"}, "OpenCRM Standard (Stripe)", "OpenCRM Standard (Stripe)"),  # then Stripe's metadata
        ({}, None, "Crm standard"),  # at worst the code, readable
    ],
)
def test_the_receipt_names_the_plan_the_date_and_the_seller(make_app, smtp, plans, stripe_label, shown):
    text = receipt_text(make_app, smtp, session_id="cs_copy", plans=plans, plan_label=stripe_label)
    assert f"Plan: {shown}\n" in text and "crm-standard" not in text
    assert "Seller: Example Test Ltd" in text
    assert f"Date: {utcnow():%-d %B %Y}" in text
    assert "Write to help@example.com with URGENT in the subject line" in text


def test_the_delivery_mail_says_where_to_write_with_urgent_in_the_subject(app, client, smtp, worker):
    post(client, event("checkout.session.completed", checkout_session("cs_deliver", email="dee@example.com")))
    worker.wait()
    [receipt] = smtp.wait_for(1)
    link = urlsplit(re.search(r"https?://\S*/purchase/commission/\S+", receipt.get_body(("plain",)).get_content()).group(0)).path
    page = client.get(link)
    assert b"(Crm standard)" in page.data  # the plan by its label (no PREFS_PLANS here: the code made readable)
    token = re.search(rb'name="csrf_token" value="([^"]+)"', page.data).group(1).decode()
    done = client.post(link, data={"csrf_token": token, "username": "dee", "system_name": "dee-crm"})
    assert b"mailto:help@example.com" in done.data and b"URGENT" in done.data
    worker.wait()
    delivery = next(m for m in smtp.wait_for(2) if m["Subject"].startswith("Your system is ready"))
    text = delivery.get_body(("plain",)).get_content()
    assert "Problems with your delivery? Write to help@example.com with URGENT in the subject line" in text
    assert "Example Test Ltd" in text and 'href="mailto:help@example.com"' in delivery.get_body(("html",)).get_content()
