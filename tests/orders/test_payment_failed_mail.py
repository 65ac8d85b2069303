"""A failed asynchronous payment (a bank debit refused days later) is mailed to
the customer once: what happened and what to do."""

from __future__ import annotations

import sqlalchemy as sa

from prefs_service.extensions import db
from prefs_service.job_kinds import JobKind
from prefs_service.notices.models import Notice
from tests.helpers import jobs_settled
from tests.orders.stripe_events import checkout_session, event, invoice, post


def mails_of_kind(app, kind: str) -> int:
    with app.app_context():
        count = db.session.scalar(sa.select(sa.func.count()).select_from(Notice).where(Notice.kind == kind))
        db.session.rollback()
        return count


def test_a_failed_bank_debit_mails_the_customer_what_happened_and_what_to_do(app, client, smtp, worker):
    post(
        client,
        event("checkout.session.completed", checkout_session("cs_test_debit_fail", email="Debi@Example.com", payment_status="unpaid")),
    )
    worker.wait()
    assert smtp.messages == []  # no receipt for an unpaid order
    failed = event("checkout.session.async_payment_failed", checkout_session("cs_test_debit_fail", payment_status="unpaid"))
    post(client, failed)
    worker.wait()
    [mail] = smtp.wait_for(1)
    assert mail["To"] == "debi@example.com" and mail["From"] == app.config["PREFS"].mail_from_transactional
    reference = mail["Subject"].removeprefix("Your payment for order ").removesuffix(" did not go through")
    assert reference.startswith("ORD-")
    body = mail.get_body(("plain",)).get_content()
    assert f"Your bank did not confirm the payment for order {reference}" in body and "Nothing was charged" in body
    assert "Amount: 49.00 GBP" in body and "Try again: start a new purchase" in body
    assert f"write to {app.config['PREFS'].support_email} quoting order {reference}" in body
    assert "4242" not in body  # nothing of the card

    post(client, failed)  # Stripe delivers the same event again
    post(client, event("checkout.session.async_payment_failed", checkout_session("cs_test_debit_fail", payment_status="unpaid")))
    worker.wait()
    assert jobs_settled(app, JobKind.NOTICE_DELIVER, JobKind.ORDER_APPLY_STRIPE_EVENT)
    assert len(smtp.messages) == 1 and mails_of_kind(app, "payment_failed") == 1
    page = client.get("/purchase/complete?session_id=cs_test_debit_fail")
    assert b"The payment did not go through" in page.data


def test_a_failure_heard_of_before_the_checkout_still_reaches_the_customer(app, client, smtp, worker):
    post(client, event("checkout.session.async_payment_failed", checkout_session("cs_test_fail_first", payment_status="unpaid")))
    worker.wait()
    [mail] = smtp.wait_for(1)
    assert mail["To"] == "buyer@example.com" and "did not go through" in mail["Subject"]


def test_a_late_failure_for_a_paid_order_mails_nothing(app, client, smtp, worker):
    post(client, event("checkout.session.completed", checkout_session("cs_test_paid", subscription="sub_paid")))
    post(client, event("invoice.paid", invoice("in_paid", subscription="sub_paid")))
    worker.wait()
    post(client, event("checkout.session.async_payment_failed", checkout_session("cs_test_paid", subscription="sub_paid")))
    worker.wait()
    assert jobs_settled(app, JobKind.NOTICE_DELIVER, JobKind.ORDER_APPLY_STRIPE_EVENT)
    assert mails_of_kind(app, "payment_failed") == 0 and mails_of_kind(app, "receipt") == 1
