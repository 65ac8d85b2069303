"""From payment to a delivered system, through HTTP and a real worker; the
watchdog; partner sales; the purchase profile."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from prefs_service.clock import utcnow
from prefs_service.extensions import db
from prefs_service.orders import service as orders
from prefs_service.orders import watchdog
from prefs_service.orders.models import Order, ProvisionedSystem
from tests.conftest import free_port
from tests.orders.stripe_events import apply_accepted, checkout_session, event, invoice, post


def csrf_of(page) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page.data).group(1).decode()


def path_in(message, marker: str) -> str:
    text = message.get_body(("plain",)).get_content()
    return urlsplit(re.search(r"https?://\S*" + marker + r"\S+", text).group(0)).path


def order_row(app, **where):
    with app.app_context():
        row = db.session.scalars(sa.select(Order).filter_by(**where)).one()
        db.session.close()
        return row


def test_payment_to_delivery_through_a_real_worker(app, client, smtp, worker):
    waiting = client.get("/purchase/complete?session_id=cs_test_path")  # back from Stripe before the webhook
    assert b"being confirmed" in waiting.data and b'http-equiv="refresh"' in waiting.data
    post(client, event("checkout.session.completed", checkout_session("cs_test_path", email="Bea@Example.com")))
    worker.wait()
    [receipt] = smtp.wait_for(1)
    assert receipt["To"] == "bea@example.com" and receipt["Subject"].startswith("Your receipt for order ORD-")
    assert receipt["From"] == app.config["PREFS"].mail_from_transactional and "List-Unsubscribe" not in receipt
    assert "49.00 GBP" in receipt.get_body(("plain",)).get_content()

    page = client.get("/purchase/complete?session_id=cs_test_path")
    assert b"Set up your system" in page.data
    bad = client.post(
        "/purchase/complete?session_id=cs_test_path", data={"csrf_token": csrf_of(page), "username": "Bea!", "system_name": "x"}
    )
    assert bad.status_code == 400 and b"lower-case letters" in bad.data
    done = client.post(
        "/purchase/complete?session_id=cs_test_path", data={"csrf_token": csrf_of(page), "username": "bea", "system_name": "bea-crm"}
    )
    assert done.status_code == 200 and b"bea-crm" in done.data
    worker.wait()
    delivery = next(m for m in smtp.wait_for(2) if m["Subject"].startswith("Your system is ready"))
    body = delivery.get_body(("plain",)).get_content()
    assert "https://bea-crm.crm.example" in body and "User name: bea" in body and "password" in body.lower()
    assert order_row(app, stripe_checkout_session_id="cs_test_path").status == "delivered"

    set_password = path_in(delivery, "/purchase/set-password/")
    form = client.get(set_password)
    short = client.post(set_password, data={"csrf_token": csrf_of(form), "password": "short", "confirm": "short"})
    assert short.status_code == 400
    chosen = "a very good password 42"
    ok = client.post(set_password, data={"csrf_token": csrf_of(form), "password": chosen, "confirm": chosen})
    assert ok.status_code == 200 and b"Your password is set" in ok.data
    again = client.post(set_password, data={"csrf_token": csrf_of(form), "password": chosen, "confirm": chosen})
    assert again.status_code == 409
    with app.app_context():
        system = db.session.scalars(sa.select(ProvisionedSystem)).one()
        assert system.password_hash.startswith("$argon2") and chosen not in system.password_hash
    assert all(chosen not in m.as_string() for m in smtp.messages)  # no password is ever mailed


def test_the_receipt_link_commissions_too_and_system_names_are_unique(app, client, smtp, worker):
    post(client, event("checkout.session.completed", checkout_session("cs_one", email="one@example.com")))
    post(client, event("checkout.session.completed", checkout_session("cs_two", email="two@example.com")))
    worker.wait()
    first = next(m for m in smtp.wait_for(2) if m["To"] == "one@example.com")
    second = next(m for m in smtp.messages if m["To"] == "two@example.com")
    link = path_in(first, "/purchase/commission/")
    page = client.get(link)
    client.post(link, data={"csrf_token": csrf_of(page), "username": "one", "system_name": "shared-name"})
    other = path_in(second, "/purchase/commission/")
    clash = client.post(other, data={"csrf_token": csrf_of(client.get(other)), "username": "two", "system_name": "shared-name"})
    assert clash.status_code == 400 and b"already taken" in clash.data
    assert client.get("/purchase/commission/garbage").status_code == 404
    assert client.get("/purchase/complete?session_id=nonsense").status_code == 404


class _Catcher(BaseHTTPRequestHandler):
    received: ClassVar[list] = []

    def do_POST(self):
        _Catcher.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def escalation_hook():
    _Catcher.received = []
    port = free_port()
    server = HTTPServer(("127.0.0.1", port), _Catcher)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}/hook", _Catcher.received
    server.shutdown()


def test_the_watchdog_escalates_repeats_and_stops_when_resolved(make_app, smtp, escalation_hook):
    url, received = escalation_hook
    app = make_app(escalation_webhook_url=url, escalation_repeat_seconds=900, delivery_sla_seconds=600)
    client = app.test_client()
    post(client, event("checkout.session.completed", checkout_session("cs_late", email="late@example.com")))
    apply_accepted(app)
    order = order_row(app, stripe_checkout_session_id="cs_late")
    with app.app_context():  # commissioned, but no worker delivers it
        orders.commission(order=db.session.get(Order, order.id), username="late", system_name="late-sys")
        db.session.commit()
        start = utcnow()
        assert watchdog.watchdog(now=start + timedelta(seconds=599))["opened"] == 0
        assert watchdog.watchdog(now=start + timedelta(seconds=601)) == {"opened": 1, "resolved": 0, "notified": 1}
        assert watchdog.watchdog(now=start + timedelta(seconds=900)) == {"opened": 0, "resolved": 0, "notified": 0}
        # 03:00 on a Sunday is no different
        assert watchdog.watchdog(now=start + timedelta(seconds=601 + 900))["notified"] == 1
        [(escalation, _)] = watchdog.open_escalations()
        watchdog.resolve_escalation(escalation_id=escalation.id, note="called the customer", actor="staff:1")
        assert watchdog.watchdog(now=start + timedelta(seconds=5000))["notified"] == 0
        db.session.commit()
    app.extensions["prefs.jobs"].start(threads=2)  # sends the two rounds of notices (and delivers the order)
    from tests.conftest import InProcessWorker

    InProcessWorker(app).wait()
    urgent = [m for m in smtp.wait_for(3) if m["To"] == "oncall@example.com"]
    assert len(urgent) == 2 and all(m["Subject"].startswith("URGENT") for m in urgent)
    assert len(received) == 2 and received[0]["urgent"] is True and received[0]["reference"] == order.reference


def test_a_paid_order_not_commissioned_in_a_day_is_escalated_and_closes_itself(app, client):
    post(client, event("checkout.session.completed", checkout_session("cs_idle", email="idle@example.com")))
    apply_accepted(app)
    with app.app_context():
        start = utcnow()
        assert watchdog.watchdog(now=start + timedelta(hours=23))["opened"] == 0
        assert watchdog.watchdog(now=start + timedelta(hours=25))["opened"] == 1
        order = db.session.scalars(sa.select(Order)).one()
        orders.commission(order=order, username="idle", system_name="idle-sys")
        assert watchdog.watchdog(now=start + timedelta(hours=26))["resolved"] == 1
        db.session.commit()


def test_partner_referrals_disclosure_and_sales(app, client, api_key, worker):
    admin = api_key("admin")
    client.post("/v1/partners", json={"code": "acme", "name": "Acme Resellers", "contact_email": "sales@acme.example.com"}, headers=admin)
    post(
        client,
        event("checkout.session.completed", checkout_session("cs_acme", subscription="sub_acme", partner="acme", email="ref@example.com")),
    )
    first_paid = int(utcnow().timestamp()) - 100
    post(
        client,
        event("invoice.paid", invoice("in_acme_1", subscription="sub_acme", amount=4900, email="ref@example.com", paid_at=first_paid)),
    )
    post(
        client,
        event(
            "invoice.paid",
            invoice("in_acme_2", subscription="sub_acme", billing_reason="subscription_cycle", amount=4900, paid_at=first_paid + 50),
        ),
    )
    post(client, event("checkout.session.completed", checkout_session("cs_direct", email="direct@example.com")))
    worker.wait()
    order = order_row(app, stripe_checkout_session_id="cs_acme")
    assert order.partner_code == "acme"

    with app.app_context():  # commissioning hands the order to the reseller: a disclosure
        orders.commission(order=db.session.get(Order, order.id), username="ref", system_name="ref-sys")
        db.session.commit()
    worker.wait()
    subject = client.post("/v1/subjects", json={"email": "ref@example.com"}, headers=admin).json
    export = client.get(f"/v1/subjects/{subject['id']}/consents", headers=admin)
    assert export.status_code == 200
    from prefs_service.partners.models import Disclosure

    with app.app_context():
        [disclosure] = db.session.scalars(sa.select(Disclosure)).all()
        assert disclosure.purpose == "share_for_fulfilment" and disclosure.partner.code == "acme"

    today = utcnow().date()
    query = {"from": (today - timedelta(days=1)).isoformat(), "to": (today + timedelta(days=1)).isoformat()}
    sales = client.get("/v1/partners/acme/sales", query_string=query, headers=admin).json
    assert [s["kind"] for s in sales["sales"]] == ["purchase", "renewal"] and sales["totals"] == {"gbp": 9800}
    as_csv = client.get("/v1/partners/acme/sales", query_string={**query, "format": "csv"}, headers=admin)
    assert as_csv.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(as_csv.get_data(as_text=True))))
    assert [r["stripe_id"] for r in rows] == ["in_acme_1", "in_acme_2"]
    empty = client.get("/v1/partners/acme/sales", query_string={"from": "2020-01-01", "to": "2020-02-01"}, headers=admin).json
    assert empty["sales"] == [] and empty["totals"] == {}
    assert client.get("/v1/partners/nobody/sales", query_string=query, headers=admin).status_code == 404
    assert client.get("/v1/partners/acme/sales", query_string={"from": "yesterday", "to": "2020-01-01"}, headers=admin).status_code == 422
    assert client.get("/v1/partners/acme/sales", query_string={"from": "2021-01-01", "to": "2020-01-01"}, headers=admin).status_code == 422


def test_the_purchase_profile_needs_consent_and_withdrawing_it_clears_it(app, client, api_key, worker):
    admin = api_key("admin")
    post(client, event("checkout.session.completed", checkout_session("cs_p1", email="prof@example.com")))
    worker.wait()
    assert order_row(app, stripe_checkout_session_id="cs_p1").billing_name is None  # not without a grant
    grant = {"email": "prof@example.com", "channel": "profile", "purpose": "profile_enrichment", "status": "granted"}
    assert client.post("/v1/consents", json=grant, headers=admin).status_code == 201
    post(client, event("checkout.session.completed", checkout_session("cs_p2", email="prof@example.com")))
    worker.wait()
    second = order_row(app, stripe_checkout_session_id="cs_p2")
    assert second.billing_name == "Bea Buyer" and second.billing_address.startswith("1 High Street")
    assert client.post("/v1/consents", json={**grant, "status": "withdrawn"}, headers=admin).status_code == 201
    worker.wait()
    cleared = order_row(app, stripe_checkout_session_id="cs_p2")
    assert cleared.billing_name is None and cleared.billing_address is None
    assert cleared.amount == 4900 and cleared.paid_at is not None and cleared.reference  # accounting stays
    post(client, event("checkout.session.completed", checkout_session("cs_p3", email="prof@example.com")))
    worker.wait()
    assert order_row(app, stripe_checkout_session_id="cs_p3").billing_name is None


def test_stripes_return_page_stands_in_for_the_mailed_link_only_for_a_while(app, client, worker):
    post(client, event("checkout.session.completed", checkout_session("cs_old", email="old@example.com")))
    worker.wait()
    assert client.get("/purchase/complete?session_id=cs_old").status_code == 200
    with app.app_context():
        order = db.session.scalars(sa.select(Order)).one()
        order.created_at -= timedelta(hours=3)
        db.session.commit()
    assert client.get("/purchase/complete?session_id=cs_old").status_code == 404
