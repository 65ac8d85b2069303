"""The Stripe webhook: signatures, exactly-once events, any order, forward only."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
import sqlalchemy as sa

from prefs_service.extensions import db
from prefs_service.notices.models import Notice
from prefs_service.orders.models import Order, Payment, StripeEvent
from tests.orders.stripe_events import CARD, checkout_session, event, invoice, post, sign


@pytest.fixture
def deliver(client, worker):
    """Post an event and let the worker apply it."""

    def send(payload, **options):
        response = post(client, payload, **options)
        worker.wait()
        return response

    return send


def orders_of(app):
    with app.app_context():
        rows = db.session.scalars(sa.select(Order).order_by(Order.id)).all()
        db.session.close()
        return rows


def receipts(app):
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Notice).where(Notice.kind == "receipt"))


def test_a_paid_checkout_makes_one_order_and_one_receipt(app, client, worker):
    response = post(client, event("checkout.session.completed", checkout_session("cs_test_1")))
    assert response.status_code == 200 and response.json == {"received": True, "outcome": "accepted"}
    worker.wait()
    [order] = orders_of(app)
    assert order.status == "paid" and order.amount == 4900 and order.currency == "gbp" and order.plan == "crm-standard"
    assert order.stripe_checkout_session_id == "cs_test_1" and order.paid_at is not None
    assert receipts(app) == 1


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body, header: (body, header.replace("v1=", "v1=0")),  # wrong signature
        lambda body, header: (body + b" ", header),  # body changed after signing
        lambda body, header: (body, sign(body, secret="whsec_other_" + "x" * 30)),  # another secret
        lambda body, header: (body, sign(body, timestamp=int(time.time()) - 301)),  # stale
        lambda body, header: (body, ""),  # missing
        lambda body, header: (b"not json", sign(b"not json")),  # signed garbage
    ],
)
def test_bad_or_stale_signatures_are_400_and_change_nothing(app, client, tamper):
    body = json.dumps(event("checkout.session.completed", checkout_session("cs_test_bad"))).encode()
    body, header = tamper(body, sign(body))
    response = client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": header, "Content-Type": "application/json"})
    assert response.status_code == 400 and response.content_type == "application/problem+json"
    assert orders_of(app) == []
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(StripeEvent)) == 0


def test_a_signature_within_five_minutes_is_accepted(client):
    body = json.dumps(event("customer.created", {"id": "cus_1"})).encode()
    header = sign(body, timestamp=int(time.time()) - 290)
    assert client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": header}).json["outcome"] == "ignored"


def test_without_a_secret_the_webhook_says_it_is_not_configured(make_app):
    client = make_app(stripe_webhook_secret="").test_client()
    response = post(client, event("checkout.session.completed", checkout_session("cs_x")))
    assert response.status_code == 503 and "STRIPE_WEBHOOK_SECRET" in response.json["detail"]


def test_the_same_event_twice_has_one_effect(app, client, worker):
    payload = event("checkout.session.completed", checkout_session("cs_test_dup"))
    assert post(client, payload).json["outcome"] == "accepted"
    assert post(client, payload).json["outcome"] == "duplicate"
    worker.wait()
    assert len(orders_of(app)) == 1 and receipts(app) == 1


def test_the_same_event_twice_at_the_same_moment_has_one_effect(app, make_app, worker):
    payload = event("checkout.session.completed", checkout_session("cs_test_race"))
    clients = [make_app().test_client() for _ in range(4)]
    start = threading.Barrier(len(clients))
    outcomes = []

    def send(client):
        start.wait()
        outcomes.append(post(client, payload).json["outcome"])

    threads = [threading.Thread(target=send, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["accepted", "duplicate", "duplicate", "duplicate"]
    worker.wait()
    assert len(orders_of(app)) == 1 and receipts(app) == 1


def test_checkout_and_first_invoice_at_the_same_moment_are_one_purchase(app, make_app):
    """Both events accepted at once, then applied by two worker threads at once."""
    session = event("checkout.session.completed", checkout_session("cs_test_both", subscription="sub_both"))
    first = event("invoice.paid", invoice("in_both", subscription="sub_both"))
    a, b = make_app().test_client(), make_app().test_client()
    start = threading.Barrier(2)
    codes = []

    def send(client, payload):
        start.wait()
        codes.append(post(client, payload).status_code)

    threads = [threading.Thread(target=send, args=(a, session)), threading.Thread(target=send, args=(b, first))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert codes == [200, 200]
    app.extensions["prefs.jobs"].start(threads=4)
    from tests.conftest import InProcessWorker

    InProcessWorker(app).wait()
    [order] = orders_of(app)
    assert order.stripe_checkout_session_id == "cs_test_both" and order.stripe_subscription_id == "sub_both"
    assert receipts(app) == 1


def test_the_first_invoice_before_its_checkout_session_is_still_one_purchase(app, client, deliver):
    deliver(event("invoice.paid", invoice("in_first", subscription="sub_1")))
    [order] = orders_of(app)
    assert order.status == "paid" and order.stripe_subscription_id == "sub_1"
    deliver(event("checkout.session.completed", checkout_session("cs_late", subscription="sub_1", partner="acme")))
    [order] = orders_of(app)
    assert order.stripe_checkout_session_id == "cs_late" and order.partner_code == "acme"
    assert receipts(app) == 1
    deliver(event("invoice.paid", invoice("in_second", subscription="sub_1", billing_reason="subscription_cycle")))
    with app.app_context():
        assert [p.kind for p in db.session.scalars(sa.select(Payment).order_by(Payment.id))] == ["purchase", "renewal"]
    assert receipts(app) == 1


def test_unpaid_waits_for_the_async_payment(app, client, deliver):
    deliver(event("checkout.session.completed", checkout_session("cs_async", payment_status="unpaid")))
    assert orders_of(app)[0].status == "pending" and receipts(app) == 0
    deliver(event("checkout.session.async_payment_succeeded", checkout_session("cs_async", payment_status="paid")))
    assert orders_of(app)[0].status == "paid" and receipts(app) == 1


def test_an_order_only_moves_forward(app, client, deliver):
    deliver(event("checkout.session.completed", checkout_session("cs_fwd", subscription="sub_fwd")))
    deliver(event("checkout.session.async_payment_failed", checkout_session("cs_fwd", subscription="sub_fwd")))
    assert orders_of(app)[0].status == "paid"
    deliver(event("customer.subscription.deleted", {"id": "sub_fwd", "object": "subscription"}))
    assert orders_of(app)[0].status == "cancelled"
    deliver(event("invoice.paid", invoice("in_fwd", subscription="sub_fwd")))
    assert orders_of(app)[0].status == "cancelled"


def test_a_failed_async_payment_before_any_success(app, client, deliver):
    deliver(event("checkout.session.completed", checkout_session("cs_fail", payment_status="unpaid")))
    deliver(event("checkout.session.async_payment_failed", checkout_session("cs_fail", payment_status="unpaid")))
    assert orders_of(app)[0].status == "payment_failed" and receipts(app) == 0


def test_renewal_failures_are_noted_without_moving_the_order_back(app, client, deliver):
    deliver(event("invoice.paid", invoice("in_r1", subscription="sub_r")))
    deliver(event("invoice.payment_failed", invoice("in_r2", subscription="sub_r", billing_reason="subscription_cycle")))
    order = orders_of(app)[0]
    assert order.status == "paid" and order.last_payment_failed_at is not None


def test_other_event_types_are_acknowledged_and_ignored(app, client):
    response = post(client, event("charge.refunded", {"id": "ch_1", "object": "charge", "payment_method_details": {"card": CARD}}))
    assert response.status_code == 200 and response.json["outcome"] == "ignored"
    assert orders_of(app) == []


def test_no_card_field_reaches_the_database_or_the_logs(app, client, deliver, capfd):
    deliver(event("checkout.session.completed", checkout_session("cs_card", subscription="sub_card")))
    deliver(event("invoice.paid", invoice("in_card", subscription="sub_card")))
    deliver(event("charge.succeeded", {"id": "ch_2", "payment_method_details": {"card": CARD}}))
    with app.app_context():
        dump = []
        for table in db.metadata.sorted_tables:
            for row in db.session.execute(sa.select(table)):
                dump.append(" ".join(str(value) for value in row))
        text = "\n".join(dump).lower()
    # Whole words only: a timestamp's microseconds or a time-based event id may hold "4242" by chance.
    for value in ("4242", "visa", "xt5ewllds7fjjr1c", "exp_month", "exp_year", "cvc_check", "last4", "fingerprint"):
        assert not re.search(rf"\b{value}\b", text), value
    logged = capfd.readouterr().err.lower()
    assert not re.search(r"\b(4242|xt5ewllds7fjjr1c)\b", logged)
