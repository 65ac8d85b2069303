"""The sequencer: takes committed, not yet sequenced rows in commit order,
gives them leaf indexes, extends the tree and signs a checkpoint.

Writers never wait for it: they append rows as before (with their evidence
commitment). Commit order is the change feed's (consent/queries.py feed()):
rows by (txid, id), and on PostgreSQL only those whose transaction id is below
the oldest still running, so a slower transaction with a smaller id can never
commit behind the sequencer. One sequencer at a time: an advisory lock on
PostgreSQL; on SQLite the write transaction (BEGIN IMMEDIATE) serialises it.
"""

from __future__ import annotations

import heapq
from typing import Any

import sqlalchemy as sa

from ..db.backend import backend
from ..extensions import db
from . import checkpoints, leaves, tree
from .models import LedgerLeaf, LedgerNode

BATCH = 5000
LOCK_KEY = "prefs-ledger-sequencer"


def _position(kind: int) -> tuple[int, int]:
    """(txid, id) of the last row of this kind in the log; (-1, -1) before the first."""
    row = db.session.execute(
        sa.select(LedgerLeaf.source_txid, LedgerLeaf.source_id)
        .where(LedgerLeaf.kind == kind)
        .order_by(LedgerLeaf.source_txid.desc(), LedgerLeaf.source_id.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else (-1, -1)


def _waiting(kind: int, after: tuple[int, int], limit: int) -> list[Any]:
    """Rows after `after` in (txid, id) order, up to `limit`: first the rest of
    the same txid, then later ones, two index range reads (a single OR, or a
    row-value comparison, makes SQLite walk the whole index from the start)."""
    columns = leaves.SELECTS[kind][len("SELECT ") :]
    horizon = " AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint" if backend().name == "postgresql" else ""
    same = f"SELECT txid, {columns} WHERE txid = :t AND id > :i{horizon} ORDER BY id LIMIT :n"
    later = f"SELECT txid, {columns} WHERE txid > :t{horizon} ORDER BY txid, id LIMIT :n"
    rows = list(db.session.execute(sa.text(same), {"t": after[0], "i": after[1], "n": limit}))
    if len(rows) < limit:
        rows += db.session.execute(sa.text(later), {"t": after[0], "n": limit - len(rows)})
    return rows


def frontier(size: int) -> tree.Frontier:
    keys = tree.frontier_keys(size)
    found = dict(db.session.execute(sa.select(LedgerNode.key, LedgerNode.hash).where(LedgerNode.key.in_(keys))).all())
    return tree.Frontier(size, [found[key] for key in keys])


def tree_size() -> int:
    return int(db.session.scalar(sa.select(sa.func.coalesce(sa.func.max(LedgerLeaf.idx) + 1, 0))) or 0)


def sequence_once(*, limit: int = BATCH) -> int:
    """Sequence up to `limit` rows of each kind and sign a checkpoint; how many
    leaves it added. Joins the caller's (writing) transaction."""
    backend().lock_key(LOCK_KEY)
    size = tree_size()
    batches = [
        [(row[0], kind, row[1], row) for row in _waiting(kind, _position(kind), limit)]
        for kind in (leaves.CONSENT_EVENT, leaves.AUDIT_EVENT)
    ]
    rows = list(heapq.merge(*batches, key=lambda item: (item[0], item[1], item[2])))
    edge = frontier(size)
    leaf_rows: list[dict[str, Any]] = []
    node_rows: list[dict[str, Any]] = []
    for txid, kind, source_id, row in rows:
        digest = tree.leaf_hash(leaves.ENCODERS[kind](row[1:]))
        leaf_rows.append({"idx": edge.size, "kind": kind, "source_id": source_id, "source_txid": txid})
        node_rows.extend({"key": key, "hash": value} for key, value in edge.append(digest))
    if leaf_rows:
        db.session.execute(sa.insert(LedgerLeaf), leaf_rows)
        db.session.execute(sa.insert(LedgerNode), node_rows)
    newest = checkpoints.newest()
    if leaf_rows or newest is None or newest.key_id != checkpoints.signer()[2]:
        signed = checkpoints.sign(edge.size, edge.root())
        from .witness import announce  # the witness defers a job: only when one is set

        announce(signed)
    return len(leaf_rows)


def sequence_all() -> int:
    """Sequence everything waiting, committing each batch (the CLI and tests)."""
    total = 0
    while True:
        added = sequence_once()
        db.session.commit()
        total += added
        if added == 0:
            return total
