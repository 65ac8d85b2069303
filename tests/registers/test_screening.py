"""Checks and bulk checks consult the national registers that cover them."""

from __future__ import annotations

from unittest.mock import ANY

import pytest

from tests.helpers import Api
from tests.registers.conftest import days_ago

PHONE = {"channel": "phone", "purpose": "marketing"}
FAX = {"channel": "fax", "purpose": "marketing"}
MAIL = {"channel": "mail", "purpose": "marketing"}
UK, UK_OTHER, US, US_OTHER = "+442079460101", "+442079460102", "+12025550123", "+12025550124"
ADDRESS = "10 Downing Street, London SW1A 2AA"

# register -> (check fields, the check's key, a listed value, an unlisted value)
CASES = {
    "tps": (PHONE, "phone", UK, UK_OTHER),
    "ctps": (PHONE, "phone", UK, UK_OTHER),
    "dnc": (PHONE, "phone", US, US_OTHER),
    "fps": (FAX, "fax", UK, UK_OTHER),
    "mps": (MAIL, "postal_address", ADDRESS, "11 Downing Street, London SW1A 2AB"),
}


@pytest.mark.parametrize("register", list(CASES))
def test_a_listed_identifier_is_refused_naming_the_register(api, load_register, register):
    fields, key, listed, unlisted = CASES[register]
    load_register(register, [listed], list_date=days_ago(2))
    assert api.check(**fields, **{key: listed}).json == {"allowed": False, "reason": "register", "since": None, "register": register}
    assert api.check(**fields, **{key: unlisted}).json == {"allowed": False, "reason": "no_consent", "since": None}
    results = api.bulk([listed, unlisted], **fields).json["results"]
    assert results == [
        {"recipient": listed, "allowed": False, "reason": "register", "register": register},
        {"recipient": unlisted, "allowed": False, "reason": "no_consent"},
    ]


@pytest.mark.parametrize("register", list(CASES))
def test_a_grant_overrides_the_register_which_is_still_named(api, load_register, register):
    fields, key, listed, _ = CASES[register]
    load_register(register, [listed], list_date=days_ago(2))
    subject_id = api.record(**fields, **{key: listed} if key != "postal_address" else {"email": "post@example.com"}).json["subject_id"]
    if key == "postal_address":
        assert api.patch(f"/v1/subjects/{subject_id}", {"postal_address": listed}).status_code == 200
    for by in ({key: listed}, {"subject_id": subject_id}):
        body = api.check(**fields, **by).json
        assert body["allowed"] is True and body["reason"] == "granted" and body["register"] == register, by
    assert api.bulk([listed], **fields).json["results"][0] == {
        "recipient": listed,
        "allowed": True,
        "reason": "granted",
        "register": register,
    }


@pytest.mark.parametrize("register", ["tps", "ctps", "dnc", "fps"])
def test_a_stale_list_refuses_every_number_it_covers(api, load_register, register):
    fields, key, listed, unlisted = CASES[register]
    rule = {"tps": 28, "ctps": 28, "fps": 28, "dnc": 31}[register]
    load_register(register, [listed], list_date=days_ago(rule))
    assert api.check(**fields, **{key: unlisted}).json["reason"] == "no_consent"  # on its last day, still fresh
    load_register(register, [listed], list_date=days_ago(rule + 1))
    api.record(**fields, **{key: unlisted})
    stale = {"allowed": False, "reason": "register_stale", "since": None, "register": register}
    assert api.check(**fields, **{key: unlisted}).json == stale
    assert api.check(**fields, **{key: listed}).json == stale
    assert api.reasons([listed, unlisted], **fields) == ["register_stale", "register_stale"]


def test_the_mail_preference_service_never_goes_stale(api, load_register):
    load_register("mps", [ADDRESS], list_date=days_ago(400))
    assert api.check(**MAIL, postal_address=ADDRESS).json["reason"] == "register"


def test_a_stale_register_does_not_touch_numbers_it_does_not_cover(api, load_register):
    load_register("dnc", [US], list_date=days_ago(60))
    load_register("tps", [UK], list_date=days_ago(1))
    assert api.reasons([US, UK, UK_OTHER], **PHONE) == ["register_stale", "register", "no_consent"]
    assert api.check(email="someone@example.com").json["reason"] == "no_consent"  # email has no register


def test_a_register_never_imported_is_not_consulted(api, load_register):
    load_register("tps", [UK], list_date=days_ago(1))
    assert api.reasons([US, UK], **PHONE) == ["no_consent", "register"]  # DNC never imported: neither listed nor stale


def test_warn_mode_answers_as_if_fresh_says_so_and_logs(make_app, load_register, api_key, caplog):
    warn_app = make_app(register_stale="warn")
    warn = Api(warn_app.test_client(), api_key("consent:read", "consent:write"))
    load_register("tps", [UK], list_date=days_ago(40))
    with warn_app.app_context():
        from prefs_service.registers import screening

        screening.forget_current_lists()
    with caplog.at_level("WARNING", logger="prefs_service.registers.screening"):
        listed = warn.check(**PHONE, phone=UK).json
    assert listed == {"allowed": False, "reason": "register", "since": None, "register": "tps", "register_stale": True}
    assert any("tps" in r.getMessage() and "40 days old" in r.getMessage() for r in caplog.records)
    assert UK not in caplog.text and "7946" not in caplog.text
    warn.record(**PHONE, phone=UK_OTHER)
    granted = warn.check(**PHONE, phone=UK_OTHER).json
    assert (
        granted["allowed"] is True and granted["reason"] == "granted" and granted["register"] == "tps" and granted["register_stale"] is True
    )
    assert warn.bulk([UK, UK_OTHER], **PHONE).json["results"] == [
        {"recipient": UK, "allowed": False, "reason": "register", "register": "tps", "register_stale": True},
        {"recipient": UK_OTHER, "allowed": True, "reason": "granted", "register": "tps", "register_stale": True},
    ]


def test_our_own_withdrawal_suppression_and_erasure_win_over_the_grant_and_the_register(api, load_register, worker):
    third = "+442079460103"
    load_register("tps", [UK, UK_OTHER, third], list_date=days_ago(1))
    api.record(**PHONE, phone=UK, status="withdrawn")
    assert api.check(**PHONE, phone=UK).json["reason"] == "withdrawn"
    api.record(**PHONE, phone=UK_OTHER)
    assert api.post("/v1/suppressions", {"phone": UK_OTHER, "reason": "objection"}).status_code == 201
    assert api.check(**PHONE, phone=UK_OTHER).json["reason"] == "suppressed"
    # A person who granted, then was erased at their request: erased, by their number and by their id.
    subject_id = api.record(**PHONE, phone=third).json["subject_id"]
    assert api.check(**PHONE, phone=third).json == {"allowed": True, "reason": "granted", "register": "tps", "since": ANY}
    made = api.post("/v1/requests", {"type": "erasure", "subject_id": subject_id, "email": "third@example.com", "verified": True})
    assert made.status_code == 201
    worker.wait()
    assert api.check(**PHONE, phone=third).json["reason"] == "erased"
    assert api.check(**PHONE, subject_id=subject_id).json["reason"] == "erased"
    assert api.reasons([UK, UK_OTHER, third], **PHONE) == ["withdrawn", "suppressed", "erased"]


def test_the_current_state_view_names_the_register(api, load_register):
    load_register("tps", [UK], list_date=days_ago(1))
    subject_id = api.record(**PHONE, phone=UK).json["subject_id"]
    body = api.get(f"/v1/subjects/{subject_id}/consents").json
    phone = next(c for c in body["consents"] if c["channel"] == "phone")
    assert phone["allowed"] is True and phone["reason"] == "granted" and phone["register"] == "tps"
    email = next(c for c in body["consents"] if c["channel"] == "email")
    assert "register" not in email
