"""What a consent event is before it is recorded: its fields checked against
the rules, with a message per bad field, singly or by the ten thousand."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from .. import channels
from ..clock import utcnow
from ..db.backend import chunks
from ..errors import Invalid
from ..extensions import db
from ..redact import truncate_ip
from ..subjects.models import Subject
from ..subjects.refs import SUBJECT_ID, SubjectRef
from .policies import policy_version_names
from .rules import STATUSES

# Sources another system may claim through the API or an import.
API_SOURCES = (
    "api",
    "import",
    "signup",
    "web_form",
    "checkout",
    "crm",
    "phone_call",
    "paper_form",
    "in_person",
    "email_reply",
)
# Every other source (one_click, unsubscribe_page, preference_center, gpc) is
# recorded only by this service, from the person's own signed-link actions.
SELF = "subject"  # recorded_by for what the person did through a signed link

BATCH_LIMIT = 10_000
MAX_CLOCK_SKEW = timedelta(minutes=5)
USER_AGENT_LIMIT = 512
NOTE_LIMIT = 2000


@dataclass(frozen=True)
class Evidence:
    ip: str | None = None
    user_agent: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class EventInput:
    channel: str
    purpose: str
    status: str
    source: str
    occurred_at: datetime
    policy_version: str | None
    evidence: Evidence


def channel_purpose_errors(channel: object, purpose: object) -> dict[str, list[str]]:
    spec = channels.CHANNELS.get(channel) if isinstance(channel, str) else None
    if spec is None:
        return {"channel": [f"unknown channel {channel!r}; valid channels: {', '.join(channels.CHANNELS)}"]}
    if not isinstance(purpose, str) or spec.purpose(purpose) is None:
        return {"purpose": [f"unknown purpose {purpose!r} for channel {channel}; valid purposes: {', '.join(spec.purpose_names)}"]}
    return {}


def require_channel_purpose(channel: str, purpose: str) -> channels.Purpose:
    errors = channel_purpose_errors(channel, purpose)
    if errors:
        raise Invalid("Unknown channel or purpose.", errors=errors)
    found = channels.CHANNELS[channel].purpose(purpose)
    assert found is not None
    return found


def build_event(
    *,
    channel: object,
    purpose: object,
    status: object,
    source: object,
    occurred_at: object = None,
    policy_version: str | None = None,
    evidence: Mapping[str, Any] | None = None,
    allowed_sources: Collection[str] = API_SOURCES,
    known_policies: Collection[str] | None = None,
    now: datetime | None = None,
) -> EventInput:
    """Check one event's fields against the rules; Invalid maps each bad field to what to fix."""
    now = now or utcnow()
    errors = channel_purpose_errors(channel, purpose)
    if status not in STATUSES:
        errors["status"] = [f"must be one of: {', '.join(STATUSES)}"]
    if source not in allowed_sources:
        errors["source"] = [f"unknown or reserved source {source!r}; valid sources: {', '.join(allowed_sources)}"]
    if occurred_at is None:
        occurred_at = now
    elif not isinstance(occurred_at, datetime):
        errors["occurred_at"] = ["not an ISO 8601 date and time, e.g. 2026-01-31T09:30:00Z"]
    elif occurred_at.tzinfo is None:
        errors["occurred_at"] = ["must include a time zone, e.g. 2026-01-31T09:30:00Z"]
    elif occurred_at > now + MAX_CLOCK_SKEW:
        errors["occurred_at"] = ["is in the future"]
    else:
        occurred_at = occurred_at.astimezone(UTC)
    if policy_version is not None:
        known = known_policies if known_policies is not None else policy_version_names()
        if policy_version not in known:
            errors["policy_version"] = [f"unknown policy version {policy_version!r}; known: {', '.join(sorted(known)) or 'none yet'}"]
    evidence = evidence or {}
    ip = evidence.get("ip")
    if ip:
        try:
            ip = truncate_ip(ip)
        except ValueError:
            errors["evidence.ip"] = ["not an IPv4 or IPv6 address"]
    note = evidence.get("note")
    if note is not None and len(note) > NOTE_LIMIT:
        errors["evidence.note"] = [f"longer than {NOTE_LIMIT} characters"]
    if errors:
        raise Invalid("The consent event is not valid.", errors=errors)
    assert isinstance(channel, str) and isinstance(purpose, str) and isinstance(status, str) and isinstance(source, str)
    assert isinstance(occurred_at, datetime)
    user_agent = evidence.get("user_agent")
    return EventInput(
        channel=channel,
        purpose=purpose,
        status=status,
        source=source,
        occurred_at=occurred_at,
        policy_version=policy_version,
        evidence=Evidence(ip=ip or None, user_agent=user_agent[:USER_AGENT_LIMIT] if user_agent else None, note=note),
    )


def own_event(channel: str, purpose: str, status: str, source: str, evidence: Evidence) -> EventInput:
    """An event the person made themselves, through a signed link, now."""
    return EventInput(channel, purpose, status, source, utcnow(), None, evidence)


def evidence_from(*, ip: str | None, user_agent: str | None, note: str | None = None) -> Evidence:
    """Evidence of a web action: the IP truncated (or dropped if unreadable)."""
    try:
        ip = truncate_ip(ip) if ip else None
    except ValueError:
        ip = None
    return Evidence(ip=ip, user_agent=(user_agent or None) and user_agent[:USER_AGENT_LIMIT], note=note)


def validate_batch(
    items: Sequence[Mapping[str, Any]], *, allowed_sources: Collection[str] = API_SOURCES, known_subjects: bool = False
) -> tuple[list[SubjectRef], list[EventInput]]:
    """Check every item without writing: (who each names, events), or Invalid
    listing the bad items by index. With `known_subjects`, a subject_id must
    also name someone we hold."""
    if len(items) > BATCH_LIMIT:
        raise Invalid(f"At most {BATCH_LIMIT} events per batch.", errors={"events": [f"more than {BATCH_LIMIT} items"]})
    now = utcnow()
    known_policies = policy_version_names()
    errors: dict[str, dict[str, list[str]]] = {}
    events: list[EventInput] = []
    refs: list[SubjectRef | None] = []
    for index, item in enumerate(items):
        item_errors: dict[str, list[str]] = {}
        try:
            refs.append(SubjectRef.one_of(item))
        except Invalid as exc:
            refs.append(None)
            item_errors.update(exc.errors)
        try:
            events.append(
                build_event(
                    channel=item.get("channel"),
                    purpose=item.get("purpose"),
                    status=item.get("status"),
                    source=item.get("source") or "import",
                    occurred_at=item.get("occurred_at"),
                    policy_version=item.get("policy_version"),
                    evidence=item.get("evidence"),
                    allowed_sources=allowed_sources,
                    known_policies=known_policies,
                    now=now,
                )
            )
        except Invalid as exc:
            item_errors.update(exc.errors)
        if item_errors:
            errors[str(index)] = item_errors
    if known_subjects:
        named = sorted({ref.subject_id for ref in refs if ref is not None and ref.key == SUBJECT_ID})
        held: set[Any] = set()
        for chunk in chunks(named):
            held.update(db.session.scalars(sa.select(Subject.id).where(Subject.id.in_(chunk))))
        for index, ref in enumerate(refs):
            if ref is not None and ref.key == SUBJECT_ID and ref.subject_id not in held:
                errors.setdefault(str(index), {})[SUBJECT_ID] = ["no subject with that id"]
    if errors:
        raise Invalid(f"{len(errors)} of {len(items)} events are not valid; nothing was recorded.", errors=errors)
    return [ref for ref in refs if ref is not None], events
