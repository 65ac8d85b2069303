"""The decisions read model a check probes: `prefs screening rebuild` computes
it from the ledger's state, the identifiers and the suppressions, and the
migration that adds the table fills it. (tests/test_invariants.py holds it
equal to the tables after any sequence of changes, and to a rebuild.)"""

from __future__ import annotations

import sqlalchemy as sa

from prefs_service.cli import main
from prefs_service.consent.models import Decision
from prefs_service.extensions import db

PAIRS = [("email", "newsletter"), ("email", "transactional"), ("phone", "marketing"), ("partner", "share_for_fulfilment")]


def _people(client, headers) -> dict[str, list[str]]:
    """A person who granted, one suppressed, one erased, and an address
    suppressed before anyone held it; {check key: values}."""
    granted = client.post(
        "/v1/subjects", json={"email": "g@example.com", "phone": "+442079460300", "external_ref": "crm-g"}, headers=headers
    ).json
    suppressed = client.post("/v1/subjects", json={"email": "s@example.com"}, headers=headers).json
    erased = client.post("/v1/subjects", json={"email": "e@example.com", "external_ref": "crm-e"}, headers=headers).json
    for person in (granted, suppressed, erased):
        for channel, purpose in (("email", "newsletter"), ("phone", "marketing")):
            body = {"subject_id": person["id"], "channel": channel, "purpose": purpose, "status": "granted"}
            assert client.post("/v1/consents", json=body, headers=headers).status_code == 201
    for address in ("s@example.com", "stranger@example.com"):
        assert client.post("/v1/suppressions", json={"email": address, "reason": "bounce"}, headers=headers).status_code == 201
    request = {"type": "erasure", "subject_id": erased["id"], "verified": True}
    assert client.post("/v1/requests", json=request, headers=headers).status_code == 201
    return {
        "subject_id": [granted["id"], suppressed["id"], erased["id"]],
        "email": ["g@example.com", "s@example.com", "e@example.com", "stranger@example.com", "nobody@example.com"],
        "phone": ["+442079460300"],
        "external_ref": ["crm-g", "crm-e", "crm-nobody"],
    }


def _answers(client, headers, keys) -> dict:
    answers = {}
    for channel, purpose in PAIRS:
        for key, values in keys.items():
            body = {"channel": channel, "purpose": purpose, "identifier_type": key, "recipients": values}
            results = client.post("/v1/consent/check", json=body, headers=headers).json["results"]
            answers[(channel, purpose, key)] = [(r["allowed"], r["reason"]) for r in results]
    return answers


def _wipe(app) -> None:
    with app.app_context():
        db.session.execute(sa.delete(Decision))
        db.session.commit()


def test_a_rebuild_computes_the_answers_again(app, client, api_key, worker):
    headers = api_key("admin")
    keys = _people(client, headers)
    worker.wait()
    before = _answers(client, headers, keys)
    assert before[("email", "newsletter", "email")] == [(True, "granted"), (False, "suppressed"), (False, "erased"),
                                                        (False, "suppressed"), (False, "no_consent")]  # fmt: skip
    assert before[("email", "transactional", "external_ref")] == [(True, "transactional"), (False, "erased"), (True, "transactional")]

    _wipe(app)  # rows lost behind the service's back: the checks read nothing but the table
    assert _answers(client, headers, keys)[("email", "newsletter", "email")] == [(False, "no_consent")] * 3 + [(False, "no_consent")] * 2
    result = app.test_cli_runner().invoke(main, ["screening", "rebuild"])
    assert result.exit_code == 0, result.output
    # the erased person's address and external ref, the suppressed address, the stranger
    assert "for 3 people and 4 suppressed keys" in result.output
    assert _answers(client, headers, keys) == before


def test_upgrading_past_the_migration_that_adds_the_table_fills_it(app, client, api_key, worker):
    headers = api_key("admin")
    keys = _people(client, headers)
    worker.wait()
    before = _answers(client, headers, keys)
    runner = app.test_cli_runner()
    downgraded = runner.invoke(main, ["db", "downgrade", "0014"])
    assert downgraded.exit_code == 0, downgraded.output
    upgraded = runner.invoke(main, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert _answers(client, headers, keys) == before
