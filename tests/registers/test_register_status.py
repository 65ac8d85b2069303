"""/readyz and /metrics show each register's list date, age, entries and staleness;
and a person named by any key is screened by their identifier of the channel's kind."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from tests.registers.conftest import days_ago

PHONE = {"channel": "phone", "purpose": "marketing"}
MAIL = {"channel": "mail", "purpose": "marketing"}


def test_readyz_shows_each_register(client, load_register):
    before = client.get("/readyz").json["registers"]
    assert {r["register"]: r["list_date"] for r in before} == {"tps": None, "ctps": None, "fps": None, "mps": None, "dnc": None}
    assert not any(r["stale"] for r in before)
    load_register("tps", ["+442079460101", "+442079460102"], list_date=days_ago(3))
    load_register("dnc", ["+12025550123"], list_date=days_ago(32))
    body = client.get("/readyz")
    assert body.status_code == 200 and body.json["status"] == "ready"  # a stale list does not take the service out
    registers = {r["register"]: r for r in body.json["registers"]}
    assert registers["tps"] == {
        "register": "tps",
        "channel": "phone",
        "list_date": days_ago(3).isoformat(),
        "age_days": 3,
        "stale_after_days": 28,
        "stale": False,
        "entries": 2,
    }
    assert registers["dnc"]["stale"] is True and registers["dnc"]["age_days"] == 32 and registers["dnc"]["stale_after_days"] == 31
    assert registers["mps"]["list_date"] is None and registers["mps"]["stale_after_days"] is None


def _samples(text: str, family: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith(family + "{"):
            labels, value = line.rsplit(" ", 1)
            out[labels[len(family) + 1 : -1]] = float(value)
    return out


def test_metrics_show_each_imported_register(client, admin, load_register):
    load_register("tps", ["+442079460101", "+442079460102"], list_date=days_ago(3))
    load_register("fps", ["+442079460103"], list_date=days_ago(30))
    text = client.get("/metrics", headers=admin).get_data(as_text=True)
    ages = _samples(text, "prefs_register_list_age_seconds")
    assert set(ages) == {'register="tps"', 'register="fps"'}  # never imported: not shown
    assert 3 * 86400 <= ages['register="tps"'] < 4 * 86400
    assert _samples(text, "prefs_register_list_age_days") == {'register="tps"': 3.0, 'register="fps"': 30.0}
    listed_on = {
        labels: datetime.fromtimestamp(value, UTC) for labels, value in _samples(text, "prefs_register_list_date_timestamp_seconds").items()
    }
    assert listed_on == {
        f'register="{register}"': datetime.combine(days_ago(ago), time(0), UTC) for register, ago in (("tps", 3), ("fps", 30))
    }
    assert _samples(text, "prefs_register_entries") == {'register="tps"': 2.0, 'register="fps"': 1.0}
    assert _samples(text, "prefs_register_stale") == {'register="tps"': 0.0, 'register="fps"': 1.0}
    before = _samples(text, "prefs_consent_checks_total")['reason="register"']  # counted in the process, across tests
    client.get("/v1/consent/check", query_string={**PHONE, "phone": "+442079460101"}, headers=admin)
    after = client.get("/metrics", headers=admin).get_data(as_text=True)
    assert _samples(after, "prefs_consent_checks_total")['reason="register"'] == before + 1


@pytest.mark.parametrize("key", ["subject_id", "external_ref", "email", "fax"])
def test_a_person_named_by_another_key_is_screened_by_their_phone(api, load_register, key):
    person = api.post(
        "/v1/subjects", {"external_ref": "CRM-1", "email": "p@example.com", "phone": "+442079460101", "fax": "+442079460109"}
    ).json
    value = {"subject_id": person["id"], "external_ref": "CRM-1", "email": "p@example.com", "fax": "+442079460109"}[key]
    assert api.check(**PHONE, **{key: value}).json["reason"] == "no_consent"  # no register imported yet
    load_register("tps", ["+442079460101"], list_date=days_ago(1))
    assert api.check(**PHONE, **{key: value}).json == {"allowed": False, "reason": "register", "since": None, "register": "tps"}
    assert api.bulk([value], **PHONE, identifier_type=key).json["results"][0]["reason"] == "register"
    load_register("tps", [], list_date=days_ago(1))  # a new list without them
    assert api.check(**PHONE, **{key: value}).json["reason"] == "no_consent"


def test_a_person_without_a_phone_is_not_screened_and_not_stale(api, load_register):
    person = api.post("/v1/subjects", {"email": "nophone@example.com"}).json
    load_register("tps", ["+442079460101"], list_date=days_ago(90))
    assert api.check(**PHONE, subject_id=person["id"]).json["reason"] == "no_consent"


def test_mail_is_screened_by_the_persons_address_whichever_key_names_them(api, load_register):
    address = "Flat 2, 10 Downing Street, London SW1A 2AA"
    person = api.post("/v1/subjects", {"email": "post@example.com", "postal_address": address}).json
    load_register("mps", ["Flat 2, 10 Downing Street, London, SW1A 2AA"], list_date=days_ago(100))
    for key, value in (("subject_id", person["id"]), ("email", "post@example.com"), ("postal_address", address.lower())):
        assert api.check(**MAIL, **{key: value}).json["reason"] == "register", key
    assert api.patch(f"/v1/subjects/{person['id']}", {"postal_address": "1 Other Road, Leeds LS1 1AA"}).status_code == 200
    assert api.check(**MAIL, subject_id=person["id"]).json["reason"] == "no_consent"
