"""DNC: an established business relationship (a purchase within 18 months, an
enquiry within 3) lifts the registry; our own no still wins."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
import sqlalchemy as sa

from prefs_service.clock import utcnow
from prefs_service.extensions import db
from prefs_service.orders.models import PAID, Order, Payment
from prefs_service.registers.models import Enquiry
from prefs_service.registers.screening import months_before
from tests.registers.conftest import days_ago

PHONE = {"channel": "phone", "purpose": "marketing"}
US = "+12025550123"


def bought(app, subject_id: str, paid_at: datetime, *, renewal_at: datetime | None = None) -> None:
    with app.app_context():
        order = Order(reference=uuid.uuid4().hex[:12], subject_id=uuid.UUID(subject_id), status=PAID, paid_at=paid_at)
        db.session.add(order)
        db.session.flush()
        if renewal_at is not None:
            db.session.add(
                Payment(order_id=order.id, stripe_id=f"in_{order.id}", amount=100, currency="usd", kind="renewal", paid_at=renewal_at)
            )
        db.session.commit()


@pytest.fixture
def person(api, load_register):
    """A person on the DNC list who never granted phone marketing (their email newsletter grant made them)."""
    load_register("dnc", [US], list_date=days_ago(1))
    subject_id = api.record(email="us@example.com").json["subject_id"]
    assert api.patch(f"/v1/subjects/{subject_id}", {"phone": US}).status_code == 200
    return subject_id


def answers(api, subject_id: str) -> list[dict]:
    """The phone-marketing answer by number, by subject id, and in a bulk check."""
    return [
        api.check(**PHONE, phone=US).json,
        api.check(**PHONE, subject_id=subject_id).json,
        {**api.bulk([US], **PHONE).json["results"][0], "since": None},
    ]


LISTED = {"allowed": False, "reason": "register", "since": None, "register": "dnc"}
EXEMPT = {"allowed": False, "reason": "no_consent", "since": None, "register": "dnc"}  # still needs our own opt-in


def _bare(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k != "recipient"}


def test_a_purchase_within_18_months_lifts_the_registry_and_not_at_19(app, api, person):
    bought(app, person, months_before(utcnow(), 19))
    assert [_bare(a) for a in answers(api, person)] == [LISTED] * 3
    bought(app, person, months_before(utcnow(), 17))
    assert [_bare(a) for a in answers(api, person)] == [EXEMPT] * 3


def test_a_renewal_payment_within_18_months_counts_as_a_purchase(app, api, person):
    bought(app, person, months_before(utcnow(), 30), renewal_at=months_before(utcnow(), 2))
    assert [_bare(a) for a in answers(api, person)] == [EXEMPT] * 3


def test_an_enquiry_within_3_months_lifts_the_registry_and_not_at_4(api, person):
    at_4 = months_before(utcnow(), 4).isoformat()
    response = api.post(f"/v1/subjects/{person}/enquiries", {"occurred_at": at_4})
    assert response.status_code == 201 and response.json["subject_id"] == person
    assert [_bare(a) for a in answers(api, person)] == [LISTED] * 3
    assert api.post(f"/v1/subjects/{person}/enquiries", {"occurred_at": months_before(utcnow(), 2).isoformat()}).status_code == 201
    assert [_bare(a) for a in answers(api, person)] == [EXEMPT] * 3


def test_with_a_grant_and_a_relationship_the_call_is_allowed_naming_dnc(api, person):
    api.post(f"/v1/subjects/{person}/enquiries", {})
    api.record(**PHONE, subject_id=person)
    for answer in answers(api, person):
        assert answer["allowed"] is True and answer["reason"] == "granted" and answer["register"] == "dnc"


def test_a_relationship_does_not_lift_tps(app, api, load_register):
    load_register("tps", ["+442079460101"], list_date=days_ago(1))
    subject_id = api.record(**PHONE, phone="+442079460101", status="withdrawn").json["subject_id"]
    api.record(**PHONE, phone="+442079460101", status="granted", occurred_at="2020-01-01T00:00:00Z")  # older: changes nothing
    api.post(f"/v1/subjects/{subject_id}/enquiries", {})
    bought(app, subject_id, utcnow())
    assert api.check(**PHONE, phone="+442079460101").json["reason"] == "withdrawn"
    other = api.post("/v1/subjects", {"phone": "+442079460102"}).json["id"]
    load_register("tps", ["+442079460101", "+442079460102"], list_date=days_ago(1))
    api.post(f"/v1/subjects/{other}/enquiries", {})
    assert api.check(**PHONE, subject_id=other).json["reason"] == "register"


def test_withdrawal_suppression_and_erasure_beat_the_relationship_and_the_grant(app, api, person, admin, client):
    api.record(**PHONE, subject_id=person)
    api.post(f"/v1/subjects/{person}/enquiries", {})
    bought(app, person, utcnow())
    api.record(**PHONE, subject_id=person, status="withdrawn")
    assert {a["reason"] for a in answers(api, person)} == {"withdrawn"}
    api.record(**PHONE, subject_id=person, status="granted")
    assert api.post("/v1/suppressions", {"phone": US, "reason": "objection"}).status_code == 201
    assert {a["reason"] for a in answers(api, person)} == {"suppressed"}


def test_an_erased_person_stays_erased_whatever_the_relationship(app, api, load_register, worker):
    load_register("dnc", [US], list_date=days_ago(1))
    subject_id = api.record(**PHONE, phone=US).json["subject_id"]
    api.post(f"/v1/subjects/{subject_id}/enquiries", {})
    bought(app, subject_id, utcnow())
    made = api.post("/v1/requests", {"type": "erasure", "subject_id": subject_id, "email": "erased@example.com", "verified": True})
    assert made.status_code == 201
    worker.wait()
    assert api.check(**PHONE, phone=US).json["reason"] == "erased"
    assert api.check(**PHONE, subject_id=subject_id).json["reason"] == "erased"
    assert api.reasons([US], **PHONE) == ["erased"]
    assert api.post(f"/v1/subjects/{subject_id}/enquiries", {}).status_code == 409
    with app.app_context():  # erasure takes the person's enquiries with the rest of their data
        assert db.session.scalar(sa.select(sa.func.count()).where(Enquiry.subject_id == uuid.UUID(subject_id))) == 0


def test_an_enquiry_is_refused_clearly(api, person):
    assert api.post(f"/v1/subjects/{person}/enquiries", {"occurred_at": "2999-01-01T00:00:00Z"}).status_code == 422
    assert api.post(f"/v1/subjects/{person}/enquiries", {"occurred_at": "yesterday"}).status_code == 422
    assert api.post(f"/v1/subjects/{person}/enquiries", {"note": "x"}).status_code == 422
    assert api.post(f"/v1/subjects/{uuid.uuid4()}/enquiries", {}).status_code == 404
    assert api.post("/v1/subjects/not-a-uuid/enquiries", {}).status_code == 404


def test_months_before_keeps_the_day_or_takes_the_months_last():
    assert months_before(datetime(2026, 8, 31, 12), 18) == datetime(2025, 2, 28, 12)
    assert months_before(datetime(2026, 3, 15), 3) == datetime(2025, 12, 15)
