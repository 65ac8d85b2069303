"""Checking a consent receipt offline: no database, no application, only the
file. The README's "Verifying a receipt" section states the same algorithm so
that anyone can write their own verifier.

A receipt (either format) carries a proof block: the ledger event's disclosed
fields, the salted commitment to its personal fields (whose plain values and
salt stay with us, and go at erasure), the leaf's index, the RFC 9162 audit
path, and the signed checkpoint the path leads to. Verifying is:

1. the receipt's human-readable fields (state, time, purpose, channel) say
   what the disclosed event says;
2. the leaf, recomputed from the disclosed event and the commitment, hashes
   up the audit path to the checkpoint's root (RFC 9162 §2.1.3.2);
3. the checkpoint's Ed25519 signature holds under the public key given.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

# The event fields a receipt discloses and the leaf commits to, in this order.
EVENT_FIELDS = ("id", "subject_id", "channel", "purpose", "status", "source", "occurred_at", "recorded_at", "policy_version", "recorded_by")
CONSENT_EVENT = 1  # the leaf's kind byte
NULL = b"\xff\xff\xff\xff"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PENDING = "pending"
INCLUDED = "included"


class ReceiptInvalid(Exception):
    """The receipt does not prove what it says; the message says why."""


# RFC 9162 §2.1.1: the Merkle tree hash.
def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2: the root that `path` leads to from leaf `index` of a
    tree of `size` leaves; ReceiptInvalid if the path cannot be one."""
    if not 0 <= index < size:
        raise ReceiptInvalid(f"the leaf index {index} is outside a tree of {size} leaves")
    fn, sn = index, size - 1
    r = leaf_hash(leaf)
    for p in path:
        if sn == 0:
            raise ReceiptInvalid("the inclusion proof is longer than the tree allows")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ReceiptInvalid("the inclusion proof is shorter than the tree needs")
    return r


def micros(iso: str) -> int:
    """Microseconds since the Unix epoch of an ISO 8601 time (UTC if it names no zone)."""
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(microseconds=1)


def _field(value: bytes | None) -> bytes:
    return NULL if value is None else len(value).to_bytes(4, "big") + value


def leaf_bytes(event: Mapping[str, Any], commitment: str | None) -> bytes:
    """The canonical leaf of a consent event (README, "The canonical leaf"):
    the kind byte 0x01, then each field as a 4-byte big-endian length and its
    bytes (FF FF FF FF for none): id, subject id (32 lowercase hex digits),
    channel, purpose, status, source, occurred_at and recorded_at (decimal
    microseconds since the epoch), policy version, recorded_by, and the 32-byte
    commitment to the personal evidence."""
    fields = (
        str(int(event["id"])).encode(),
        uuid.UUID(str(event["subject_id"])).hex.encode(),
        str(event["channel"]).encode(),
        str(event["purpose"]).encode(),
        str(event["status"]).encode(),
        str(event["source"]).encode(),
        str(micros(event["occurred_at"])).encode(),
        str(micros(event["recorded_at"])).encode(),
        None if event["policy_version"] is None else str(event["policy_version"]).encode(),
        str(event["recorded_by"]).encode(),
        None if commitment is None else base64.b64decode(commitment, validate=True),
    )
    return bytes((CONSENT_EVENT,)) + b"".join(_field(value) for value in fields)


def checkpoint_message(checkpoint: Mapping[str, Any]) -> bytes:
    """What the log signs: four lines, each ending in a newline: the origin,
    the tree size, the root hash in standard base64, and the time in
    milliseconds since the epoch."""
    return (f"{checkpoint['origin']}\n{int(checkpoint['tree_size'])}\n{checkpoint['root_hash']}\n{int(checkpoint['timestamp'])}\n").encode()


def key_id(public_key: bytes) -> str:
    """The first 8 bytes of SHA-256 of the raw public key, in hex."""
    return hashlib.sha256(public_key).digest()[:8].hex()


def proof_block(receipt: Mapping[str, Any]) -> Mapping[str, Any]:
    """The proof block of a receipt in either format."""
    for key in ("ledgerProof", "prefs:ledgerProof"):
        block = receipt.get(key)
        if isinstance(block, Mapping):
            return block
    raise ReceiptInvalid("this is not a receipt of ours: it has no ledgerProof block")


def _claims(receipt: Mapping[str, Any]) -> dict[str, Any]:
    """What the receipt says to a person, in the event's terms."""
    if "consentReceiptID" in receipt:  # Kantara
        purpose = receipt["services"][0]["purposes"][0]
        return {
            "status": "withdrawn" if receipt.get("consentStatus") == "withdrawn" else "granted",
            "occurred_at": datetime.fromtimestamp(int(receipt["consentTimestamp"]), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "channel": purpose["channel"],
            "purpose": purpose["purposeId"],
        }
    status = receipt["dpv:hasConsentStatus"]
    process = receipt["dpv:hasProcess"]
    return {
        "status": "withdrawn" if status["@type"] == "dpv:ConsentWithdrawn" else "granted",
        "occurred_at": status["dpv:isIndicatedAtTime"],
        "channel": process["prefs:channel"],
        "purpose": process["dpv:hasPurpose"]["dct:identifier"],
    }


def _second(value: Any) -> int:
    """An ISO time to the second, as Kantara's consentTimestamp carries it."""
    return micros(str(value)) // 1_000_000


def verify(receipt: Mapping[str, Any], *, trusted_keys: Collection[str] = ()) -> dict[str, Any]:
    """Check `receipt` as described above. Returns what was proved (event id,
    leaf index, tree size, checkpoint time); ReceiptInvalid naming the first
    thing that fails. With `trusted_keys` (base64 Ed25519 public keys, as the
    log publishes them), the receipt's key must be one of them: a receipt
    signed by a key of its own choosing proves nothing."""
    # Here, not at the top: a process that never verifies never loads cryptography (checkpoints.py).
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        block = proof_block(receipt)
        if block.get("status") != INCLUDED:
            raise ReceiptInvalid("the receipt carries no proof yet (proof pending): fetch it again once the event is in a checkpoint")
        event = block["event"]
        claims = _claims(receipt)
        for name, said in claims.items():
            held = _second(event[name]) if name == "occurred_at" else event[name]
            if (_second(said) if name == "occurred_at" else said) != held:
                raise ReceiptInvalid(f"the receipt says {name} {said!r} but its ledger event says {event[name]!r}")
        leaf = leaf_bytes(event, block.get("commitment"))
        checkpoint = block["checkpoint"]
        path = [base64.b64decode(node, validate=True) for node in block["inclusionProof"]]
        if int(block["treeSize"]) != int(checkpoint["tree_size"]):
            raise ReceiptInvalid("the inclusion proof is for another tree size than the checkpoint's")
        root = root_from_inclusion_proof(int(block["leafIndex"]), int(block["treeSize"]), leaf, path)
        if root != base64.b64decode(checkpoint["root_hash"], validate=True):
            raise ReceiptInvalid(f"event {event['id']} is not in the checkpointed tree: its leaf and inclusion proof lead to another root")
        given = block["publicKey"]["ed25519"]
        if trusted_keys and given not in trusted_keys:
            raise ReceiptInvalid("the checkpoint is signed by a key that is not among the log's published keys")
        raw = base64.b64decode(given, validate=True)
        if checkpoint.get("key_id") not in (None, key_id(raw)):
            raise ReceiptInvalid("the checkpoint names another signing key than the one the receipt gives")
        key = Ed25519PublicKey.from_public_bytes(raw)
        key.verify(base64.b64decode(checkpoint["signature"], validate=True), checkpoint_message(checkpoint))
        checkpoint_time = datetime.fromtimestamp(int(checkpoint["timestamp"]) / 1000, UTC).isoformat(timespec="seconds")
    except InvalidSignature:
        raise ReceiptInvalid("the checkpoint's signature does not hold under the public key given") from None
    except ReceiptInvalid:
        raise
    # OverflowError, OSError: a time no calendar holds (a crafted receipt says "not valid", never a traceback).
    except (KeyError, IndexError, TypeError, ValueError, OverflowError, OSError, binascii.Error) as exc:
        raise ReceiptInvalid(f"the receipt is malformed ({type(exc).__name__}: {exc})") from None
    return {
        "event_id": event["id"],
        "leaf_index": int(block["leafIndex"]),
        "tree_size": int(block["treeSize"]),
        "checkpoint_time": checkpoint_time,
        "key_id": block["publicKey"].get("keyId"),
    }
