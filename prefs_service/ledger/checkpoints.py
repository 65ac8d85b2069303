"""Signed checkpoints: the tree's size and root at a time, signed with Ed25519.

Public API (stable names; the receipts use them):

- `latest() -> dict | None`: the newest signed checkpoint, as the API shows it
  (`as_dict`): {"origin", "tree_size", "root_hash" (base64), "timestamp" (ms since
  the epoch), "key_id", "signature" (base64), "body" (the signed text)}.
- `at_least(tree_size) -> dict | None`: the first checkpoint at or beyond a size;
  `at_size(tree_size)`: the newest of exactly that size.
- `public_keys() -> list[dict]`: every key that ever signed: {"key_id",
  "public_key" (base64 raw 32 bytes), "algorithm": "Ed25519", "first_used_at", "current"}.
- `body(tree_size, root_hash, timestamp_ms) -> bytes` and
  `signature_valid(public_key, body, signature) -> bool`: for offline checks.

The signed text (`body`) is four lines, each ending in "\\n":

    prefs-ledger/v1
    <tree size, decimal>
    <root hash, standard base64>
    <timestamp, milliseconds since the Unix epoch, decimal>

A key id is the first 8 bytes of SHA-256 of the raw public key, in hex.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import current_app

from ..clock import utcnow
from ..extensions import db
from .models import LedgerCheckpoint, LedgerKey

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# cryptography is imported where a key is used, not here: a process that only
# serves checks and pages never loads it (8 MB a process, with its own copy of OpenSSL).

ORIGIN = "prefs-ledger/v1"
_LISTED_KEYS = "prefs.ledger.listed_keys"


def body(tree_size: int, root_hash: bytes, timestamp_ms: int) -> bytes:
    return f"{ORIGIN}\n{tree_size}\n{base64.b64encode(root_hash).decode()}\n{timestamp_ms}\n".encode()


def key_id(public_key: bytes) -> str:
    return hashlib.sha256(public_key).digest()[:8].hex()


@functools.cache
def _signer(seed_b64: str) -> tuple[Ed25519PrivateKey, bytes, str]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.from_private_bytes(base64.b64decode(seed_b64))
    public = private.public_key().public_bytes_raw()
    return private, public, key_id(public)


def signer() -> tuple[Ed25519PrivateKey, bytes, str]:
    """(private key, raw public key, key id) from PREFS_LEDGER_SIGNING_KEY."""
    return _signer(current_app.config["PREFS"].ledger_signing_key)


def signature_valid(public_key: bytes, signed: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, signed)
    except (InvalidSignature, ValueError):
        return False
    return True


def prepare(tree_size: int, root_hash: bytes) -> LedgerCheckpoint:
    """A signed checkpoint of the tree as it stands, not yet stored (no database)."""
    private, _, kid = signer()
    timestamp_ms = int(utcnow().timestamp() * 1000)
    return LedgerCheckpoint(
        tree_size=tree_size,
        root_hash=root_hash,
        timestamp_ms=timestamp_ms,
        key_id=kid,
        signature=private.sign(body(tree_size, root_hash, timestamp_ms)),
    )


def record(checkpoint: LedgerCheckpoint) -> LedgerCheckpoint:
    """Store a prepared checkpoint, listing its signing key if it is new; joins
    the caller's transaction."""
    _, public, kid = signer()
    # A key once listed stays listed: remember it (only once seen committed) and
    # spare the sequencer's write transaction the lookup.
    listed: set[str] = current_app.extensions.setdefault(_LISTED_KEYS, set())
    if kid not in listed:
        if db.session.get(LedgerKey, kid) is None:
            db.session.add(LedgerKey(key_id=kid, public_key=public, first_used_at=utcnow()))
            db.session.flush()
        else:
            listed.add(kid)
    db.session.add(checkpoint)
    db.session.flush()
    return checkpoint


def sign(tree_size: int, root_hash: bytes) -> LedgerCheckpoint:
    """Sign the tree as it stands and store the checkpoint; joins the caller's transaction."""
    return record(prepare(tree_size, root_hash))


def as_dict(checkpoint: LedgerCheckpoint) -> dict[str, Any]:
    return {
        "origin": ORIGIN,
        "tree_size": checkpoint.tree_size,
        "root_hash": base64.b64encode(checkpoint.root_hash).decode(),
        "timestamp": checkpoint.timestamp_ms,
        "key_id": checkpoint.key_id,
        "signature": base64.b64encode(checkpoint.signature).decode(),
        "body": body(checkpoint.tree_size, checkpoint.root_hash, checkpoint.timestamp_ms).decode(),
    }


def newest() -> LedgerCheckpoint | None:
    return db.session.scalars(sa.select(LedgerCheckpoint).order_by(LedgerCheckpoint.id.desc()).limit(1)).first()


def latest() -> dict[str, Any] | None:
    found = newest()
    return None if found is None else as_dict(found)


def at_least(tree_size: int) -> dict[str, Any] | None:
    found = db.session.scalars(
        sa.select(LedgerCheckpoint).where(LedgerCheckpoint.tree_size >= tree_size).order_by(LedgerCheckpoint.id).limit(1)
    ).first()
    return None if found is None else as_dict(found)


def at_size(tree_size: int) -> dict[str, Any] | None:
    """The newest checkpoint of exactly `tree_size` leaves."""
    found = db.session.scalars(
        sa.select(LedgerCheckpoint).where(LedgerCheckpoint.tree_size == tree_size).order_by(LedgerCheckpoint.id.desc()).limit(1)
    ).first()
    return None if found is None else as_dict(found)


def public_keys() -> list[dict[str, Any]]:
    current = signer()[2]
    return [
        {
            "key_id": key.key_id,
            "algorithm": "Ed25519",
            "public_key": base64.b64encode(key.public_key).decode(),
            "first_used_at": key.first_used_at.isoformat(),
            "current": key.key_id == current,
        }
        for key in db.session.scalars(sa.select(LedgerKey).order_by(LedgerKey.first_used_at, LedgerKey.key_id))
    ]
