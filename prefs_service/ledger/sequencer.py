"""The sequencer: takes committed, not yet sequenced rows in commit order,
gives them leaf indexes, extends the tree and signs a checkpoint.

Writers never wait for it: they append rows as before (with their evidence
commitment). Commit order is the change feed's (consent/queries.py feed()):
rows by (txid, id), and on PostgreSQL only those whose transaction id is below
the oldest still running, so a slower transaction with a smaller id can never
commit behind the sequencer.

A round reads and hashes in a read transaction, then writes in a short write
transaction (an advisory lock on PostgreSQL; BEGIN IMMEDIATE on SQLite), and
only if the tree is still the size it read: so two sequencers never both
extend it, and SQLite's writers wait on the sequencer only for its inserts.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ..db import scopes
from ..db.backend import backend
from ..extensions import db
from . import checkpoints, leaves, tree
from .models import LedgerCheckpoint, LedgerLeaf, LedgerNode

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


@dataclass
class _Batch:
    """Leaves and nodes that extend the tree from `size` leaves, hashed already."""

    size: int
    edge: tree.Frontier
    leaf_rows: list[tuple[int, int, int, int]] = field(default_factory=list)
    node_rows: list[tuple[int, bytes]] = field(default_factory=list)
    checkpoint: LedgerCheckpoint | None = None  # signed already; None: nothing new to sign


def _prepare(limit: int) -> _Batch:
    """Read what waits and hash it in a read transaction: on SQLite, writers
    would wait on our write lock all that while (it halved one-click throughput)."""
    with scopes.read_only():
        try:
            size = tree_size()
            batches = [
                [(row[0], kind, row[1], row) for row in _waiting(kind, _position(kind), limit)]
                for kind in (leaves.CONSENT_EVENT, leaves.AUDIT_EVENT)
            ]
            batch = _Batch(size, frontier(size))
            resign = _needs_checkpoint(checkpoints.signer()[2])  # a first checkpoint, or a new key
        finally:
            db.session.rollback()
    edge = batch.edge
    for txid, kind, source_id, row in heapq.merge(*batches, key=lambda item: (item[0], item[1], item[2])):
        digest = tree.leaf_hash(leaves.ENCODERS[kind](row[1:]))
        batch.leaf_rows.append((edge.size, kind, source_id, txid))
        batch.node_rows.extend(edge.append(digest))
    if batch.leaf_rows or resign:
        batch.checkpoint = checkpoints.prepare(edge.size, edge.root())
    return batch


def _needs_checkpoint(key_id: str) -> bool:
    """With no new leaves, whether the tree still lacks a checkpoint by this key
    (another sequencer may have signed it since it was read)."""
    newest = checkpoints.newest()
    return newest is None or newest.key_id != key_id


def _commit(batch: _Batch) -> bool:
    """Write a prepared batch and its signed checkpoint, unless another
    sequencer extended the tree since it was read (then nothing is written).
    Only inserts run under the lock."""
    with scopes.writing():
        try:
            backend().lock_key(LOCK_KEY)
            if tree_size() != batch.size:
                return False
            if batch.leaf_rows:
                driver: Any = db.session.connection().connection.driver_connection
                written = backend().bulk_insert(
                    driver, LedgerLeaf.__tablename__, ("idx", "kind", "source_id", "source_txid"), batch.leaf_rows
                )
                written += backend().bulk_insert(driver, LedgerNode.__tablename__, ("key", "hash"), batch.node_rows)
                if written != len(batch.leaf_rows) + len(batch.node_rows):  # the lock and the size check rule this out
                    raise RuntimeError("ledger sequencing: a leaf or node was present already")
            if batch.checkpoint is not None and (batch.leaf_rows or _needs_checkpoint(batch.checkpoint.key_id)):
                from .witness import announce  # the witness defers a job: only when one is set

                announce(checkpoints.record(batch.checkpoint))
            db.session.commit()
            return True
        finally:
            db.session.rollback()  # nothing, after a commit; what was written, after an error


def sequence_once(*, limit: int = BATCH) -> int:
    """Sequence up to `limit` rows of each kind and sign a checkpoint; how many
    leaves it added. Runs its own transactions: call it with none open."""
    while True:
        batch = _prepare(limit)
        if _commit(batch):
            return len(batch.leaf_rows)


def sequence_all() -> int:
    """Sequence everything waiting, batch after batch (the CLI and tests)."""
    total = 0
    while True:
        added = sequence_once()
        total += added
        if added == 0:
            return total
