"""Rights requests: intake, verification, deadlines and staff decisions, each
step in the audit trail. The work itself (export, erasure, correction) is in work.py.

    awaiting_verification → verified → (awaiting_review →) processing → completed
    … or rejected (with a reason the requester is told), expired (never verified
    within 14 days) or failed (visible to staff, who can retry).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from .. import audit, channels, job_queue, links, outbox, references, tokens
from ..audit import AuditEvent
from ..clock import utcnow
from ..errors import Conflict, Erased, Invalid, NotFound
from ..extensions import db
from ..job_kinds import JobKind
from ..notices import service as notices
from ..outbox import FAILED as JOB_FAILED
from ..outbox import Job
from ..subjects import jurisdictions, refs
from ..subjects import service as subjects
from ..subjects.identifiers import identifier_hash, normalize_fields
from ..subjects.models import Subject
from ..subjects.refs import SubjectRef
from . import agents, clocks
from .agents import AgentInput
from .calendar import add_months  # noqa: F401  (re-exported: the month arithmetic's old home)
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

JOB_FOR = {
    "access": JobKind.RIGHTS_EXPORT,
    "erasure": JobKind.RIGHTS_ERASE,
    "correction": JobKind.RIGHTS_CORRECT,
    "opt_out_sale_sharing": JobKind.RIGHTS_OPT_OUT,
    "limit_sensitive": JobKind.RIGHTS_OPT_OUT,
}
REASON_LIMIT = 2000


def transition(request: RightsRequest, status: str, *, actor: str, **details: object) -> None:
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


def tell_requester(request: RightsRequest, kind: str, **context: object) -> None:
    """Each kind of mail goes once per request, however often a job reruns. An
    agent who made the request hears of its status (agents.AGENT_STATUS)."""
    agents.tell_agent(request_id=request.id, reference=request.reference, type=request.type, kind=kind)
    if not request.email:
        return
    notices.queue(
        kind=kind,
        recipient=request.email,
        template=kind,
        context={"reference": request.reference, "type": request.type, "law": clocks.law(request.jurisdiction), **context},
        idempotency_key=f"{kind}:{request.reference}",
        subject_id=request.subject_id,
    )


# --- intake -----------------------------------------------------------------------------


def _identifier_refs(changes: dict[str, Any] | None) -> list[SubjectRef]:
    """The identifiers a correction would give the person, as refs."""
    return [SubjectRef(field, value) for field, value in (changes or {}).items() if field != "name"]


def validate_changes(changes: object) -> dict[str, Any]:
    """A correction's proposed values, normalised; Invalid names what to fix."""
    if not isinstance(changes, dict) or not changes:
        raise Invalid("Say what to correct.", errors={"changes": [f"give new values for some of: {', '.join(CORRECTABLE_FIELDS)}"]})
    unknown = sorted(set(changes) - set(CORRECTABLE_FIELDS))
    if unknown:
        raise Invalid(
            "Unknown fields.", errors={"changes": [f"cannot correct {', '.join(unknown)}; correctable: {', '.join(CORRECTABLE_FIELDS)}"]}
        )
    clean: dict[str, Any] = {}
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
        clean.update(normalize_fields(identifiers))
    except Invalid as exc:
        raise Invalid("Some new values are not valid.", errors={f"changes.{k}": v for k, v in exc.errors.items()}) from None
    return clean


def submit(
    *,
    type: str,
    email: str | None = None,
    subject_id: object = None,
    changes: dict[str, Any] | None = None,
    explanation: str | None = None,
    verified: bool = False,
    jurisdiction: str | None = None,
    agent: AgentInput | None = None,
    actor: str,
) -> RightsRequest:
    """Take a request. Unless staff already checked the requester's identity
    (`verified`), a mail with a verification link goes to the address; it goes
    whether or not we know the address, so the answer reveals nothing. An
    opt-out of sale/sharing or a limit on sensitive data needs no verification.
    `jurisdiction` sets the person's, once the request is confirmed; the
    request follows its clock (clocks.py). `agent` makes it on the person's
    behalf, with their signed permission: the person at `email` still
    confirms it (see agents.py)."""
    checked_agent = agents.validate(agent) if agent is not None else None
    if type not in TYPES:
        raise Invalid("Unknown request type.", errors={"type": [f"must be one of: {', '.join(TYPES)}"]})
    if jurisdiction is not None and jurisdiction not in jurisdictions.JURISDICTIONS:
        raise Invalid("Unknown jurisdiction.", errors={"jurisdiction": [f"must be one of: {', '.join(jurisdictions.JURISDICTIONS)}"]})
    if explanation is not None and len(explanation) > REASON_LIMIT:
        raise Invalid("The explanation is too long.", errors={"explanation": [f"at most {REASON_LIMIT} characters"]})
    subject = None
    if subject_id is not None:
        subject = subjects.get(subject_id)
        if type == "correction" and subject.erased_at is not None:
            raise Erased(
                "We erased this person's data at their request, so there is nothing to correct.",
                errors={"subject_id": ["names a person erased at their request"]},
            )
        held = subject.identifier("email")
        if email is None:
            if held is None:
                raise Invalid("We hold no email address for this person.", errors={"email": ["give an address to answer them at"]})
            email = held.value
    if not email:
        raise Invalid("Give an email address.", errors={"email": ["required"]})
    try:
        canonical = channels.normalize("email", email)
    except channels.InvalidIdentifier as exc:
        raise Invalid("The email address is not valid.", errors={"email": [str(exc)]}) from None
    if subject is None:
        subject = refs.find(SubjectRef("email", canonical))
    clean_changes = validate_changes(changes) if type == "correction" else None
    # Nobody is given the address of a person we erased, nor is it kept here.
    refs.refuse_erased(_identifier_refs(clean_changes))
    if type != "correction" and changes:
        raise Invalid("Only a correction carries changes.", errors={"changes": ["only for type correction"]})

    request = RightsRequest(
        reference=references.new("PR"),
        type=type,
        status=AWAITING_VERIFICATION,
        subject_id=subject.id if subject else None,
        email=canonical,
        email_hash=identifier_hash("email", canonical),
        changes=clean_changes,
        explanation=explanation,
        jurisdiction=jurisdiction or jurisdictions.of(subject),
        created_by=actor,
        created_at=utcnow(),
    )
    request.acknowledge_by = clocks.acknowledge_by(jurisdiction=request.jurisdiction, type=type, received=request.created_at)
    db.session.add(request)
    db.session.flush()
    audit.record(
        "request.submitted",
        actor=actor,
        target_type="rights_request",
        target_id=request.id,
        details={"type": type, "jurisdiction": request.jurisdiction, **({"by_agent": True} if checked_agent else {})},
    )
    on_behalf = {}
    if checked_agent is not None:
        made = agents.attach(request_id=request.id, reference=request.reference, agent=checked_agent[0], kind=checked_agent[1])
        on_behalf = {"agent_name": made.name, "agent_organisation": made.organisation}
    if type in clocks.NO_VERIFICATION:
        due = clocks.answer_due(jurisdiction=request.jurisdiction, type=type, received=request.created_at, verified=None)
        assert due is not None  # an opt-out's clock runs from receipt
        request.due_at = due
        tell_requester(request, "request_received", verify_url=None, valid_hours=None, due_at=_day(due), **on_behalf)
        _start(request, actor=actor, reason="needs no identity verification", due_at=due.isoformat())
    elif verified:
        tell_requester(request, "request_received", verify_url=None, valid_hours=None, **on_behalf)
        _verified(request, actor=actor)
    else:
        tell_requester(
            request,
            "request_received",
            verify_url=links.verify_url(request.id),
            valid_hours=int(tokens.PURPOSES["verify"].max_age.total_seconds() // 3600),
            **on_behalf,
        )
    return request


def _day(moment: datetime | None) -> str | None:
    return moment.strftime("%-d %B %Y") if moment else None


def take_jurisdiction(request: RightsRequest, subject: Subject | None, *, actor: str) -> None:
    """A request that named a jurisdiction other than the person's sets theirs."""
    if subject is None or subject.erased_at is not None or request.jurisdiction in (None, jurisdictions.of(subject)):
        return
    audit.record(
        "subject.jurisdiction",
        actor=actor,
        target_type="subject",
        target_id=subject.id,
        details={"from": subject.jurisdiction, "to": request.jurisdiction, "request": request.reference},
    )
    subject.jurisdiction = request.jurisdiction


def _verified(request: RightsRequest, *, actor: str) -> None:
    now = utcnow()
    request.verified_at = now
    request.due_at = clocks.answer_due(jurisdiction=request.jurisdiction, type=request.type, received=request.created_at, verified=now)
    assert request.due_at is not None  # a confirmed request always has one
    take_jurisdiction(request, db.session.get(Subject, request.subject_id) if request.subject_id else None, actor=actor)
    transition(request, VERIFIED, actor=actor, due_at=request.due_at.isoformat())
    if request.type == "correction":
        transition(request, AWAITING_REVIEW, actor=actor)
    else:
        _start(request, actor=actor)


def _start(request: RightsRequest, *, actor: str, **details: object) -> None:
    transition(request, PROCESSING, actor=actor, **details)
    # The reference lets staff see whose work a failing job is (never personal data).
    outbox.defer(JOB_FOR[request.type], {"request_id": request.id, "reference": request.reference})


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


def record_power_of_attorney(*, request_id: object, actor: str) -> RightsRequest:
    """Staff checked the agent's power of attorney: a request still waiting
    for the consumer's confirmation proceeds without it."""
    request = get(request_id)
    agent = agents.of(request.id)
    if agent is None:
        raise Conflict("This request was not made by an agent.")
    if request.status != AWAITING_VERIFICATION:
        raise Conflict(f"Only a request waiting for confirmation can proceed on a power of attorney; this one is {request.status}.")
    agents.record_power_of_attorney(agent=agent, actor=actor)
    _verified(request, actor=actor)
    return request


def get(request_id: object) -> RightsRequest:
    request = db.session.get(RightsRequest, request_id) if str(request_id).isdigit() else None
    if request is None:
        raise NotFound("No request with that id.")
    return request


def approve(*, request_id: object, actor: str) -> RightsRequest:
    request = get(request_id)
    if request.type != "correction" or request.status != AWAITING_REVIEW:
        raise Conflict(f"Only a correction awaiting review can be approved; this one is {request.status}.")
    if request.subject_id is None:
        raise Conflict("We hold no data for this requester, so there is nothing to correct; reject it with that reason.")
    subject = db.session.get_one(Subject, request.subject_id)
    if subject.erased_at is not None:
        raise Erased("We erased this person's data at their request, so there is nothing to correct; reject it with that reason.")
    refs.refuse_erased(_identifier_refs(request.changes))
    _start(request, actor=actor)
    return request


def reject(*, request_id: object, reason: str, actor: str) -> RightsRequest:
    request = get(request_id)
    reason = (reason or "").strip()
    if not reason or len(reason) > REASON_LIMIT:
        raise Invalid("Give the reason the requester will be told.", errors={"reason": [f"1 to {REASON_LIMIT} characters"]})
    if request.status not in (AWAITING_VERIFICATION, VERIFIED, AWAITING_REVIEW, FAILED):
        raise Conflict(f"A request that is {request.status} cannot be rejected.")
    request.rejection_reason = reason
    transition(request, REJECTED, actor=actor)
    tell_requester(request, "request_rejected", reason=reason)
    return request


def extend(*, request_id: object, months: int | None = None, reason: str, actor: str) -> RightsRequest:
    """Extend once, as the request's law allows (clocks.check_extension): GDPR by
    1 or 2 months, CCPA by 45 days (leave out months); the notice goes now."""
    request = get(request_id)
    reason = (reason or "").strip()
    if not reason or len(reason) > REASON_LIMIT:
        raise Invalid(
            "The extension is not valid.",
            errors={"reason": [f"give the reason the requester will be told (1 to {REASON_LIMIT} characters)"]},
        )
    if request.status not in OPEN or request.due_at is None:
        raise Conflict(f"Only an open, verified request can be extended; this one is {request.status}.")
    request.extension_months, request.extension_days = clocks.check_extension(
        jurisdiction=request.jurisdiction,
        type=request.type,
        received=request.created_at,
        verified=request.verified_at,
        months=months,
        already_extended=bool(request.extension_months or request.extension_days),
        now=utcnow(),
    )
    request.extension_reason = reason
    request.due_at = clocks.answer_due(
        jurisdiction=request.jurisdiction,
        type=request.type,
        received=request.created_at,
        verified=request.verified_at,
        extension_months=request.extension_months,
        extension_days=request.extension_days,
    )
    assert request.due_at is not None  # it had one before
    request.reminder_sent_at = request.three_day_alert_sent_at = request.overdue_alerted_at = None
    audit.record(
        "request.extended",
        actor=actor,
        target_type="rights_request",
        target_id=request.id,
        details={"months": request.extension_months, "days": request.extension_days, "due_at": request.due_at.isoformat()},
    )
    tell_requester(request, "request_extended", reason=reason, due_at=_day(request.due_at))
    return request


def notice_sent(*, notice: Any) -> None:
    """Hook: CCPA's acknowledgement is the receipt mail; record when it left."""
    if notice.kind != "request_received":
        return  # its context is cleared by now; tell_requester's key names the request
    reference = notice.idempotency_key.removeprefix("request_received:")
    request = db.session.scalar(sa.select(RightsRequest).where(RightsRequest.reference == reference))
    if request is None or request.acknowledge_by is None or request.acknowledged_at is not None:
        return
    request.acknowledged_at = notice.sent_at or utcnow()
    audit.record("request.acknowledged", actor="system", target_type="rights_request", target_id=request.id)


def retry(*, request_id: object, actor: str) -> RightsRequest:
    """Run a failed request's work again: its failed job gets more attempts (so
    staff see one job, not a trail of dead ones), or a new job if it was cancelled."""
    request = get(request_id)
    if request.status != FAILED:
        raise Conflict(f"Only a failed request can be retried; this one is {request.status}.")
    job = job_queue.latest_for_request(request.id)
    if job is not None and job.status == JOB_FAILED:
        job_queue.retry(job_id=job.id, actor=actor)  # job_retried below moves the request on
    else:
        _start(request, actor=actor)
    return request


def mark_failed(*, request_id: int) -> None:
    """The job gave up: staff see it and can retry."""
    request = db.session.get(RightsRequest, request_id)
    if request is not None and request.status == PROCESSING:
        transition(request, FAILED, actor="system", reason="its job failed for good")


def _request_of(job: Job) -> RightsRequest | None:
    request_id = job.payload.get("request_id") if job.kind in job_queue.REQUEST_KINDS else None
    return db.session.get(RightsRequest, request_id, with_for_update=True) if isinstance(request_id, int) else None


def job_retried(*, job: Job, actor: str) -> None:
    """Hook: staff retried the job doing a request's work. A failed request goes
    back to processing; a request closed since (rejected, say) refuses, as its
    job would find nothing to do."""
    request = _request_of(job)
    if request is None or request.status == PROCESSING:
        return
    if request.status != FAILED:
        raise Conflict(f"Request {request.reference} is {request.status.replace('_', ' ')}; its job has nothing left to do.")
    transition(request, PROCESSING, actor=actor, job_id=job.id)


def job_cancelled(*, job: Job, actor: str) -> None:
    """Hook: staff cancelled the job doing a request's work. The request stops
    as failed, saying why, so it stays in the queue: staff retry it (a new
    job) or reject it with the reason the requester is told."""
    request = _request_of(job)
    if request is None:
        return
    if request.status == PROCESSING:
        transition(request, FAILED, actor=actor, reason="its job was cancelled", job_id=job.id)
    else:
        audit.record("request.job_cancelled", actor=actor, target_type="rights_request", target_id=request.id, details={"job_id": job.id})


def timeline(request: RightsRequest) -> list[AuditEvent]:
    return audit.trail("rights_request", request.id)


def current_values(request: RightsRequest) -> dict[str, str | None]:
    """For a correction: what we hold now for each field it would change."""
    if request.subject_id is None or not request.changes:
        return {}
    subject = db.session.get_one(Subject, request.subject_id)
    held = {"name": subject.name, **subjects.identifiers_of(subject)}
    return {field: held.get(field) for field in request.changes}
