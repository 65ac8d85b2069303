"""Recompute the whole log from the database and check every stored node and
every checkpoint (`prefs ledger verify`).

One ordered scan of each table through the driver's own cursor (no ORM, no
type processing): the leaves in index order, the nodes in the order the tree
creates them (tree.node_key), consent events and audit rows in commit order,
checkpoints by size. Each leaf names the row it must be; the row is
re-encoded and hashed, the frontier extended, and every node it completes
compared with the stored one; at each checkpoint's size the root is compared
and its signature checked. The first difference ends the run.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..extensions import db
from . import checkpoints, leaves, tree

PAGE = 20000


@dataclass
class Outcome:
    leaves: int = 0
    checkpoints: int = 0
    pending: int = 0  # rows written but not sequenced yet
    redacted: int = 0  # consent events whose evidence was erased
    problem: str | None = None
    keys: dict[str, bytes] = field(default_factory=dict)

    @property
    def intact(self) -> bool:
        return self.problem is None


class Failed(Exception):
    pass


def _stream(connection: Any, sql: str, name: str) -> Iterator[Any]:
    """Rows of `sql`, read lazily by the driver's own cursor (an iterator in C):
    a server-side cursor fetching PAGE rows at a time on PostgreSQL."""
    if db.engine.dialect.name == "postgresql":
        cursor = connection.cursor(name=f"ledger_verify_{name}")
        cursor.itersize = PAGE
    else:
        cursor = connection.cursor()
        cursor.arraysize = PAGE
    cursor.execute(sql)
    return iter(cursor)


def verify(progress: Callable[[int], None] | None = None) -> Outcome:
    """Check the log; `progress(leaves so far)` is called every 100,000 leaves."""
    outcome = Outcome()
    raw = db.engine.raw_connection()
    try:
        _verify(raw.driver_connection, outcome, progress)
    except Failed as failure:
        outcome.problem = str(failure)
    finally:
        raw.rollback()
        raw.close()
    return outcome


def _verify(connection: Any, outcome: Outcome, progress: Callable[[int], None] | None) -> None:
    keys = {kid: bytes(public) for kid, public in _stream(connection, "SELECT key_id, public_key FROM ledger_keys", "keys")}
    outcome.keys = keys
    leaf_rows = _stream(connection, "SELECT idx, kind, source_id FROM ledger_leaves ORDER BY idx", "leaves")
    node_rows = _stream(connection, "SELECT key, hash FROM ledger_nodes ORDER BY key", "nodes")
    sources = {
        leaves.CONSENT_EVENT: _stream(connection, leaves.CONSENT_SQL + " ORDER BY txid, id", "consent"),
        leaves.AUDIT_EVENT: _stream(connection, leaves.AUDIT_SQL + " ORDER BY txid, id", "audit"),
    }
    marks = _stream(
        connection, "SELECT id, tree_size, root_hash, timestamp_ms, key_id, signature FROM ledger_checkpoints ORDER BY tree_size, id", "cps"
    )
    consent_leaf, audit_leaf, evidence_matches = leaves.consent_leaf, leaves.audit_leaf, leaves.evidence_matches
    sha256 = hashlib.sha256
    frontier = tree.Frontier()
    stack = frontier.stack
    next_mark = next(marks, None)

    def check_marks(size: int) -> Any:
        frontier.size = size
        mark = next_mark
        while mark is not None and mark[1] == size:
            _check_checkpoint(mark, frontier.root(), keys)
            outcome.checkpoints += 1
            mark = next(marks, None)
        return mark

    def node_failed(key: int, stored: Any, name: str, source_id: int, idx: int) -> Failed:
        if key & 63 == 0:
            return Failed(f"{name} {source_id} (leaf {idx}) no longer matches its leaf in the log")
        return Failed(f"tree node at level {key & 63} over leaves up to {(key >> 6) - 1} does not match (stored {_short(stored)})")

    next_mark = check_marks(0)
    size = 0
    consent_rows = sources[leaves.CONSENT_EVENT]
    redacted = 0
    for idx, kind, source_id in leaf_rows:
        if idx != size:
            raise Failed(f"leaf {size} is missing from the log (the next stored leaf is {idx})")
        if kind == 1:  # leaves.CONSENT_EVENT, the common case
            row = next(consent_rows, None)
            if row is None or row[0] != source_id:
                raise _out_of_order(kind, source_id, idx, row)
            leaf = consent_leaf(row)
            if row[11] is None:
                redacted += 1
            elif not evidence_matches(row):
                raise Failed(f"consent event {source_id} (leaf {idx}): its evidence no longer matches its commitment")
        else:
            row = next(sources[kind], None) if kind in sources else None
            if row is None or row[0] != source_id:
                raise _out_of_order(kind, source_id, idx, row)
            leaf = audit_leaf(row)
        digest = sha256(b"\x00" + leaf).digest()
        stored = next(node_rows, None)
        key = (size + 1) << 6  # tree.node_key(0, size)
        if stored is None or stored[0] != key or stored[1] != digest:
            raise node_failed(key, stored, leaves.KIND_NAMES.get(kind, ""), source_id, idx)
        stack.append(digest)
        size += 1
        level = 0
        while not size & (1 << level):  # the subtrees this leaf completes (tree.Frontier.append)
            right = stack.pop()
            digest = sha256(b"\x01" + stack.pop() + right).digest()
            stack.append(digest)
            level += 1
            stored = next(node_rows, None)
            key = (size << 6) | level
            if stored is None or stored[0] != key or stored[1] != digest:
                raise node_failed(key, stored, leaves.KIND_NAMES.get(kind, ""), source_id, idx)
        if next_mark is not None and next_mark[1] == size:
            next_mark = check_marks(size)
        if progress is not None and size % 100_000 == 0:
            progress(size)
    outcome.redacted = redacted
    outcome.leaves = size
    extra = next(node_rows, None)
    if extra is not None:
        raise Failed(f"the log holds a tree node beyond its {size} leaves (key {extra[0]})")
    if next_mark is not None:
        raise Failed(f"checkpoint {next_mark[0]} claims {next_mark[1]} leaves, but the log has {size}")
    outcome.pending = sum(1 for stream in sources.values() for _ in stream)


def _out_of_order(kind: int, source_id: int, idx: int, row: Any) -> Failed:
    name = leaves.KIND_NAMES.get(kind, f"kind {kind}")
    found = "nothing" if row is None else f"{name} {row[0]}"
    return Failed(f"{name} {source_id} (leaf {idx}) is missing or out of order: in its place stands {found}")


def _short(stored: Any) -> str:
    return "nothing" if stored is None else f"key {stored[0]}"


def _check_checkpoint(mark: Any, root: bytes, keys: dict[str, bytes]) -> None:
    checkpoint_id, size, root_hash, timestamp_ms, key_id, signature = mark
    if bytes(root_hash) != root:
        raise Failed(
            f"checkpoint {checkpoint_id} (tree size {size}) names root {base64.b64encode(bytes(root_hash)).decode()}, not the log's"
        )
    public = keys.get(key_id)
    if public is None:
        raise Failed(f"checkpoint {checkpoint_id} (tree size {size}) is signed by unknown key {key_id}")
    if not checkpoints.signature_valid(public, checkpoints.body(size, root, timestamp_ms), bytes(signature)):
        raise Failed(f"checkpoint {checkpoint_id} (tree size {size}): the signature does not verify")
