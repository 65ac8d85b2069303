"""The log grows as events are recorded, its proofs verify with an independent
RFC 9162 implementation, and `prefs ledger verify` finds it intact."""

from __future__ import annotations

import base64

import sqlalchemy as sa

from prefs_service.extensions import db
from prefs_service.ledger import leaves, proofs
from prefs_service.ledger.models import LedgerLeaf

from . import rfc9162


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def _record_many(writer, count: int) -> list[int]:
    ids = []
    for i in range(count):
        status = "granted" if i % 3 else "withdrawn"
        body = writer.record(email=f"person{i % 7}@example.com", status=status, evidence={"ip": "203.0.113.9", "note": f"n{i}"}).json
        ids.append(body["id"])
    return ids


def _leaf_bytes(app) -> list[bytes]:
    with app.app_context():
        rows = db.session.execute(sa.select(LedgerLeaf.kind, LedgerLeaf.source_id).order_by(LedgerLeaf.idx)).all()
        return [leaves.leaf_for(kind, source_id) for kind, source_id in rows]


def test_every_event_becomes_a_leaf_and_the_checkpoint_signs_the_root(app, writer, sequence, verify):
    ids = _record_many(writer, 11)
    assert sequence() >= 11
    latest = writer.get("/v1/ledger/checkpoints/latest").json
    all_leaves = _leaf_bytes(app)
    assert latest["tree_size"] == len(all_leaves)
    assert _b64(latest["root_hash"]) == rfc9162.root_of(all_leaves)
    with app.app_context():
        in_log = set(db.session.scalars(sa.select(LedgerLeaf.source_id).where(LedgerLeaf.kind == leaves.CONSENT_EVENT)))
    assert set(ids) <= in_log
    assert verify()[0] == 0


def test_inclusion_proofs_verify_independently_at_every_size(app, writer, sequence):
    ids = []
    for _ in range(3):  # checkpoints of several sizes
        ids += _record_many(writer, 5)
        sequence()
    all_leaves = _leaf_bytes(app)
    with app.app_context():
        index_of = dict(
            db.session.execute(sa.select(LedgerLeaf.source_id, LedgerLeaf.idx).where(LedgerLeaf.kind == leaves.CONSENT_EVENT)).all()
        )
    for event_id in ids:
        index = index_of[event_id]
        for size in range(index + 1, len(all_leaves) + 1):
            with app.app_context():
                path = proofs.inclusion(event_id, size)
            root = rfc9162.root_of(all_leaves[:size])
            assert rfc9162.verify_inclusion(index, size, rfc9162.leaf_hash(all_leaves[index]), path, root), (index, size)
            # a wrong leaf does not verify
            assert not rfc9162.verify_inclusion(index, size, rfc9162.leaf_hash(b"forged"), path, root)
        answer = writer.get("/v1/ledger/proofs/inclusion", event_id=event_id, tree_size=len(all_leaves)).json
        assert answer["leaf_index"] == index
        assert rfc9162.verify_inclusion(
            index,
            len(all_leaves),
            _b64(answer["leaf_hash"]),
            [_b64(p) for p in answer["audit_path"]],
            _b64(answer["checkpoint"]["root_hash"]),
        )


def test_consistency_proofs_verify_independently_between_every_pair_of_sizes(app, writer, sequence):
    _record_many(writer, 13)
    sequence()
    all_leaves = _leaf_bytes(app)
    n = len(all_leaves)
    for old in range(n + 1):
        for new in range(old, n + 1):
            with app.app_context():
                proof = proofs.consistency(old, new)
            assert rfc9162.verify_consistency(old, new, rfc9162.root_of(all_leaves[:old]), rfc9162.root_of(all_leaves[:new]), proof), (
                old,
                new,
            )
            if 0 < old < new:
                assert not rfc9162.verify_consistency(
                    old, new, rfc9162.root_of([b"x", *all_leaves[1:old]]), rfc9162.root_of(all_leaves[:new]), proof
                )
    answer = writer.get("/v1/ledger/proofs/consistency", **{"from": 3, "to": n}).json
    assert rfc9162.verify_consistency(
        3, n, rfc9162.root_of(all_leaves[:3]), rfc9162.root_of(all_leaves), [_b64(p) for p in answer["proof"]]
    )
