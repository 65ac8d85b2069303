"""The fast path (db/fast.py) answers exactly what SQLAlchemy's own execution
would: every statement it serves runs through both, on this backend, with
people of every kind, and the rows must be equal. It fires the cursor-execute
events, so tracing sees the hottest statements too."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from prefs_service import channels
from prefs_service.consent import decisions, queries
from prefs_service.consent.queries import CheckShape
from prefs_service.db import fast, scopes
from prefs_service.db.backend import backend
from prefs_service.extensions import db
from prefs_service.subjects import refs
from prefs_service.subjects.identifiers import EXTERNAL_REF, KINDS, identifier_hashes

WHEN = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
# One purpose of each shape per channel: opt-in, and not (transactional, fulfilment).
PAIRS = [("email", "newsletter"), ("email", "transactional"), ("phone", "marketing"), ("fax", "marketing"), ("mail", "marketing"),
         ("partner", "share_for_marketing"), ("partner", "share_for_fulfilment"), ("profile", "profile_enrichment")]  # fmt: skip
PEOPLE = {
    "granted": {
        "email": "granted@example.com",
        "phone": "+442079460100",
        "fax": "+442079460101",
        "postal_address": "1 High St, Leeds",
        "external_ref": "crm-1",
    },
    "withdrawn": {"email": "withdrawn@example.com", "postal_address": "2 High St, Leeds", "external_ref": "crm-2"},
    "never": {"email": "never@example.com", "phone": "+442079460102"},
    "suppressed": {"email": "suppressed@example.com", "phone": "+442079460103", "fax": "+442079460105"},
    "erased": {"email": "erased@example.com", "phone": "+442079460104", "external_ref": "crm-3"},
}
NOBODY = {
    "email": "nobody@example.com",
    "phone": "+442079460199",
    "fax": "+442079460198",
    "postal_address": "9 Low Rd, York",
    "external_ref": "crm-none",
}


@pytest.fixture
def people(client, api_key, worker):
    headers = api_key("admin")
    made = {name: client.post("/v1/subjects", json=fields, headers=headers).json for name, fields in PEOPLE.items()}
    for name, status in (("granted", "granted"), ("withdrawn", "withdrawn"), ("suppressed", "granted"), ("erased", "granted")):
        for channel, purpose in (("email", "newsletter"), ("phone", "marketing"), ("fax", "marketing"), ("mail", "marketing"),
                                 ("partner", "share_for_marketing"), ("profile", "profile_enrichment")):  # fmt: skip
            body = {
                "subject_id": made[name]["id"],
                "channel": channel,
                "purpose": purpose,
                "status": status,
                "occurred_at": WHEN.isoformat(),
            }
            assert client.post("/v1/consents", json=body, headers=headers).status_code == 201
    for suppressed in ({"email": "suppressed@example.com"}, {"fax": "+442079460105"}, {"email": NOBODY["email"]}):
        assert client.post("/v1/suppressions", json={**suppressed, "reason": "objection"}, headers=headers).status_code == 201
    erasure = client.post("/v1/requests", json={"type": "erasure", "subject_id": made["erased"]["id"], "verified": True}, headers=headers)
    assert erasure.status_code == 201
    worker.wait()
    return made


def _lookup_keys(people: dict, key: str) -> list:
    """Every value a check can look `key` up by, as the statements bind it."""
    if key == refs.SUBJECT_ID:
        return [uuid.UUID(p["id"]) for p in people.values()] + [uuid.uuid4()]
    values = [fields[key] for fields in (*PEOPLE.values(), NOBODY) if key in fields]
    if key == EXTERNAL_REF:
        return values
    return identifier_hashes(key, [channels.normalize(key, v) for v in values])


def _batches(keys: list):
    """The statement sizes checks use: one key, a few, and thousands (SQLite pads batches)."""
    for count in (1, len(keys), 3000):
        chosen = [keys[i % len(keys)] for i in range(count)]
        yield from backend().key_batches(chosen)


def _both_ways(stmt, params) -> int:
    """Run `stmt` on the fast path (in both scopes) and through the session; how many rows it found."""
    fast_rows = [Counter(fast.rows(stmt, params, scope=scope)) for scope in (scopes.READ, scopes.WRITE)]
    own = Counter(tuple(row) for row in db.session.execute(stmt, params))
    assert fast_rows == [own, own], stmt
    return sum(own.values())


def test_every_check_statement_answers_as_sqlalchemy_would(app, people):
    with app.app_context():
        for channel, purpose in PAIRS:
            spec = channels.CHANNELS[channel]
            for key in refs.CHECK_KEYS:
                for with_since in (True, False):
                    shape = CheckShape(key, spec.identifier_kind, spec.purpose(purpose).needs_consent, with_since)
                    for size, bound in _batches(_lookup_keys(people, key)):
                        found = _both_ways(
                            queries._check_statement(shape, backend(), size), {"channel": channel, "purpose": purpose, **bound}
                        )
                        assert found, (shape, size)  # someone is held by every key: nothing compared is empty
        db.session.rollback()


def test_every_read_model_probe_answers_as_sqlalchemy_would(app, people):
    with app.app_context():
        for key in refs.CHECK_KEYS:
            keys = sorted(decisions.probe_keys(key, _lookup_keys(people, key)))
            found = 0
            for channel, purpose in PAIRS:
                for size, bound in _batches(keys):
                    for with_subject, with_since in ((False, True), (True, True), (False, False)):
                        statement = decisions.read_statement(backend(), size, with_subject, with_since)
                        found += _both_ways(statement, {"channel": channel, "purpose": purpose, **bound})
            assert found, key  # every kind of key names someone with a choice, a suppression or an erasure
        db.session.rollback()


def test_every_lookup_statement_answers_as_sqlalchemy_would(app, people):
    with app.app_context():
        # Suppressions are looked up by the hash of an identifier, or of an erased person's external_ref.
        hashes = [h for kind in KINDS for h in _lookup_keys(people, kind)] + identifier_hashes(
            EXTERNAL_REF, _lookup_keys(people, EXTERNAL_REF)
        )
        for size, bound in _batches(hashes):
            _both_ways(queries._suppression_statement(backend(), size), bound)
        for key in refs.WRITE_KEYS:
            for value in _lookup_keys(people, key):
                _both_ways(refs._live_id_query(key), {"value": value})
        for person in people.values():
            for channel, purpose in PAIRS:
                _both_ways(queries._status_of(), {"subject_id": uuid.UUID(person["id"]), "channel": channel, "purpose": purpose})
        db.session.rollback()


def _masked(rows: list) -> list:
    """A new ledger row with its id masked: each run draws its own from the sequence."""
    return [("<id>", *row[1:]) for row in rows]


def _writes_both_ways(stmt, params, mask=lambda rows: rows) -> None:
    results = []
    for run in (lambda: fast.rows(stmt, params, scope=scopes.WRITE), lambda: [tuple(r) for r in db.session.execute(stmt, params)]):
        savepoint = db.session.begin_nested()
        results.append(mask(run()))
        savepoint.rollback()
    assert results[0] == results[1], stmt


def test_every_writing_statement_returns_what_sqlalchemy_would(app, people):
    subject_id = uuid.UUID(people["never"]["id"])
    columns = {"subject_id": subject_id, "channel": "email", "purpose": "offers", "status": "withdrawn", "source": "one_click",
               "occurred_at": WHEN, "recorded_at": WHEN, "evidence_ip": "192.0.2.0", "evidence_user_agent": "ua", "evidence_note": None,
               "recorded_by": "subject", "evidence_salt": b"s" * 16, "evidence_commitment": b"c" * 32}  # fmt: skip
    with app.app_context(), scopes.writing():
        for named_policy in (None, "no-such-version"):
            _writes_both_ways(queries._insert_event(), {**columns, "named_policy": named_policy, "policy_moment": WHEN}, _masked)
        event_id = db.session.scalar(sa.text("SELECT max(id) FROM consent_events"))
        for status, when in (("withdrawn", WHEN), ("granted", WHEN.replace(year=2025)), ("granted", WHEN.replace(year=2027))):
            state = {"subject_id": uuid.UUID(people["granted"]["id"]), "channel": "email", "purpose": "newsletter", "status": status,
                     "occurred_at": when, "event_id": event_id, "source": "api"}  # fmt: skip
            _writes_both_ways(queries._state_upsert(backend()), state)
        if backend().data_modifying_ctes:
            for person in ("granted", "withdrawn", "never", "erased"):
                params = {**columns, "subject_id": uuid.UUID(people[person]["id"]), "channel": "email", "purpose": "newsletter",
                          "named_policy": None, "policy_moment": WHEN}  # fmt: skip
                _writes_both_ways(queries._change_in_one_statement(), params, lambda rows: [(r[0], r[1] is not None) for r in rows])
        db.session.rollback()


def test_the_cursor_events_see_the_fast_path(app, client, api_key, people):
    seen = []

    def before(conn, cursor, statement, parameters, context, executemany):
        seen.append(("before", statement, context is not None))

    def after(conn, cursor, statement, parameters, context, executemany):
        seen.append(("after", statement, context is not None))

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", before)
    sa.event.listen(engine, "after_cursor_execute", after)
    try:
        answer = client.get("/v1/consent/check", query_string={"channel": "email", "purpose": "newsletter", "email": "granted@example.com"},
                            headers=api_key("consent:read"))  # fmt: skip
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)
        sa.event.remove(engine, "after_cursor_execute", after)
    assert answer.json["reason"] == "granted"
    checks = [entry for entry in seen if "FROM decisions" in entry[1]]  # the read model a check probes
    assert [(when, has_context) for when, _, has_context in checks] == [("before", True), ("after", True)]


def test_a_broken_fast_path_statement_raises_what_sqlalchemy_raises_with_its_parameters_hidden(app):
    broken = (
        sa.select(sa.literal_column("no_such_column"))
        .select_from(sa.table("consent_state"))
        .where(sa.literal_column("status") == sa.bindparam("secret"))
    )
    with app.app_context():
        for scope in (scopes.READ, scopes.WRITE):
            with pytest.raises(sa.exc.DBAPIError) as raised:
                fast.rows(broken, {"secret": "jane@example.com"}, scope=scope)
            assert "jane@example.com" not in str(raised.value)
            db.session.rollback()
