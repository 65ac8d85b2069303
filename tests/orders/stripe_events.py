"""Stripe events built in the tests and signed with the test secret, the way
Stripe signs them: HMAC-SHA256 over "<timestamp>.<body>"."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time

from tests.conftest import TEST_WEBHOOK_SECRET

_ids = itertools.count(1)
CARD = {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2031, "fingerprint": "Xt5EWLLDS7FJjR1c", "cvc_check": "pass"}


def sign(body: bytes, *, secret: str = TEST_WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


def event(type: str, obj: dict, *, event_id: str | None = None) -> dict:
    return {"id": event_id or f"evt_test_{next(_ids)}_{int(time.time() * 1000)}", "object": "event", "type": type,
            "api_version": "2024-06-20", "created": int(time.time()), "livemode": False, "data": {"object": obj}}  # fmt: skip


def post(client, payload: dict, **sign_options):
    body = json.dumps(payload).encode()
    return client.post(
        "/webhooks/stripe", data=body, headers={"Stripe-Signature": sign(body, **sign_options), "Content-Type": "application/json"}
    )


def checkout_session(session_id: str, *, email="buyer@example.com", amount=4900, currency="gbp", payment_status="paid",
                     subscription=None, partner=None, plan="crm-standard", plan_label=None):  # fmt: skip
    return {
        "id": session_id,
        "object": "checkout.session",
        "mode": "subscription" if subscription else "payment",
        "amount_total": amount,
        "currency": currency,
        "payment_status": payment_status,
        "status": "complete",
        "customer": "cus_test_1",
        "payment_intent": None if subscription else f"pi_{session_id}",
        "subscription": subscription,
        "client_reference_id": partner,
        "metadata": {"plan": plan, **({"plan_label": plan_label} if plan_label else {})},
        "customer_details": {
            "email": email,
            "name": "Bea Buyer",
            "address": {"line1": "1 High Street", "city": "Springfield", "postal_code": "AB1 2CD", "country": "GB"},
            "phone": None,
        },
        # Stripe sends more than we keep; none of this may reach the database or logs.
        "payment_method_details": {"type": "card", "card": CARD},
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
    }


def invoice(
    invoice_id: str, *, subscription: str, billing_reason="subscription_create", amount=4900, email="buyer@example.com", paid_at=None
):
    return {
        "id": invoice_id,
        "object": "invoice",
        "subscription": subscription,
        "billing_reason": billing_reason,
        "amount_paid": amount,
        "currency": "gbp",
        "customer": "cus_test_1",
        "customer_email": email,
        "customer_name": "Bea Buyer",
        "status_transitions": {"paid_at": paid_at or int(time.time())},
        "charge": {"payment_method_details": {"card": CARD}},
    }


def apply_accepted(app) -> None:
    """Run the jobs that apply accepted events, here and now (for tests that
    must not start a worker, which would also deliver the orders)."""
    import sqlalchemy as sa

    from prefs_service.extensions import db
    from prefs_service.job_kinds import JobKind
    from prefs_service.jobs.dispatch import jobs
    from prefs_service.outbox import QUEUED, Job

    with app.app_context():
        pending = db.session.scalars(
            sa.select(Job.id).where(Job.kind == JobKind.ORDER_APPLY_STRIPE_EVENT, Job.status == QUEUED).order_by(Job.id)
        ).all()
        db.session.rollback()
        for job_id in pending:
            assert jobs().execute(job_id) == "done"
