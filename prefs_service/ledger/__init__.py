"""The transparency log over the consent ledger (README: "The transparency log").

Every consent event and every audit-trail row (staff decisions, suppressions
added and lifted) becomes a leaf of an append-only RFC 9162 Merkle tree; a
sequencer (sequencer.py, run by the worker) extends the tree and signs
checkpoints with Ed25519. Stable entry points for other modules (the receipts):

- `ledger.leaves.leaf_for(kind, source_id) -> bytes | None`, `leaves.CONSENT_EVENT`,
  `leaves.field_commitments(...)`, `leaves.field_salt(...)`: the canonical leaf
  and the salted evidence commitments.
- `ledger.proofs.inclusion(event_id, tree_size) -> list[bytes]`,
  `proofs.inclusion_document(event_id, tree_size=None) -> dict`,
  `proofs.consistency(old_size, new_size) -> list[bytes]`, `proofs.leaf_index(event_id)`.
- `ledger.checkpoints.latest() -> dict | None` (the signed checkpoint),
  `checkpoints.public_keys()`, `checkpoints.body(...)`, `checkpoints.signature_valid(...)`.
- `ledger.tree`: the pure RFC 9162 arithmetic (leaf_hash, node_hash, fold).
"""
