"""Tampering with the ledger through the database is caught by `prefs ledger
verify`, which names the first event, node or checkpoint that no longer fits;
an erasure, which blanks evidence and its salt, is not tampering."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from prefs_service import audit
from prefs_service.extensions import db
from prefs_service.ledger import leaves, tree
from prefs_service.ledger.models import LedgerLeaf

PEOPLE = 4


@pytest.fixture
def ledger(app, writer, sequence, verify):
    """Two events per person (a grant, then a withdrawal) and a staff decision,
    sequenced and signed; verify finds it intact. Returns the first event ids."""
    first = []
    for i in range(PEOPLE):
        email = f"person{i}@example.com"
        first.append(writer.record(email=email, evidence={"ip": "203.0.113.9", "user_agent": "UA", "note": "signup form"}).json["id"])
        writer.record(email=email, status="withdrawn")
    with app.app_context():
        audit.record("request.approved", actor="staff:1", target_type="request", target_id=7, details={"b": 1, "a": [1, 2]})
        db.session.commit()
    sequence()
    code, output = verify()
    assert code == 0, output
    assert "intact" in output
    return first


def _sql(app, statement: str, **params) -> None:
    with app.app_context():
        db.session.execute(sa.text(statement), params)
        db.session.commit()


def _leaf_of(app, event_id: int) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(LedgerLeaf.idx).where(LedgerLeaf.kind == leaves.CONSENT_EVENT, LedgerLeaf.source_id == event_id))


def _failed(verify) -> str:
    code, output = verify()
    assert code == 1, output
    return output


def test_a_changed_status_is_named(app, ledger, verify):
    target = ledger[2]
    _sql(app, "UPDATE consent_events SET status = 'withdrawn' WHERE id = :id", id=target)
    assert f"consent event {target} (leaf {_leaf_of(app, target)}) no longer matches its leaf" in _failed(verify)


def test_a_changed_time_is_named(app, ledger, verify):
    target = ledger[1]
    with app.app_context():
        occurred = db.session.execute(sa.text("SELECT occurred_at FROM consent_events WHERE id = :id"), {"id": target}).scalar()
    moved = occurred - timedelta(days=1) if not isinstance(occurred, str) else occurred.replace(occurred[:4], str(int(occurred[:4]) - 1), 1)
    _sql(app, "UPDATE consent_events SET occurred_at = :at WHERE id = :id", at=moved, id=target)
    assert f"consent event {target} (leaf {_leaf_of(app, target)}) no longer matches its leaf" in _failed(verify)


def test_changed_evidence_is_named(app, ledger, verify):
    target = ledger[0]
    _sql(app, "UPDATE consent_events SET evidence_note = 'phone call' WHERE id = :id", id=target)
    assert f"consent event {target} (leaf {_leaf_of(app, target)}): its evidence no longer matches its commitment" in _failed(verify)


def test_a_deleted_row_is_named(app, ledger, verify):
    target = ledger[1]  # superseded by the withdrawal: no current state points at it
    _sql(app, "DELETE FROM consent_events WHERE id = :id", id=target)
    assert f"consent event {target} (leaf {_leaf_of(app, target)}) is missing or out of order" in _failed(verify)


def test_an_inserted_row_is_named(app, ledger, verify):
    with app.app_context():
        first = db.session.execute(sa.text("SELECT id FROM consent_events ORDER BY txid, id LIMIT 1")).scalar()
        db.session.execute(
            sa.text(
                "INSERT INTO consent_events (id, txid, subject_id, channel, purpose, status, source, occurred_at, recorded_at, recorded_by)"
                " SELECT 0, 0, subject_id, channel, purpose, 'granted', 'import', occurred_at, recorded_at, 'forger'"
                " FROM consent_events WHERE id = :id"
            ),
            {"id": first},
        )
        db.session.commit()
    assert "in its place stands consent event 0" in _failed(verify)


def test_a_reordered_pair_is_named(app, ledger, verify):
    a, b = _leaf_of(app, ledger[0]), _leaf_of(app, ledger[1])
    with app.app_context():
        first, second = (
            db.session.scalar(sa.select(LedgerLeaf.source_id).where(LedgerLeaf.idx == a)),
            db.session.scalar(sa.select(LedgerLeaf.source_id).where(LedgerLeaf.idx == b)),
        )
    _sql(app, "UPDATE ledger_leaves SET source_id = -1 WHERE idx = :a", a=a)
    _sql(app, "UPDATE ledger_leaves SET source_id = :s WHERE idx = :b", s=first, b=b)
    _sql(app, "UPDATE ledger_leaves SET source_id = :s WHERE idx = :a", s=second, a=a)
    assert f"consent event {second} (leaf {a}) is missing or out of order" in _failed(verify)


def test_a_tampered_tree_node_is_named(app, ledger, verify):
    key = tree.node_key(1, 0)  # the parent of the first two leaves
    _sql(app, "UPDATE ledger_nodes SET hash = :h WHERE key = :k", h=b"\x00" * 32, k=key)
    assert "tree node at level 1 over leaves up to 1 does not match" in _failed(verify)


def test_a_tampered_leaf_hash_names_its_event(app, ledger, verify):
    _sql(app, "UPDATE ledger_nodes SET hash = :h WHERE key = :k", h=b"\x01" * 32, k=tree.node_key(0, 3))
    assert "(leaf 3) no longer matches its leaf in the log" in _failed(verify)


def test_a_rewritten_log_is_caught_by_its_signed_checkpoint(app, ledger, verify):
    """Change an event and recompute every leaf and node as a forger would: the
    signed checkpoint's root no longer fits."""
    target = ledger[3]
    _sql(app, "UPDATE consent_events SET status = 'withdrawn' WHERE id = :id", id=target)
    with app.app_context():
        rows = db.session.execute(sa.select(LedgerLeaf.kind, LedgerLeaf.source_id).order_by(LedgerLeaf.idx)).all()
        frontier = tree.Frontier()
        for kind, source_id in rows:
            for key, digest in frontier.append(tree.leaf_hash(leaves.leaf_for(kind, source_id))):
                db.session.execute(sa.text("UPDATE ledger_nodes SET hash = :h WHERE key = :k"), {"h": digest, "k": key})
        db.session.commit()
    assert "names root" in _failed(verify)


def test_a_tampered_checkpoint_is_named(app, ledger, verify):
    with app.app_context():
        newest = db.session.execute(sa.text("SELECT id, timestamp_ms FROM ledger_checkpoints ORDER BY id DESC LIMIT 1")).one()
    _sql(app, "UPDATE ledger_checkpoints SET timestamp_ms = :t WHERE id = :id", t=newest[1] - 3_600_000, id=newest[0])
    assert f"checkpoint {newest[0]} " in (output := _failed(verify)) and "signature does not verify" in output


def test_a_checkpoint_beyond_the_log_is_named(app, ledger, verify):
    with app.app_context():
        newest = db.session.execute(sa.text("SELECT id, tree_size FROM ledger_checkpoints ORDER BY id DESC LIMIT 1")).one()
    _sql(app, "UPDATE ledger_checkpoints SET tree_size = :n WHERE id = :id", n=newest[1] + 5, id=newest[0])
    assert f"checkpoint {newest[0]} claims {newest[1] + 5} leaves" in _failed(verify)
