"""The work of a rights request, each run by a job: the access export, the
erasure and the correction."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from .. import audit, links, tokens
from ..channels import email as email_channel
from ..clock import utcnow
from ..consent.models import ConsentEvent
from ..errors import Conflict
from ..extensions import db
from ..job_kinds import JobKind
from ..notices import service as notices
from ..notices.models import PENDING, Notice
from ..orders import service as orders
from ..partners import service as partners
from ..private_files import private_folder
from ..registers import enquiries
from ..subjects import refs
from ..subjects import service as subjects
from ..subjects.identifiers import EXTERNAL_REF, identifier_hash
from ..subjects.models import Identifier, Subject, Suppression
from . import agents, service
from .export import remove_request_files
from .models import COMPLETED, PROCESSING, RightsRequest


def export_dir() -> Path:
    return private_folder(current_app.config["PREFS"].export_dir)


def write_export_file(*, request_id: int) -> str | None:
    """Write the access export (reads only; may take a while). Returns the file
    name, or None when the request no longer needs one."""
    from .export import write_export

    request = db.session.get(RightsRequest, request_id)
    if request is None or request.status != PROCESSING or request.type != "access":
        return None
    path = export_dir() / f"{request.reference}.zip"
    write_export(request, path)
    return path.name


def complete_export(*, request_id: int, written: str | None) -> None:
    """Record the export and mail a download link, valid seven days."""
    request = db.session.get(RightsRequest, request_id, with_for_update=True)
    if request is None or request.status != PROCESSING or written is None:
        return
    request.export_file = written
    request.export_expires_at = utcnow() + tokens.PURPOSES["download"].max_age
    service.transition(request, COMPLETED, actor="system")
    service.tell_requester(
        request, "export_ready", download_url=links.download_url(request.id), expires_at=request.export_expires_at.strftime("%-d %B %Y")
    )


def export_path(request: RightsRequest) -> Path | None:
    """The export file while it may still be downloaded."""
    if not request.export_file or not request.export_expires_at or request.export_expires_at < utcnow():
        return None
    path = export_dir() / request.export_file
    return path if path.exists() else None


def purge_expired_exports(now: datetime | None = None) -> int:
    now = now or utcnow()
    expired = db.session.scalars(
        sa.select(RightsRequest).where(RightsRequest.export_file.is_not(None), RightsRequest.export_expires_at < now)
    ).all()
    for request in expired:
        assert request.export_file is not None  # chosen for having one
        (export_dir() / request.export_file).unlink(missing_ok=True)
        request.export_file = None
        audit.record("request.export_deleted", actor="system", target_type="rights_request", target_id=request.id)
    # Partial files of exports a killed worker never finished hold the person's data.
    from .export import references_being_written, remove_leftover_partials

    live = references_being_written(job_kind=JobKind.RIGHTS_EXPORT, now=now)
    remove_leftover_partials(export_dir(), live=live, now=now)
    return len(expired)


def run_erasure(*, request_id: int) -> None:
    """Remove the person's personal data in one transaction, keeping a keyed-hash
    suppression for every identifier so they are never contacted or re-added."""
    request = db.session.get(RightsRequest, request_id, with_for_update=True)
    if request is None or request.status != PROCESSING:
        return
    now = utcnow()
    subject = db.session.get(Subject, request.subject_id) if request.subject_id else None
    # The address the requester wrote from is theirs to erase, unless it is
    # someone else's (staff may answer a named person at another address).
    holder = db.session.scalar(sa.select(Identifier.subject_id).where(Identifier.value_hash == request.email_hash))
    hashes = {request.email_hash: "email"} if holder is None or holder == request.subject_id else {}
    if subject is not None:
        hashes.update({i.value_hash: i.kind for i in subject.identifiers})
        if subject.external_ref:  # kept as a hash only, so a CRM re-sync is recognised
            hashes[identifier_hash(EXTERNAL_REF, subject.external_ref)] = EXTERNAL_REF
        subject_id = subject.id
        db.session.execute(sa.delete(Identifier).where(Identifier.subject_id == subject_id))
        db.session.expire(subject, ["identifiers"])
        subject.name = None
        subject.external_ref = None
        subject.erased_at = now
        db.session.execute(
            sa.update(ConsentEvent)
            .where(ConsentEvent.subject_id == subject_id)
            # The salt goes too; the commitment stays, so the log still verifies (ledger/leaves.py).
            .values(evidence_ip=None, evidence_user_agent=None, evidence_note=None, evidence_salt=None)
        )
        orders.scrub_orders(subject_id=subject_id)
        enquiries.forget(subject_id=subject_id)
        partners.tell_partners(subject_id=subject_id, what="erasure", request_reference=request.reference)
    # Mail about this person: by their subject, or to the address they wrote from.
    their_mail = Notice.recipient == request.email
    if subject is not None:
        their_mail = sa.or_(their_mail, Notice.subject_id == subject.id)
    db.session.execute(sa.update(Notice).where(their_mail, Notice.status == PENDING).values(status="failed"))
    # A file:// outbox keeps a copy of every mail it "sent" them.
    email_channel.forget(
        list(db.session.scalars(sa.select(Notice.message_id).where(their_mail))), mail_url=current_app.config["PREFS"].mail_url
    )
    db.session.execute(sa.update(Notice).where(their_mail).values(recipient=None, context={}))
    for value_hash, kind in hashes.items():
        existing = db.session.get(Suppression, value_hash)
        if existing is None:
            db.session.add(Suppression(value_hash=value_hash, kind=kind, reason=refs.ERASURE, created_by="erasure", created_at=now))
        else:
            existing.reason = refs.ERASURE
    service.transition(request, COMPLETED, actor="system", identifiers=len(hashes))
    # The confirmation is the last mail to this address; it forgets it once sent.
    assert request.email is not None  # every request keeps its address until its own erasure ends
    notices.queue(
        kind="erasure_done",
        recipient=request.email,
        template="erasure_done",
        context={"reference": request.reference},
        idempotency_key=f"erasure_done:{request.reference}",
        forget_after_send=True,
    )
    agents.tell_agent(request_id=request.id, reference=request.reference, type=request.type, kind="erasure_done")
    their_requests = RightsRequest.email_hash == request.email_hash
    if subject is not None:
        their_requests = sa.or_(their_requests, RightsRequest.subject_id == subject.id)
    erased_requests = []
    for earlier in db.session.scalars(sa.select(RightsRequest).where(their_requests)):
        # Copies of what we just erased, finished or left half-written by a dead worker.
        remove_request_files(export_dir(), earlier.reference)
        earlier.export_file = earlier.export_expires_at = None
        erased_requests.append(earlier.id)
    agents.erase(request_ids=erased_requests)  # an agent's permission names the person
    db.session.execute(sa.update(RightsRequest).where(their_requests).values(email=None, changes=None, explanation=None))


def run_correction(*, request_id: int) -> None:
    """Apply approved changes; consent follows the person, partners are told."""
    request = db.session.get(RightsRequest, request_id, with_for_update=True)
    if request is None or request.status != PROCESSING:
        return
    subject = db.session.get(Subject, request.subject_id) if request.subject_id else None
    if subject is None:
        raise Conflict(f"Request {request.reference} names nobody we hold; reject it instead.")
    subjects.update(subject, values=dict(request.changes or {}), actor=f"request:{request.reference}")
    told = partners.tell_partners(subject_id=subject.id, what="correction", request_reference=request.reference)
    service.transition(request, COMPLETED, actor="system", fields=sorted(request.changes or {}))
    service.tell_requester(request, "correction_done", fields=sorted(request.changes or {}), partners_told=told)
