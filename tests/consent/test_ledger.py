"""The two ways a person's own click is recorded agree: in one statement
(PostgreSQL's data-modifying WITH) and by reading first (any backend)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prefs_service import hooks
from prefs_service.consent import ledger
from prefs_service.consent.events import EventInput, Evidence
from prefs_service.consent.models import ConsentEvent, ConsentState
from prefs_service.db import scopes
from prefs_service.errors import NotFound
from prefs_service.extensions import db
from prefs_service.subjects.models import Subject

BASE = datetime(2026, 2, 1, tzinfo=UTC)
PAIRS = [("email", "newsletter"), ("email", "offers"), ("partner", "share_for_marketing")]
WAYS = {"reading": ledger.change_by_reading, "one statement": ledger.change_in_one_statement}
STEPS = st.lists(st.tuples(st.sampled_from(PAIRS), st.sampled_from(["granted", "withdrawn"]), st.integers(-3, 3)), min_size=1, max_size=12)


def _event(pair, status, hour, source="one_click") -> EventInput:
    return EventInput(pair[0], pair[1], status, source, BASE + timedelta(hours=hour), None, Evidence(ip="192.0.2.0", user_agent="test"))


def _ledger_and_state(subject_id: uuid.UUID):
    events = db.session.execute(
        sa.select(ConsentEvent.channel, ConsentEvent.purpose, ConsentEvent.status, ConsentEvent.occurred_at, ConsentEvent.source,
                  ConsentEvent.policy_version, ConsentEvent.evidence_ip, ConsentEvent.recorded_by)
        .where(ConsentEvent.subject_id == subject_id).order_by(ConsentEvent.id)
    ).all()  # fmt: skip
    states = db.session.execute(
        sa.select(ConsentState.channel, ConsentState.purpose, ConsentState.status, ConsentState.occurred_at, ConsentState.source)
        .where(ConsentState.subject_id == subject_id).order_by(ConsentState.channel, ConsentState.purpose)
    ).all()  # fmt: skip
    return events, states


@pytest.mark.postgresql_only  # only PostgreSQL has both ways
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_both_ways_record_the_same_ledger_state_and_announcements(app, steps):
    heard: dict[uuid.UUID, list] = {}
    hooks.subscribe(app, hooks.CONSENT_WITHDRAWN, lambda subject_id, **details: heard.setdefault(subject_id, []).append(details))
    with app.app_context(), scopes.writing():
        people = {way: Subject(name=way) for way in WAYS}
        db.session.add_all(people.values())
        db.session.flush()
        for pair, status, hour in steps:
            answers = {
                way: change(subject_id=people[way].id, event=_event(pair, status, hour), recorded_by="test") for way, change in WAYS.items()
            }
            assert len(set(answers.values())) == 1, (pair, status, hour, answers)
        recorded = [_ledger_and_state(person.id) for person in people.values()]
        assert recorded[0] == recorded[1]
        assert [heard.get(person.id, []) for person in people.values()] == [heard.get(people["reading"].id, [])] * 2
        db.session.rollback()
    app.extensions["prefs.hooks"][hooks.CONSENT_WITHDRAWN].clear()


@pytest.mark.parametrize("way", [w for w in WAYS if w == "reading"] + [pytest.param("one statement", marks=pytest.mark.postgresql_only)])
def test_both_ways_refuse_a_person_we_do_not_hold_or_erased(app, way):
    with app.app_context(), scopes.writing():
        erased = Subject(name=None, erased_at=BASE)
        db.session.add(erased)
        db.session.flush()
        for subject_id in (uuid.uuid4(), erased.id):
            with pytest.raises(NotFound):
                WAYS[way](subject_id=subject_id, event=_event(PAIRS[0], "withdrawn", 0), recorded_by="test")
        db.session.rollback()
