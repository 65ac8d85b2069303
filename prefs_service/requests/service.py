"""Rights requests: intake, verification, deadlines, staff decisions and the
work itself (export, erasure, correction), each step in the audit trail.

    awaiting_verification → verified → (awaiting_review →) processing → completed
    … or rejected (with a reason the requester is told), expired (never verified
    within 14 days) or failed (visible to staff, who can retry).
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from .. import audit, channels, links, outbox, references, tokens
from ..access import service as access
from ..channels import email as email_channel
from ..consent.models import ConsentEvent, Suppression
from ..errors import Conflict, Erased, Invalid, NotFound
from ..extensions import db, utcnow
from ..notices import service as notices
from ..notices.models import PENDING, Notice
from ..orders import service as orders
from ..partners import service as partners
from ..private_files import private_folder
from ..subjects import service as subjects
from ..subjects.models import Identifier, Subject
from .export import remove_request_files
from .models import (
    AWAITING_REVIEW,
    AWAITING_VERIFICATION,
    COMPLETED,
    CORRECTABLE_FIELDS,
    EXPIRED,
    FAILED,
    OPEN,
    PROCESSING,
    REJECTED,
    TYPES,
    VERIFIED,
    RightsRequest,
)

VERIFY_WITHIN = timedelta(days=14)
REMIND_BEFORE = timedelta(days=7)
JOB_FOR = {"access": "requests.export", "erasure": "requests.erase", "correction": "requests.correct"}
REASON_LIMIT = 2000


def add_months(moment: datetime, months: int) -> datetime:
    """The same day `months` later, or the last day of that month when it has no such day."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def _transition(request: RightsRequest, status: str, *, actor: str, **details) -> None:
    previous = request.status
    request.status = status
    if status in (COMPLETED, REJECTED, EXPIRED):
        request.finished_at = utcnow()
    audit.record(
        f"request.{status}",
        actor=actor,
        target_type="rights_request",
        target_id=request.id,
        details={"from": previous, **details},
    )


def _tell_requester(request: RightsRequest, kind: str, **context) -> None:
    """Each kind of mail goes once per request, however often a job reruns."""
    if not request.email:
        return
    notices.queue(
        kind=kind,
        recipient=request.email,
        template=kind,
        context={"reference": request.reference, "type": request.type, **context},
        idempotency_key=f"{kind}:{request.reference}",
        subject_id=request.subject_id,
    )


# --- intake -----------------------------------------------------------------------------


def validate_changes(changes) -> dict:
    """A correction's proposed values, normalised; Invalid names what to fix."""
    if not isinstance(changes, dict) or not changes:
        raise Invalid("Say what to correct.", errors={"changes": [f"give new values for some of: {', '.join(CORRECTABLE_FIELDS)}"]})
    unknown = sorted(set(changes) - set(CORRECTABLE_FIELDS))
    if unknown:
        raise Invalid("Unknown fields.", errors={"changes": [f"cannot correct {', '.join(unknown)}; correctable: {', '.join(CORRECTABLE_FIELDS)}"]})
    clean = {}
    name = changes.get("name")
    if "name" in changes:
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 255:
            raise Invalid("The name is not valid.", errors={"changes.name": ["give 1 to 255 characters"]})
        clean["name"] = name.strip()
    identifiers = {k: v for k, v in changes.items() if k != "name"}
    for field, value in identifiers.items():
        if not isinstance(value, str) or not value.strip():
            raise Invalid("A value is missing.", errors={f"changes.{field}": ["give the new value"]})
    try:
        clean.update(subjects.normalize_fields(identifiers))
    except Invalid as exc:
        raise Invalid("Some new values are not valid.", errors={f"changes.{k}": v for k, v in exc.errors.items()}) from None
    return clean


def submit(
    *,
    type: str,
    email: str | None = None,
    subject_id=None,
    changes: dict | None = None,
    explanation: str | None = None,
    verified: bool = False,
    actor: str,
) -> RightsRequest:
    """Take a request. Unless staff already checked the requester's identity
    (`verified`), a mail with a verification link goes to the address; it goes
    whether or not we know the address, so the answer reveals nothing."""
    if type not in TYPES:
        raise Invalid("Unknown request type.", errors={"type": [f"must be one of: {', '.join(TYPES)}"]})
    if explanation is not None and len(explanation) > REASON_LIMIT:
        raise Invalid("The explanation is too long.", errors={"explanation": [f"at most {REASON_LIMIT} characters"]})
    subject = None
    if subject_id is not None:
        subject = subjects.get(subject_id)
        if type == "correction" and subject.erased_at is not None:
            raise Erased("We erased this person's data at their request, so there is nothing to correct.", errors={"subject_id": ["names a person erased at their request"]})
        held = subject.identifier("email")
        if email is None and held is None:
            raise Invalid("We hold no email address for this person.", errors={"email": ["give an address to answer them at"]})
        email = email or held.value
    if not email:
        raise Invalid("Give an email address.", errors={"email": ["required"]})
    try:
        canonical = channels.normalize("email", email)
    except channels.InvalidIdentifier as exc:
        raise Invalid("The email address is not valid.", errors={"email": [str(exc)]}) from None
    if subject is None:
        subject = subjects.find(kind="email", canonical=canonical)
    clean_changes = validate_changes(changes) if type == "correction" else None
    # Nobody is given the address of a person we erased, nor is it kept here.
    subjects.refuse_erased([(field, value) for field, value in (clean_changes or {}).items() if field != "name"])
    if type != "correction" and changes:
        raise Invalid("Only a correction carries changes.", errors={"changes": ["only for type correction"]})

    request = RightsRequest(
        reference=references.new("PR"),
        type=type,
        status=AWAITING_VERIFICATION,
        subject_id=subject.id if subject else None,
        email=canonical,
        email_hash=subjects.identifier_hash("email", canonical),
        changes=clean_changes,
        explanation=explanation,
        created_by=actor,
    )
    db.session.add(request)
    db.session.flush()
    audit.record("request.submitted", actor=actor, target_type="rights_request", target_id=request.id, details={"type": type})
    if verified:
        _tell_requester(request, "request_received", verify_url=None, valid_hours=None)
        _verified(request, actor=actor)
    else:
        _tell_requester(
            request,
            "request_received",
            verify_url=links.verify_url(request.id),
            valid_hours=int(tokens.PURPOSES["verify"].max_age.total_seconds() // 3600),
        )
    return request


def _verified(request: RightsRequest, *, actor: str) -> None:
    now = utcnow()
    request.verified_at = now
    request.due_at = add_months(now, 1)
    _transition(request, VERIFIED, actor=actor, due_at=request.due_at.isoformat())
    if request.type == "correction":
        _transition(request, AWAITING_REVIEW, actor=actor)
    else:
        _start(request, actor=actor)


def _start(request: RightsRequest, *, actor: str) -> None:
    _transition(request, PROCESSING, actor=actor)
    outbox.defer(JOB_FOR[request.type], {"request_id": request.id})


def request_from_token(purpose: str, token: str) -> RightsRequest:
    """The request a verify or download link names, or NotFound."""
    request = tokens.row_for(purpose, token, RightsRequest, "r")
    if request is None:
        raise NotFound("This link is not valid or has expired.")
    return request


def confirm(*, token: str) -> RightsRequest:
    """The requester confirmed through the mailed link (a POST, so scanners can't)."""
    request = request_from_token("verify", token)
    db.session.refresh(request, with_for_update=True)  # two clicks at once: one verification
    if request.status == AWAITING_VERIFICATION:
        _verified(request, actor="requester")
    elif request.status == EXPIRED:
        raise Conflict("This request expired before it was confirmed. Please make it again.")
    return request


# --- staff decisions --------------------------------------------------------------------


def get(request_id) -> RightsRequest:
    request = db.session.get(RightsRequest, request_id) if str(request_id).isdigit() else None
    if request is None:
        raise NotFound("No request with that id.")
    return request


def list_requests(*, statuses: list[str] | None = None, limit: int = 200) -> list[RightsRequest]:
    stmt = sa.select(RightsRequest)
    if statuses:
        stmt = stmt.where(RightsRequest.status.in_(statuses))
    # Most urgent first; unverified ones (no due date yet) after them, newest first.
    stmt = stmt.order_by(RightsRequest.due_at.is_(None), RightsRequest.due_at, RightsRequest.created_at.desc()).limit(limit)
    return list(db.session.scalars(stmt))


def approve(*, request_id, actor: str) -> RightsRequest:
    request = get(request_id)
    if request.type != "correction" or request.status != AWAITING_REVIEW:
        raise Conflict(f"Only a correction awaiting review can be approved; this one is {request.status}.")
    if request.subject_id is None:
        raise Conflict("We hold no data for this requester, so there is nothing to correct; reject it with that reason.")
    subject = db.session.get(Subject, request.subject_id)
    if subject.erased_at is not None:
        raise Erased("We erased this person's data at their request, so there is nothing to correct; reject it with that reason.")
    subjects.refuse_erased([(field, value) for field, value in (request.changes or {}).items() if field != "name"])
    _start(request, actor=actor)
    return request


def reject(*, request_id, reason: str, actor: str) -> RightsRequest:
    request = get(request_id)
    reason = (reason or "").strip()
    if not reason or len(reason) > REASON_LIMIT:
        raise Invalid("Give the reason the requester will be told.", errors={"reason": [f"1 to {REASON_LIMIT} characters"]})
    if request.status not in (AWAITING_VERIFICATION, VERIFIED, AWAITING_REVIEW, FAILED):
        raise Conflict(f"A request that is {request.status} cannot be rejected.")
    request.rejection_reason = reason
    _transition(request, REJECTED, actor=actor)
    _tell_requester(request, "request_rejected", reason=reason)
    return request


def extend(*, request_id, months: int, reason: str, actor: str) -> RightsRequest:
    request = get(request_id)
    reason = (reason or "").strip()
    errors = {}
    if months not in (1, 2):
        errors["months"] = ["extend by 1 or 2 months"]
    if not reason or len(reason) > REASON_LIMIT:
        errors["reason"] = [f"give the reason the requester will be told (1 to {REASON_LIMIT} characters)"]
    if errors:
        raise Invalid("The extension is not valid.", errors=errors)
    if request.status not in OPEN or request.due_at is None:
        raise Conflict(f"Only an open, verified request can be extended; this one is {request.status}.")
    if request.extension_months:
        raise Conflict("This request was extended already; the law allows it once.")
    request.extension_months = months
    request.extension_reason = reason
    request.due_at = add_months(request.due_at, months)
    request.reminder_sent_at = request.overdue_alerted_at = None
    audit.record(
        "request.extended",
        actor=actor,
        target_type="rights_request",
        target_id=request.id,
        details={"months": months, "due_at": request.due_at.isoformat()},
    )
    _tell_requester(request, "request_extended", reason=reason, due_at=request.due_at.strftime("%-d %B %Y"))
    return request


def retry(*, request_id, actor: str) -> RightsRequest:
    request = get(request_id)
    if request.status != FAILED:
        raise Conflict(f"Only a failed request can be retried; this one is {request.status}.")
    _start(request, actor=actor)
    return request


def mark_failed(*, request_id: int) -> None:
    """The job gave up: staff see it and can retry."""
    request = db.session.get(RightsRequest, request_id)
    if request is not None and request.status == PROCESSING:
        _transition(request, FAILED, actor="system")


def timeline(request: RightsRequest):
    return audit.trail("rights_request", request.id)


# --- periodic duties -------------------------------------------------------------------


def expire_unverified(now: datetime | None = None) -> int:
    now = now or utcnow()
    stale = db.session.scalars(
        sa.select(RightsRequest).where(RightsRequest.status == AWAITING_VERIFICATION, RightsRequest.created_at < now - VERIFY_WITHIN)
    ).all()
    for request in stale:
        _transition(request, EXPIRED, actor="system")
    return len(stale)


def alert_deadlines(now: datetime | None = None) -> int:
    """Remind staff seven days before a due date, and alert them once it has passed."""
    now = now or utcnow()
    staff = access.active_staff_emails()
    sent = 0
    open_requests = sa.select(RightsRequest).where(RightsRequest.status.in_(OPEN), RightsRequest.due_at.is_not(None))
    for request in db.session.scalars(open_requests.where(RightsRequest.overdue_alerted_at.is_(None), RightsRequest.due_at < now)):
        _tell_staff(staff, request, "staff_overdue")
        request.overdue_alerted_at = request.reminder_sent_at = now
        sent += 1
    for request in db.session.scalars(
        open_requests.where(RightsRequest.reminder_sent_at.is_(None), RightsRequest.due_at < now + REMIND_BEFORE)
    ):
        _tell_staff(staff, request, "staff_reminder")
        request.reminder_sent_at = now
        sent += 1
    return sent


def _tell_staff(staff: list[str], request: RightsRequest, kind: str) -> None:
    for address in staff:
        notices.queue(
            kind=kind,
            recipient=address,
            template=kind,
            context={
                "reference": request.reference,
                "type": request.type,
                "status": request.status,
                "due_at": request.due_at.strftime("%-d %B %Y"),
                "url": f"{current_app.config['PREFS'].base_url}/staff/requests/{request.id}",
            },
            idempotency_key=f"{kind}:{request.reference}:{request.due_at.date().isoformat()}:{address}",
        )


# --- the work -------------------------------------------------------------------------------


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
    _transition(request, COMPLETED, actor="system")
    _tell_requester(
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
        (export_dir() / request.export_file).unlink(missing_ok=True)
        request.export_file = None
        audit.record("request.export_deleted", actor="system", target_type="rights_request", target_id=request.id)
    # Partial files of exports a killed worker never finished hold the person's data.
    from .export import references_being_written, remove_leftover_partials

    live = references_being_written(job_kind=JOB_FOR["access"], now=now)
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
            hashes[subjects.key_hash("external_ref", subject.external_ref)] = subjects.EXTERNAL_REF_KIND
        subject_id = subject.id
        db.session.execute(sa.delete(Identifier).where(Identifier.subject_id == subject_id))
        db.session.expire(subject, ["identifiers"])
        subject.name = None
        subject.external_ref = None
        subject.erased_at = now
        db.session.execute(
            sa.update(ConsentEvent)
            .where(ConsentEvent.subject_id == subject_id)
            .values(evidence_ip=None, evidence_user_agent=None, evidence_note=None)
        )
        orders.scrub_orders(subject_id=subject_id)
        partners.tell_partners(subject_id=subject_id, what="erasure", request_reference=request.reference)
    # Mail about this person: by their subject, or to the address they wrote from.
    their_mail = Notice.recipient == request.email
    if subject is not None:
        their_mail = sa.or_(their_mail, Notice.subject_id == subject.id)
    db.session.execute(sa.update(Notice).where(their_mail, Notice.status == PENDING).values(status="failed"))
    # A file:// outbox keeps a copy of every mail it "sent" them.
    email_channel.forget(list(db.session.scalars(sa.select(Notice.message_id).where(their_mail))), mail_url=current_app.config["PREFS"].mail_url)
    db.session.execute(sa.update(Notice).where(their_mail).values(recipient=None, context={}))
    for value_hash, kind in hashes.items():
        existing = db.session.get(Suppression, value_hash)
        if existing is None:
            db.session.add(Suppression(value_hash=value_hash, kind=kind, reason=subjects.ERASURE, created_by="erasure", created_at=now))
        else:
            existing.reason = subjects.ERASURE
    _transition(request, COMPLETED, actor="system", identifiers=len(hashes))
    # The confirmation is the last mail to this address; it forgets it once sent.
    notices.queue(
        kind="erasure_done",
        recipient=request.email,
        template="erasure_done",
        context={"reference": request.reference},
        idempotency_key=f"erasure_done:{request.reference}",
        forget_after_send=True,
    )
    their_requests = RightsRequest.email_hash == request.email_hash
    if subject is not None:
        their_requests = sa.or_(their_requests, RightsRequest.subject_id == subject.id)
    for earlier in db.session.scalars(sa.select(RightsRequest).where(their_requests)):
        # Copies of what we just erased, finished or left half-written by a dead worker.
        remove_request_files(export_dir(), earlier.reference)
        earlier.export_file = earlier.export_expires_at = None
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
    partners.tell_partners(subject_id=subject.id, what="correction", request_reference=request.reference)
    _transition(request, COMPLETED, actor="system", fields=sorted(request.changes or {}))
    _tell_requester(request, "correction_done", fields=sorted(request.changes or {}))


def current_values(request: RightsRequest) -> dict[str, str | None]:
    """For a correction: what we hold now for each field it would change."""
    if request.subject_id is None or not request.changes:
        return {}
    subject = db.session.get(Subject, request.subject_id)
    held = {"name": subject.name, **subjects.identifiers_of(subject)}
    return {field: held.get(field) for field in request.changes}
