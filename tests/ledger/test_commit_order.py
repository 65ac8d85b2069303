"""The sequencer takes events in commit order and never skips one: on
PostgreSQL a transaction that began earlier (a smaller txid) may commit after
a later one; the sequencer waits for it rather than pass it by."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from prefs_service.db import scopes
from prefs_service.extensions import db
from prefs_service.ledger import leaves, sequencer
from prefs_service.ledger.models import LedgerLeaf
from tests.helpers import Api

COPY = (
    "INSERT INTO consent_events (subject_id, channel, purpose, status, source, occurred_at, recorded_at, recorded_by)"
    " SELECT subject_id, channel, purpose, status, 'import', occurred_at, recorded_at, :by FROM consent_events WHERE id = :id"
    " RETURNING id"
)


def _sequenced(app) -> dict[int, int]:
    with app.app_context():
        rows = db.session.execute(sa.select(LedgerLeaf.source_id, LedgerLeaf.idx).where(LedgerLeaf.kind == leaves.CONSENT_EVENT)).all()
        db.session.rollback()
        return dict(rows)


@pytest.mark.postgresql_only  # SQLite serialises writers: commit order is id order
def test_an_earlier_transaction_committing_late_is_waited_for_not_skipped(app, writer, sequence):
    seed = writer.record(email="seed@example.com").json["id"]
    sequence()
    with app.app_context():
        engine = db.engine
        slow = engine.connect()
        slow_tx = slow.begin()
        slow_id = slow.execute(sa.text(COPY), {"by": "slow", "id": seed}).scalar()  # takes its txid now, commits last
        with engine.begin() as fast:
            fast_id = fast.execute(sa.text(COPY), {"by": "fast", "id": seed}).scalar()
    sequence(everything=False)
    assert fast_id not in _sequenced(app)  # committed, but behind a transaction still running
    slow_tx.commit()
    slow.close()
    sequence()
    order = _sequenced(app)
    assert order[slow_id] < order[fast_id]


@pytest.mark.postgresql_only
def test_concurrent_writers_and_sequencers_put_every_event_in_the_log_once(app, client, api_key, sequence, verify):
    headers = api_key("consent:read", "consent:write")
    stop = threading.Event()
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        api = Api(app.test_client(), headers)
        try:
            for i in range(25):
                api.record(email=f"w{worker}-{i % 5}@example.com", status="granted" if i % 2 else "withdrawn")
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    def sequence_until_stopped() -> None:
        while not stop.is_set():
            try:
                with app.app_context(), scopes.writing():
                    sequencer.sequence_once(limit=7)  # small batches: many rounds while writers write
                    db.session.commit()
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)
                return

    sequencers = [threading.Thread(target=sequence_until_stopped) for _ in range(2)]
    writers = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in sequencers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in sequencers:
        thread.join()
    assert not errors, errors
    sequence()
    with app.app_context():
        events = set(db.session.scalars(sa.text("SELECT id FROM consent_events")))
        leaf_ids = list(db.session.scalars(sa.select(LedgerLeaf.source_id).where(LedgerLeaf.kind == leaves.CONSENT_EVENT)))
        db.session.rollback()
    assert len(leaf_ids) == len(set(leaf_ids)) == len(events) == 150
    assert set(leaf_ids) == events
    code, output = verify()
    assert code == 0, output
