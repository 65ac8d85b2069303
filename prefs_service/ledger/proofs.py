"""Inclusion and consistency proofs (RFC 9162 §2.1.3 and §2.1.4) from the
stored perfect subtrees.

Public API (stable names; the receipts use them):

- `leaf_index(event_id, kind=CONSENT_EVENT) -> int | None`: where a row sits in the log.
- `inclusion(event_id, tree_size, kind=CONSENT_EVENT) -> list[bytes]`: the audit
  path of the event's leaf in the tree of `tree_size` leaves (raises
  ProofUnavailable if the event is not in that tree).
- `inclusion_for_leaf(leaf_index, tree_size) -> list[bytes]`.
- `leaf_indexes(event_ids, kind=CONSENT_EVENT) -> {event_id: leaf index}` and
  `inclusions_for_leaves(leaf_indexes, tree_size) -> {leaf index: audit path}`:
  the same for many at once, in a few statements (receipts of a long history).
- `consistency(old_size, new_size) -> list[bytes]`.
- `root(tree_size) -> bytes`: the root of the log's first `tree_size` leaves.
- `inclusion_document(event_id, tree_size=None) -> dict`: what the API returns:
  {"event_id", "leaf_index", "tree_size", "leaf_hash", "audit_path": [base64…],
  "checkpoint"}; tree_size None means the latest checkpoint's.
"""

from __future__ import annotations

import base64
from typing import Any

import sqlalchemy as sa

from ..errors import NotFound
from ..extensions import db
from . import checkpoints, leaves, tree
from .models import LedgerLeaf, LedgerNode
from .sequencer import tree_size as log_size


class ProofUnavailable(NotFound):
    """The log has no such proof: a size it never had, a leaf beyond the size (a 404 at the API)."""


def _lookup(keys: list[int]) -> dict[int, bytes]:
    found = dict(db.session.execute(sa.select(LedgerNode.key, LedgerNode.hash).where(LedgerNode.key.in_(keys))).all())
    if len(found) != len(keys):
        raise ProofUnavailable("The log's tree is missing nodes for that size.")
    return found


def leaf_index(event_id: int, kind: int = leaves.CONSENT_EVENT) -> int | None:
    return db.session.scalar(sa.select(LedgerLeaf.idx).where(LedgerLeaf.kind == kind, LedgerLeaf.source_id == event_id))


LOOKUP_CHUNK = 5000  # node keys per statement, well inside SQLite's bound-parameter limit


def leaf_indexes(event_ids: list[int], kind: int = leaves.CONSENT_EVENT) -> dict[int, int]:
    found: dict[int, int] = {}
    for start in range(0, len(event_ids), LOOKUP_CHUNK):
        chunk = event_ids[start : start + LOOKUP_CHUNK]
        rows = db.session.execute(
            sa.select(LedgerLeaf.source_id, LedgerLeaf.idx).where(LedgerLeaf.kind == kind, LedgerLeaf.source_id.in_(chunk))
        )
        for source_id, idx in rows:
            found[source_id] = idx
    return found


def inclusions_for_leaves(indexes: list[int], tree_size: int) -> dict[int, list[bytes]]:
    """The audit paths of many leaves in one tree, their nodes read together."""
    _check_size(tree_size)
    if any(not 0 <= index < tree_size for index in indexes):
        raise ProofUnavailable(f"Some leaves are not in the tree of size {tree_size}.")
    ranges = {index: tree.inclusion_ranges(index, tree_size) for index in indexes}
    wanted = sorted({tree.node_key(level, i) for rs in ranges.values() for start, end in rs for level, i in tree.perfect_parts(start, end)})
    nodes: dict[int, bytes] = {}
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        nodes.update(_lookup(wanted[start : start + LOOKUP_CHUNK]))
    return {index: tree.range_hashes(rs, lambda keys: nodes) for index, rs in ranges.items()}


def _check_size(tree_size: int) -> None:
    if tree_size < 0 or tree_size > log_size():
        raise ProofUnavailable(f"The log has no tree of size {tree_size}.")


def inclusion_for_leaf(index: int, tree_size: int) -> list[bytes]:
    _check_size(tree_size)
    if not 0 <= index < tree_size:
        raise ProofUnavailable(f"Leaf {index} is not in the tree of size {tree_size}.")
    return tree.range_hashes(tree.inclusion_ranges(index, tree_size), _lookup)


def inclusion(event_id: int, tree_size: int, kind: int = leaves.CONSENT_EVENT) -> list[bytes]:
    index = leaf_index(event_id, kind)
    if index is None:
        raise NotFound("That event is not in the log yet.")
    return inclusion_for_leaf(index, tree_size)


def consistency(old_size: int, new_size: int) -> list[bytes]:
    _check_size(new_size)
    if not 0 <= old_size <= new_size:
        raise ProofUnavailable("`from` must be at most `to`.")
    if old_size in (0, new_size):
        return []
    return tree.range_hashes(tree.consistency_ranges(old_size, new_size), _lookup)


def root(tree_size: int) -> bytes:
    _check_size(tree_size)
    return tree.range_hashes([(0, tree_size)], _lookup)[0] if tree_size else tree.EMPTY_ROOT


def _b64(values: list[bytes]) -> list[str]:
    return [base64.b64encode(value).decode() for value in values]


def inclusion_document(event_id: int, tree_size: int | None = None) -> dict[str, Any]:
    """An event's inclusion proof against a signed checkpoint: the one of
    `tree_size`, or the latest."""
    index = leaf_index(event_id)
    if index is None:
        raise NotFound("That event is not in the log yet (the sequencer adds events within seconds).")
    if tree_size is None:
        checkpoint = checkpoints.latest()
    else:
        checkpoint = checkpoints.at_size(tree_size)
        if checkpoint is None:
            raise ProofUnavailable(f"No signed checkpoint has tree size {tree_size}.")
    if checkpoint is None or checkpoint["tree_size"] <= index:
        raise NotFound("No signed checkpoint covers that event yet.")
    size = checkpoint["tree_size"]
    node = db.session.scalar(sa.select(LedgerNode.hash).where(LedgerNode.key == tree.node_key(0, index)))
    return {
        "event_id": event_id,
        "leaf_index": index,
        "tree_size": size,
        "leaf_hash": base64.b64encode(node or b"").decode(),
        "audit_path": _b64(inclusion_for_leaf(index, size)),
        "checkpoint": checkpoint,
    }


def consistency_document(old_size: int, new_size: int) -> dict[str, Any]:
    return {"from": old_size, "to": new_size, "proof": _b64(consistency(old_size, new_size))}
