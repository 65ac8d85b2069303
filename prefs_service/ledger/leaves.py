"""What a leaf is: the canonical encoding of a consent event or an audit-trail
row, and the salted commitment to an event's personal evidence.

Public API (stable names; the receipts use them):

- `CONSENT_EVENT` (1), `AUDIT_EVENT` (2): the kinds of leaf.
- `evidence_columns(ip, user_agent, note) -> {"evidence_salt", "evidence_commitment"}`:
  written with the event, in the same statement.
- `field_commitments(salt, ip, user_agent, note) -> [c_ip, c_ua, c_note]` and
  `field_salt(salt, name)`: to disclose one evidence field in a receipt (give the
  field's value, its field salt, and the other two field commitments).
- `commitment(salt, ip, user_agent, note) -> bytes`: SHA-256(c_ip || c_ua || c_note).
- `leaf_for(kind, source_id) -> bytes | None`: the leaf bytes of one stored row
  (hash it with tree.leaf_hash for the Merkle leaf hash).
- `consent_leaf(row)`, `audit_leaf(row)`: encode a raw row of CONSENT_SQL / AUDIT_SQL.

Encoding (README, "The canonical leaf"): one kind byte, then each field in a
fixed order as a 4-byte big-endian length and its bytes, or FF FF FF FF for
NULL. Text is UTF-8; integers and times (microseconds since the Unix epoch, UTC)
are decimal ASCII; the subject id is 32 lowercase hex digits; the evidence
commitment is its 32 raw bytes; audit details are JSON with sorted keys, no
spaces, ASCII only (json.dumps(..., sort_keys=True, separators=(",", ":"))).

Why one random salt per event and a salt per field derived from it
(SHA-256(salt || field name)): erasure deletes a single column, yet a receipt can
open one field (say the user agent) without giving a key to guess the others
from their commitments (a truncated IP has few possible values).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ..extensions import db

CONSENT_EVENT = 1
AUDIT_EVENT = 2
KIND_NAMES = {CONSENT_EVENT: "consent event", AUDIT_EVENT: "audit event"}
PERSONAL_FIELDS = ("evidence_ip", "evidence_user_agent", "evidence_note")
SALT_BYTES = 16

# The columns a leaf is made of, in leaf order; then, for consent events, what
# verify needs to check the commitment while the evidence is still held.
CONSENT_COLUMNS = (
    "id", "subject_id", "channel", "purpose", "status", "source", "occurred_at", "recorded_at",
    "policy_version", "recorded_by", "evidence_commitment",
    "evidence_salt", "evidence_ip", "evidence_user_agent", "evidence_note",
)  # fmt: skip
AUDIT_COLUMNS = ("id", "occurred_at", "actor", "action", "target_type", "target_id", "details")
CONSENT_SQL = f"SELECT {', '.join(CONSENT_COLUMNS)} FROM consent_events"  # noqa: S608 - constant names
AUDIT_SQL = f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit_events"  # noqa: S608 - constant names

_sha256 = hashlib.sha256
_NULL = b"\xff\xff\xff\xff"
_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_FIELD_NAMES = tuple(name.encode() for name in PERSONAL_FIELDS)


# --- evidence commitments -----------------------------------------------------------


def field_salt(salt: bytes, name: str) -> bytes:
    """The salt of one evidence field: SHA-256(event salt || field name)."""
    return _sha256(salt + name.encode()).digest()


def _commit_value(key: bytes, value: str | None) -> bytes:
    return _sha256(key + (b"\x00" if value is None else b"\x01" + value.encode())).digest()


def field_commitments(salt: bytes, ip: str | None, user_agent: str | None, note: str | None) -> list[bytes]:
    """SHA-256(field salt || 0x00) for an empty field, SHA-256(field salt || 0x01 || UTF-8 value) else."""
    return [_commit_value(_sha256(salt + name).digest(), value) for name, value in zip(_FIELD_NAMES, (ip, user_agent, note), strict=True)]


def commitment(salt: bytes, ip: str | None, user_agent: str | None, note: str | None) -> bytes:
    return _sha256(b"".join(field_commitments(salt, ip, user_agent, note))).digest()


def evidence_columns(ip: str | None, user_agent: str | None, note: str | None) -> dict[str, bytes]:
    """A fresh salt and the commitment, for the event's row."""
    salt = os.urandom(SALT_BYTES)
    return {"evidence_salt": salt, "evidence_commitment": commitment(salt, ip, user_agent, note)}


# --- canonical encoding -------------------------------------------------------------


def micros(value: Any) -> int:
    """Microseconds since the epoch of a stored time: a datetime (aware, or naive
    UTC) or SQLite's text form of one."""
    moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    return (moment - (_EPOCH if moment.tzinfo is None else _EPOCH_UTC)) // _MICRO


def _text(value: Any) -> bytes | None:
    return None if value is None else str(value).encode()


def _uuid_hex(value: Any) -> bytes:
    if isinstance(value, uuid.UUID):
        return value.hex.encode()
    return uuid.UUID(value).hex.encode() if len(value) != 32 else value.lower().encode()


def details_json(value: Any) -> bytes:
    """Audit details, canonical: parsed (SQLite hands back the stored text), then dumped."""
    if isinstance(value, str | bytes):
        value = json.loads(value)
    return json.dumps(value if value is not None else {}, sort_keys=True, separators=(",", ":")).encode()


def encode(kind: int, fields: tuple[bytes | None, ...]) -> bytes:
    parts = [bytes((kind,))]
    for value in fields:
        if value is None:
            parts.append(_NULL)
        else:
            parts.append(len(value).to_bytes(4, "big"))
            parts.append(value)
    return b"".join(parts)


_PREFIXED: dict[str, bytes] = {}
_FOUR_32 = (32).to_bytes(4, "big")


def _prefixed(value: str) -> bytes:
    """Length-prefixed UTF-8 of a text field, remembered: channels, purposes,
    statuses, sources and actors repeat, and verify encodes a million rows."""
    found = _PREFIXED.get(value)
    if found is None:
        data = value.encode()
        found = len(data).to_bytes(4, "big") + data
        if len(_PREFIXED) < 100_000:
            _PREFIXED[value] = found
    return found


def consent_leaf(row: Any) -> bytes:
    """The leaf of a consent_events row (CONSENT_COLUMNS order, raw driver values).
    Written out field by field: `prefs ledger verify` runs it a million times."""
    event_id = str(row[0]).encode()
    subject = row[1]
    subject_hex = subject.lower().encode() if type(subject) is str and len(subject) == 32 else _uuid_hex(subject)
    occurred = str(micros(row[6])).encode()
    recorded = str(micros(row[7])).encode()
    policy, held = row[8], row[10]
    return b"".join(
        (
            b"\x01",
            len(event_id).to_bytes(4, "big"),
            event_id,
            _FOUR_32,
            subject_hex,
            _PREFIXED.get(row[2]) or _prefixed(row[2]),
            _PREFIXED.get(row[3]) or _prefixed(row[3]),
            _PREFIXED.get(row[4]) or _prefixed(row[4]),
            _PREFIXED.get(row[5]) or _prefixed(row[5]),
            len(occurred).to_bytes(4, "big"),
            occurred,
            len(recorded).to_bytes(4, "big"),
            recorded,
            _NULL if policy is None else (_PREFIXED.get(policy) or _prefixed(policy)),
            _PREFIXED.get(row[9]) or _prefixed(row[9]),
            _NULL if held is None else _FOUR_32 + bytes(held),
        )
    )


def audit_leaf(row: Any) -> bytes:
    """The leaf of an audit_events row (AUDIT_COLUMNS order, raw driver values)."""
    return encode(
        AUDIT_EVENT,
        (
            str(row[0]).encode(),
            str(micros(row[1])).encode(),
            row[2].encode(),
            row[3].encode(),
            row[4].encode(),
            row[5].encode(),
            details_json(row[6]),
        ),
    )


def evidence_matches(row: Any) -> bool:
    """Whether a consent row's held evidence still matches its commitment (an
    erased row, with no salt, has nothing left to check). commitment(), inline."""
    salt = row[11]
    if salt is None:
        return True
    stored = row[10]
    if stored is None:
        return False
    salt = bytes(salt)
    sha = _sha256
    ip, agent, note = row[12], row[13], row[14]
    joined = b"".join(
        (
            sha(sha(salt + b"evidence_ip").digest() + (b"\x00" if ip is None else b"\x01" + ip.encode())).digest(),
            sha(sha(salt + b"evidence_user_agent").digest() + (b"\x00" if agent is None else b"\x01" + agent.encode())).digest(),
            sha(sha(salt + b"evidence_note").digest() + (b"\x00" if note is None else b"\x01" + note.encode())).digest(),
        )
    )
    return sha(joined).digest() == bytes(stored)


ENCODERS = {CONSENT_EVENT: consent_leaf, AUDIT_EVENT: audit_leaf}
SELECTS = {CONSENT_EVENT: CONSENT_SQL, AUDIT_EVENT: AUDIT_SQL}
TABLES = {CONSENT_EVENT: "consent_events", AUDIT_EVENT: "audit_events"}


def leaf_for(kind: int, source_id: int) -> bytes | None:
    """The leaf bytes of one stored row as it is now; None if there is no such row."""
    row = db.session.execute(sa.text(SELECTS[kind] + " WHERE id = :id"), {"id": source_id}).first()
    return None if row is None else ENCODERS[kind](row)
