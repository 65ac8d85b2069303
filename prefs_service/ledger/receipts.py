"""Consent receipts: a ledger event as a standard record the person or a
regulator can keep, with the proof that it is in the log.

receipt() answers the API, receipts_of() the person (preference center and
access export). A person we erased gets none: their events stay in the log
(redacted) and receipts they downloaded before still verify offline, but we
issue no new ones. The proof block is receipt_proof's: "pending" until the
sequencer has put the event into a signed checkpoint, then the event's
inclusion proof in the latest signed checkpoint.
"""

from __future__ import annotations

import base64
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any

import orjson
import sqlalchemy as sa
from flask import current_app

from ..consent.models import ConsentEvent, PolicyVersion, Purpose
from ..errors import Invalid, NotFound
from ..extensions import db
from ..subjects import jurisdictions
from ..subjects.models import Subject
from . import checkpoints, receipt_proof
from . import proofs as log_proofs
from .receipt_formats import BUILDERS, FORMATS, Controller, ReceiptFacts

__all__ = ["FORMATS", "receipt", "receipts_of", "write_archive"]

STREAM_CHUNK = 500
# How long a client should wait before asking again for a receipt whose proof is pending.
RETRY_AFTER_SECONDS = 2


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def disclosed(event: ConsentEvent) -> dict[str, Any]:
    """The event fields a receipt shows and the leaf commits to in the clear."""
    values: dict[str, Any] = {name: getattr(event, name) for name in receipt_proof.EVENT_FIELDS}
    values["subject_id"] = str(event.subject_id)
    values["occurred_at"] = _iso(event.occurred_at)
    values["recorded_at"] = _iso(event.recorded_at)
    return values


def public_withdraw_url() -> str:
    """Where anyone asks for a fresh link to their preferences (no token: a
    receipt outlives a 45-day link, and the API's readers may not mint one)."""
    return f"{current_app.config['PREFS'].base_url}/preferences"


def _controller() -> Controller:
    settings = current_app.config["PREFS"]
    return Controller(
        name=settings.org_name,
        email=settings.support_email,
        url=settings.base_url,
        postal_address=settings.org_postal_address,
        phone=settings.org_phone,
    )


def proofs(events: list[ConsentEvent]) -> dict[int, dict[str, Any]]:
    """The proof block per event: its inclusion proof in the latest signed
    checkpoint (with the checkpoint and the key that signed it), or pending
    while the sequencer has not put it into one."""
    checkpoint = checkpoints.latest()
    pending: dict[str, Any] = {"status": receipt_proof.PENDING}
    if checkpoint is None:
        return {event.id: pending for event in events}
    size = int(checkpoint["tree_size"])
    keys = {key["key_id"]: key["public_key"] for key in checkpoints.public_keys()}
    found: dict[int, dict[str, Any]] = {}
    indexes = {event_id: index for event_id, index in log_proofs.leaf_indexes([e.id for e in events]).items() if index < size}
    paths = log_proofs.inclusions_for_leaves(list(indexes.values()), size)
    for event in events:
        index = indexes.get(event.id)
        if index is None:
            found[event.id] = pending
            continue
        found[event.id] = {
            "status": receipt_proof.INCLUDED,
            "event": disclosed(event),
            "commitment": None if event.evidence_commitment is None else base64.b64encode(event.evidence_commitment).decode(),
            "leafIndex": index,
            "treeSize": size,
            "inclusionProof": [base64.b64encode(node).decode() for node in paths[index]],
            "checkpoint": checkpoint,
            "publicKey": {"keyId": checkpoint["key_id"], "ed25519": keys[checkpoint["key_id"]]},
        }
    return found


class _Context:
    """What every receipt of one request shares: the purposes, policies, settings."""

    def __init__(self) -> None:
        self.purposes = {(p.channel, p.name): p for p in db.session.scalars(sa.select(Purpose))}
        rows = db.session.execute(sa.select(PolicyVersion.version, PolicyVersion.url))
        self.policy_urls: dict[str, str | None] = {row[0]: row[1] for row in rows}
        settings = current_app.config["PREFS"]
        self.default_policy_url: str = settings.privacy_policy_url or settings.base_url
        self.controller = _controller()

    def facts(self, event: ConsentEvent, subject: Subject, withdraw_url: str, proof: dict[str, Any]) -> ReceiptFacts:
        purpose = self.purposes.get((event.channel, event.purpose))
        return ReceiptFacts(
            event=disclosed(event),
            purpose_label=purpose.label if purpose else event.purpose,
            marketing=bool(purpose.marketing) if purpose else True,
            jurisdiction=jurisdictions.of(subject),
            policy_url=self.policy_urls.get(event.policy_version or "") or self.default_policy_url,
            controller=self.controller,
            withdraw_url=withdraw_url,
            proof=proof,
        )


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise Invalid(f"Unknown receipt format {fmt!r}.", errors={"format": [f"one of: {', '.join(FORMATS)}"]})
    return fmt


def receipt(*, event_id: int, fmt: str, withdraw_url: str | None = None) -> tuple[dict[str, Any], bool]:
    """The receipt of ledger event `event_id` in `fmt`, and whether its proof
    is still pending. NotFound for no such event, or a person we erased."""
    check_format(fmt)
    row = db.session.execute(
        sa.select(ConsentEvent, Subject).join(Subject, Subject.id == ConsentEvent.subject_id).where(ConsentEvent.id == event_id)
    ).first()
    if row is None or row[1].erased_at is not None:
        raise NotFound("No consent event with that id.")
    event, subject = row
    proof = proofs([event])[event.id]
    facts = _Context().facts(event, subject, withdraw_url or public_withdraw_url(), proof)
    return BUILDERS[fmt](facts), proof.get("status") != receipt_proof.INCLUDED


def receipts_of(*, subject_id: uuid.UUID, fmt: str, withdraw_url: str | None = None) -> Iterator[dict[str, Any]]:
    """Every receipt of one person, oldest first, streamed; none for a person
    we erased (or do not hold)."""
    check_format(fmt)
    subject = db.session.get(Subject, subject_id)
    if subject is None or subject.erased_at is not None:
        return
    context = _Context()
    withdraw = withdraw_url or public_withdraw_url()
    stmt = sa.select(ConsentEvent).where(ConsentEvent.subject_id == subject_id).order_by(ConsentEvent.id)
    chunk: list[ConsentEvent] = []
    for event in db.session.scalars(stmt.execution_options(yield_per=STREAM_CHUNK)):
        chunk.append(event)
        if len(chunk) == STREAM_CHUNK:
            yield from _built(context, subject, chunk, withdraw, fmt)
            chunk = []
    yield from _built(context, subject, chunk, withdraw, fmt)


def _built(context: _Context, subject: Subject, events: list[ConsentEvent], withdraw: str, fmt: str) -> Iterator[dict[str, Any]]:
    found = proofs(events)
    for event in events:
        yield BUILDERS[fmt](context.facts(event, subject, withdraw, found[event.id]))


ARCHIVE_README = """Your consent receipts from {org}: one for every choice about contacting you that we recorded.

iso27560.json: each receipt as an ISO/IEC TS 27560:2023 consent record (W3C DPV JSON-LD).
kantara.json: the same receipts as Kantara Initiative Consent Receipts v1.1.

Each receipt's ledgerProof block proves that the choice is in our tamper-evident log:
the event's fields, its leaf's inclusion proof, and the signed checkpoint of the log.
Anyone can check one offline with `prefs ledger verify-receipt FILE`, or by following
the algorithm in our documentation. A receipt whose proof says "pending" was issued
before the log had signed a checkpoint holding it: download your receipts again later.
"""


def write_archive(*, subject_id: uuid.UUID, withdraw_url: str, out: IO[bytes]) -> int:
    """Write the person's receipts as a ZIP (both formats, a README) to `out`;
    how many receipts each file holds."""
    count = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for fmt in FORMATS:
            with archive.open(f"{fmt}.json", "w") as member:
                member.write(b"[")
                for index, document in enumerate(receipts_of(subject_id=subject_id, fmt=fmt, withdraw_url=withdraw_url)):
                    member.write((b",\n" if index else b"\n") + orjson.dumps(document))
                    count = index + 1
                member.write(b"\n]\n")
        archive.writestr("README.txt", ARCHIVE_README.format(org=current_app.config["PREFS"].org_name))
    return count
