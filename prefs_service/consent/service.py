"""The consent ledger and the rules that answer "may we contact this person?".

Rules (in order): an invalid identifier is never contacted; a suppressed one is
never contacted at all; non-marketing purposes (transactional mail, sharing
needed to fulfil an order) need no grant; marketing needs a grant (opt-in).
The newest `occurred_at` wins, and on a tie a withdrawal wins, so a late import
of an old grant can never undo a later withdrawal.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from .. import audit, channels, links, outbox, tokens
from ..errors import Conflict, Invalid, NotFound
from ..extensions import chunks, db, dialect_insert, utcnow
from ..statements import execute_prepared, read_rows
from ..notices import service as notices
from ..redact import truncate_ip
from ..subjects import service as subjects
from ..subjects.models import Identifier, Subject
from .models import (
    GRANTED,
    STATUSES,
    WITHDRAWN,
    ConsentEvent,
    ConsentState,
    PolicyVersion,
    Suppression,
)

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

REASONS = ("granted", "withdrawn", "no_consent", "suppressed", "erased", "transactional", "invalid")
# `erased`: the person asked us to erase their data. Whichever key names them
# (subject id, external ref, any identifier they had), every purpose answers
# this, transactional included, until they come back by their own grant.
# Work a withdrawal sets off, by (channel, purpose): the job kinds live in jobs/.
JOBS_ON_WITHDRAWAL = {("profile", "profile_enrichment"): "orders.clear_profile"}
SUPPRESSION_REASONS = ("bounce", "complaint", "objection", "manual", "erasure")
BATCH_LIMIT = 10_000
MAX_CLOCK_SKEW = timedelta(minutes=5)
USER_AGENT_LIMIT = 512
NOTE_LIMIT = 2000
# Who may be named in a check, and which identifier kind each name is.
CHECK_KEYS = ("email", "phone", "fax", "postal_address", "subject_id", "external_ref")


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


@dataclass(frozen=True)
class CheckResult:
    allowed: bool
    reason: str
    since: datetime | None = None


# --- validation ----------------------------------------------------------------


def channel_purpose_errors(channel, purpose) -> dict[str, list[str]]:
    spec = channels.CHANNELS.get(channel)
    if spec is None:
        return {"channel": [f"unknown channel {channel!r}; valid channels: {', '.join(channels.CHANNELS)}"]}
    if spec.purpose(purpose) is None:
        return {"purpose": [f"unknown purpose {purpose!r} for channel {channel}; valid purposes: {', '.join(spec.purpose_names)}"]}
    return {}


def require_channel_purpose(channel: str, purpose: str) -> channels.Purpose:
    errors = channel_purpose_errors(channel, purpose)
    if errors:
        raise Invalid("Unknown channel or purpose.", errors=errors)
    return channels.CHANNELS[channel].purpose(purpose)


def build_event(
    *,
    channel,
    purpose,
    status,
    source,
    occurred_at: datetime | None = None,
    policy_version: str | None = None,
    evidence: dict | None = None,
    allowed_sources=API_SOURCES,
    known_policies: set[str] | None = None,
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


# --- policy versions -------------------------------------------------------------


def policy_version_names() -> set[str]:
    return set(db.session.scalars(sa.select(PolicyVersion.version)))


def current_policy(at: datetime | None = None) -> PolicyVersion | None:
    return db.session.scalar(
        sa.select(PolicyVersion)
        .where(PolicyVersion.effective_at <= (at or utcnow()))
        .order_by(PolicyVersion.effective_at.desc(), PolicyVersion.id.desc())
        .limit(1)
    )


def list_policies() -> list[PolicyVersion]:
    return list(db.session.scalars(sa.select(PolicyVersion).order_by(PolicyVersion.effective_at.desc())))


def publish_policy(*, version: str, last_updated: date, url: str | None = None, effective_at: datetime | None = None, actor: str) -> PolicyVersion:
    if db.session.scalar(sa.select(PolicyVersion.id).where(PolicyVersion.version == version)):
        raise Conflict(f"Policy version {version!r} already exists.", errors={"version": ["already exists"]})
    policy = PolicyVersion(version=version, last_updated=last_updated, url=url, effective_at=effective_at or utcnow())
    db.session.add(policy)
    db.session.flush()
    audit.record("policy.published", actor=actor, target_type="policy_version", target_id=policy.id, details={"version": version})
    return policy


# --- recording -------------------------------------------------------------------


EVENT_COLUMNS = (
    "subject_id", "channel", "purpose", "status", "source", "occurred_at", "recorded_at",
    "evidence_ip", "evidence_user_agent", "evidence_note", "recorded_by",
)  # fmt: skip


@functools.cache
def _insert_event():
    """INSERT one ledger row, stamping the policy in force at `occurred_at`
    unless the caller named one; built once, bound per call."""
    table = ConsentEvent.__table__
    return (
        sa.insert(table)
        .values({**{name: sa.bindparam(name, type_=table.c[name].type) for name in EVENT_COLUMNS}, "policy_version": _policy_stamp()})
        .returning(*table.c)
    )


def _stamped_event_params(subject_id: uuid.UUID, event: EventInput, recorded_by: str) -> dict:
    """Parameters of a statement that appends `event` with _policy_stamp()."""
    columns = _event_columns(subject_id, event, recorded_by, None)
    del columns["policy_version"]
    return {**columns, "named_policy": event.policy_version, "policy_moment": event.occurred_at}


def _policy_stamp():
    """The policy version the caller named, else the one in force at `policy_moment`."""
    in_force = (
        sa.select(PolicyVersion.version)
        .where(PolicyVersion.effective_at <= sa.bindparam("policy_moment", type_=PolicyVersion.effective_at.type))
        .order_by(PolicyVersion.effective_at.desc(), PolicyVersion.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return sa.func.coalesce(sa.bindparam("named_policy", type_=sa.String), in_force)


def _lock_consent_of(subject_id: uuid.UUID) -> None:
    """Before reading a person's state to decide what to record: two saves of
    the preference center, or a save and a click (whose statement takes the same
    lock), must not both record the same withdrawal. On PostgreSQL the second
    waits here for the first to commit, then reads its outcome (each statement
    sees a new snapshot). SQLite needs no lock: its write transactions already
    run one at a time."""
    if db.engine.dialect.name == "postgresql":
        execute_prepared(_subject_lock(), {"subject_id": subject_id})


@functools.cache
def _subject_lock():
    """The person's row, if we hold them (not erased), locked. NO KEY UPDATE:
    serialises these writers without blocking the foreign-key checks of events
    other callers append for the same person."""
    return (
        sa.select(Subject.id)
        .where(Subject.id == sa.bindparam("subject_id", type_=Subject.id.type), Subject.erased_at.is_(None))
        .with_for_update(key_share=True)
    )


@functools.cache
def _status_query():
    """(subject id, current status) for one subject × channel × purpose; no row:
    no such subject, or one we erased (their links lead nowhere)."""
    state = ConsentState.__table__
    return (
        sa.select(Subject.id, state.c.status)
        .outerjoin(
            state,
            sa.and_(state.c.subject_id == Subject.id, state.c.channel == sa.bindparam("channel"), state.c.purpose == sa.bindparam("purpose")),
        )
        .where(Subject.id == sa.bindparam("subject_id", type_=Subject.id.type), Subject.erased_at.is_(None))
    )


def record(*, subject_id: uuid.UUID, event: EventInput, recorded_by: str) -> tuple[ConsentEvent, bool]:
    """Append one event and update the current state. Returns (event, applied):
    applied is False when a newer event already decides this purpose."""
    values, applied = _append(subject_id=subject_id, event=event, recorded_by=recorded_by)
    return ConsentEvent(**dict(zip(ConsentEvent.__table__.c.keys(), values))), applied  # not in the session: the ledger is append-only


def _append(*, subject_id: uuid.UUID, event: EventInput, recorded_by: str) -> tuple[tuple, bool]:
    """record(), without building the ORM object: (the ledger row's columns, applied)."""
    (values,) = execute_prepared(_insert_event(), _stamped_event_params(subject_id, event, recorded_by))
    return values, bool(_apply_state([(subject_id, event, values[0])]))


def change_if_different(*, subject_id: uuid.UUID, event: EventInput, recorded_by: str) -> bool:
    """Record `event` only if it changes the current state (a repeated unsubscribe
    adds nothing to the ledger). Returns whether it did; NotFound if there is no
    such subject."""
    if db.engine.dialect.name == "postgresql":
        return _change_in_one_statement(subject_id=subject_id, event=event, recorded_by=recorded_by)
    # SQLite runs one write transaction at a time (BEGIN IMMEDIATE), so what is
    # read here still holds when the event is written.
    found = execute_prepared(_status_query(), {"subject_id": subject_id, "channel": event.channel, "purpose": event.purpose})
    if not found:
        raise NotFound("No subject with that id.")
    if found[0][1] == event.status:
        return False
    _, applied = _append(subject_id=subject_id, event=event, recorded_by=recorded_by)
    return applied


def _change_in_one_statement(*, subject_id: uuid.UUID, event: EventInput, recorded_by: str) -> bool:
    """PostgreSQL: lock the person, change the state only where the event wins
    and differs, and append the event only if it did: one round trip for the
    paths people click. Concurrent clicks stay single: ON CONFLICT DO UPDATE
    waits for a state row another transaction is changing, then judges its
    newest version; the lock orders clicks with the preference center."""
    rows = execute_prepared(_change_statement(), _stamped_event_params(subject_id, event, recorded_by))
    if not rows:
        raise NotFound("No subject with that id.")
    changed = rows[0][1] is not None  # else the state already said so
    if changed:
        _jobs_for_changes([(subject_id, event.channel, event.purpose, event.status)])
    return changed


@functools.cache
def _change_statement():
    from sqlalchemy.dialects.postgresql import insert

    events, state = ConsentEvent.__table__, ConsentState.__table__
    person = _subject_lock().cte("person")  # the lock the preference center takes too
    proposed = sa.select(
        person.c.id,
        *(sa.bindparam(name, type_=state.c[name].type) for name in ("channel", "purpose", "status", "occurred_at")),
        sa.Sequence("consent_events_id_seq").next_value(),  # the event's id, drawn before we know it is needed
        sa.bindparam("source", type_=state.c.source.type),
    )
    upsert = insert(state).from_select(list(STATE_COLUMNS), proposed)
    changed = (
        upsert.on_conflict_do_update(
            index_elements=[state.c.subject_id, state.c.channel, state.c.purpose],
            set_={c: upsert.excluded[c] for c in ("status", "occurred_at", "event_id", "source")},
            where=sa.and_(upsert.excluded.status != state.c.status, _new_state_wins(upsert.excluded, state.c)),
        )
        .returning(state.c.event_id)
        .cte("changed")
    )
    appended = (
        sa.insert(events)
        .from_select(
            ["id", *EVENT_COLUMNS, "policy_version"],
            sa.select(changed.c.event_id, *(sa.bindparam(name, type_=events.c[name].type) for name in EVENT_COLUMNS), _policy_stamp()),
        )
        .returning(events.c.id)
        .cte("appended")
    )
    return sa.select(person.c.id, appended.c.id).select_from(person.outerjoin(appended, sa.true()))


def validate_batch(
    items: list[dict], *, allowed_sources=API_SOURCES, known_subjects: bool = False
) -> tuple[list[tuple[str, str]], list[EventInput]]:
    """Check every item without writing: (subject refs, events), or Invalid
    listing the bad items by index. With `known_subjects`, a subject_id must
    also name someone we hold."""
    if len(items) > BATCH_LIMIT:
        raise Invalid(f"At most {BATCH_LIMIT} events per batch.", errors={"events": [f"more than {BATCH_LIMIT} items"]})
    now = utcnow()
    known_policies = policy_version_names()
    errors: dict[str, dict] = {}
    events: list[EventInput] = []
    refs: list[tuple[str, str]] = []
    for index, item in enumerate(items):
        item_errors = {}
        try:
            refs.append(_subject_ref(item))
        except Invalid as exc:
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
        named = {uuid.UUID(value) for field, value in refs if field == "subject_id"}
        held = set()
        for chunk in chunks(sorted(named)):
            held.update(db.session.scalars(sa.select(Subject.id).where(Subject.id.in_(chunk))))
        for index, (field, value) in enumerate(refs):
            if field == "subject_id" and uuid.UUID(value) not in held:
                errors.setdefault(str(index), {})["subject_id"] = ["no subject with that id"]
    if errors:
        raise Invalid(f"{len(errors)} of {len(items)} events are not valid; nothing was recorded.", errors=errors)
    return refs, events


def record_batch(*, items: list[dict], recorded_by: str, allowed_sources=API_SOURCES) -> tuple[int, list[int]]:
    """All-or-nothing: every item valid, or Invalid listing the bad ones by index.

    Each item is {one subject ref field: value, channel, purpose, status, source,
    occurred_at?, policy_version?, evidence?}. Unknown identifiers create subjects.
    Nothing is recorded for a person we erased, whichever key names them, and
    they are never re-created. Returns (recorded, indexes skipped for that reason).
    """
    refs, events = validate_batch(items, allowed_sources=allowed_sources)
    erased = subjects.erased_refs(refs)
    skipped = [i for i, ref in enumerate(refs) if ref in erased]
    kept = [(ref, event) for ref, event in zip(refs, events) if ref not in erased]
    subject_ids = _resolve_many([ref for ref, _ in kept], actor=recorded_by)
    missing = {str(i): {"subject_id": ["no subject with that id"]} for i, ref in enumerate(refs) if ref not in erased and subject_ids.get(ref) is None}
    if missing:
        raise Invalid(f"{len(missing)} of {len(items)} events name an unknown subject; nothing was recorded.", errors=missing)

    policies = _policies_for()
    rows = [
        _event_columns(subject_ids[ref], event, recorded_by, event.policy_version or policies(event.occurred_at))
        for ref, event in kept
    ]
    if rows:
        ids = db.session.scalars(sa.insert(ConsentEvent).returning(ConsentEvent.id, sort_by_parameter_order=True), rows).all()
        _apply_state([(subject_ids[ref], event, event_id) for (ref, event), event_id in zip(kept, ids)])
    return len(rows), skipped


def _subject_ref(item: dict) -> tuple[str, str]:
    given = [(field, item[field]) for field in ("subject_id", "external_ref", "email", "phone", "fax") if item.get(field) is not None]
    if len(given) != 1:
        raise Invalid("bad subject", errors={"subject": ["give exactly one of subject_id, external_ref, email, phone, fax"]})
    field, value = given[0]
    if not isinstance(value, str):
        raise Invalid("bad subject", errors={field: ["must be a string"]})
    if field == "subject_id":
        try:
            return field, str(uuid.UUID(value))
        except ValueError:
            raise Invalid("bad subject", errors={field: ["not a subject id"]}) from None
    if field == "external_ref":
        return field, value
    try:
        return field, channels.normalize(subjects.IDENTIFIER_FIELDS[field], value)
    except channels.InvalidIdentifier as exc:
        raise Invalid("bad subject", errors={field: [str(exc)]}) from None


def _resolve_many(refs: list[tuple[str, str]], *, actor: str) -> dict[tuple[str, str], uuid.UUID | None]:
    """Subject ids for (field, canonical value) pairs, creating subjects for
    unknown identifiers and external refs in bulk."""
    found: dict[tuple[str, str], uuid.UUID | None] = {}
    by_field: dict[str, set[str]] = {}
    for field, value in refs:
        by_field.setdefault(field, set()).add(value)

    for chunk in chunks(sorted(by_field.get("subject_id", ()))):
        existing = set(db.session.scalars(sa.select(Subject.id).where(Subject.id.in_([uuid.UUID(v) for v in chunk]))))
        found.update({("subject_id", v): (uuid.UUID(v) if uuid.UUID(v) in existing else None) for v in chunk})
    for chunk in chunks(sorted(by_field.get("external_ref", ()))):
        rows = db.session.execute(sa.select(Subject.external_ref, Subject.id).where(Subject.external_ref.in_(chunk)))
        found.update({("external_ref", ref): sid for ref, sid in rows})
    for field in ("email", "phone", "fax"):
        values = sorted(by_field.get(field, ()))
        kind = subjects.IDENTIFIER_FIELDS[field]
        hashes = dict(zip(subjects.identifier_hashes(kind, values), values))
        for chunk in chunks(list(hashes)):
            rows = db.session.execute(sa.select(Identifier.value_hash, Identifier.subject_id).where(Identifier.value_hash.in_(chunk)))
            found.update({(field, hashes[h]): sid for h, sid in rows})

    to_create = sorted({ref for ref in refs if ref not in found and ref[0] != "subject_id"})
    if to_create:
        now = utcnow()
        new_subjects, new_identifiers = [], []
        for field, value in to_create:
            sid = uuid.uuid4()
            found[(field, value)] = sid
            new_subjects.append(
                {"id": sid, "external_ref": value if field == "external_ref" else None, "created_at": now, "updated_at": now}
            )
            if field != "external_ref":
                kind = subjects.IDENTIFIER_FIELDS[field]
                new_identifiers.append(
                    {"subject_id": sid, "kind": kind, "value": value, "value_hash": subjects.identifier_hash(kind, value), "created_at": now}
                )
        try:
            with db.session.begin_nested():
                db.session.execute(sa.insert(Subject), new_subjects)
                if new_identifiers:
                    db.session.execute(sa.insert(Identifier), new_identifiers)
        except sa.exc.IntegrityError:
            raise Conflict("Another request created some of these subjects at the same moment; retry the batch.") from None
        audit.record("subjects.created_by_batch", actor=actor, target_type="batch", target_id="-", details={"count": len(to_create)})
    return found


def _policies_for():
    """A lookup of the policy in force at any moment, from one query."""
    versions = list(
        db.session.execute(
            sa.select(PolicyVersion.effective_at, PolicyVersion.version).order_by(PolicyVersion.effective_at, PolicyVersion.id)
        )
    )

    def at(moment: datetime) -> str | None:
        current = None
        for effective_at, version in versions:
            if effective_at > moment:
                break
            current = version
        return current

    return at


def _event_columns(subject_id, event: EventInput, recorded_by: str, policy_version: str | None) -> dict:
    return {
        "subject_id": subject_id,
        "channel": event.channel,
        "purpose": event.purpose,
        "status": event.status,
        "source": event.source,
        "occurred_at": event.occurred_at,
        "recorded_at": utcnow(),
        "policy_version": policy_version,
        "evidence_ip": event.evidence.ip,
        "evidence_user_agent": event.evidence.user_agent,
        "evidence_note": event.evidence.note,
        "recorded_by": recorded_by,
    }


def _wins(new: EventInput, old: EventInput) -> bool:
    return new.occurred_at > old.occurred_at or (new.occurred_at == old.occurred_at and new.status == WITHDRAWN)


STATE_COLUMNS = ("subject_id", "channel", "purpose", "status", "occurred_at", "event_id", "source")


@functools.cache
def _state_upsert(dialect: str):
    """Insert the state, or update it only when the new event wins (see _wins)."""
    table = ConsentState.__table__
    stmt = dialect_insert(table, dialect).values({name: sa.bindparam(name, type_=table.c[name].type) for name in STATE_COLUMNS})
    excluded = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[table.c.subject_id, table.c.channel, table.c.purpose],
        set_={c: excluded[c] for c in ("status", "occurred_at", "event_id", "source")},
        where=_new_state_wins(excluded, table.c),
    ).returning(table.c.event_id)


def _new_state_wins(new, stored):
    """_wins, in SQL: the newer event decides; on a tie, a withdrawal beats a grant."""
    return sa.or_(
        new.occurred_at > stored.occurred_at,
        sa.and_(new.occurred_at == stored.occurred_at, new.status == WITHDRAWN, stored.status == GRANTED),
    )


def _apply_state(entries: list[tuple[uuid.UUID, EventInput, int]]) -> int:
    """Upsert the current state from new events; returns how many keys changed.

    Within the batch the winner per key is chosen here (the database cannot
    update one row twice in one statement); against stored rows the WHERE clause
    applies the same rule atomically, so concurrent writers cannot break it.
    """
    winners: dict[tuple, tuple[EventInput, int]] = {}
    for subject_id, event, event_id in entries:
        key = (subject_id, event.channel, event.purpose)
        if key not in winners or _wins(event, winners[key][0]):
            winners[key] = (event, event_id)
    rows = [
        {
            "subject_id": subject_id,
            "channel": channel,
            "purpose": purpose,
            "status": event.status,
            "occurred_at": event.occurred_at,
            "event_id": event_id,
            "source": event.source,
        }
        for (subject_id, channel, purpose), (event, event_id) in winners.items()
    ]
    stmt = _state_upsert(db.session.get_bind().dialect.name)
    if len(rows) == 1:  # a person's own click: the common case
        changed = {event_id for (event_id,) in execute_prepared(stmt, rows[0])}
    else:
        changed = set()
        for chunk in chunks(rows, 1000):
            changed.update(db.session.execute(stmt, chunk).scalars())
    _jobs_for_changes([(r["subject_id"], r["channel"], r["purpose"], r["status"]) for r in rows if r["event_id"] in changed])
    return len(changed)


def _jobs_for_changes(changes: list[tuple[uuid.UUID, str, str, str]]) -> None:
    """Queue what a changed state sets off: (subject, channel, purpose, new status)."""
    for subject_id, channel, purpose, status in changes:
        job = JOBS_ON_WITHDRAWAL.get((channel, purpose))
        if job and status == WITHDRAWN:
            outbox.defer(job, {"subject_id": str(subject_id)})


# --- reading ---------------------------------------------------------------------


def check(*, channel: str, purpose: str, key: str, value: str) -> CheckResult:
    """May we contact the person named by `key`=`value` on `channel` for `purpose`?"""
    return check_many(channel=channel, purpose=purpose, key=key, values=[value])[0]


def check_many(*, channel: str, purpose: str, key: str, values: list, with_since: bool = True) -> list[CheckResult]:
    """Answers in input order; an invalid value is answered `invalid`, not raised.

    This is the hot path of every send: statements are built once and cached,
    and `with_since=False` skips the timestamps a bulk answer does not carry.
    """
    spec = require_channel_purpose(channel, purpose)
    if key not in CHECK_KEYS:
        raise Invalid("Unknown identifier type.", errors={"identifier_type": [f"must be one of: {', '.join(CHECK_KEYS)}"]})
    channel_kind = channels.CHANNELS[channel].identifier_kind
    own_kind = subjects.IDENTIFIER_FIELDS.get(key)
    lookup = _lookup_keys(key, own_kind, values)

    # One statement per chunk answers consent state and both suppressions for
    # every known person: the identifier given, and the subject's own on this
    # channel when the person was named some other way.
    keys = list({k for k in lookup if k is not None})
    other_kind = channel_kind if channel_kind != own_kind else None
    # The answer must not depend on the key that names the person: only the
    # channel's own identifier can be suppressed for it (an email bounce says
    # nothing about calling), while an erasure silences the person everywhere.
    own_counts = own_kind is not None and own_kind == channel_kind
    dialect = db.engine.dialect.name
    state: dict = {}
    params = {"channel": channel, "purpose": purpose}
    for size, bound in _key_batches(keys, dialect):
        stmt = _state_query(key, other_kind, own_counts, spec.needs_consent, with_since, dialect, size)
        state.update((row[0], row[1:]) for row in read_rows(stmt, {**params, **bound}))

    # An identifier we hold no subject for may still be suppressed (an erased
    # person, a bounce reported before they signed up).
    # An erased person's external ref is kept only as a suppressed hash.
    unknown = [k for k in keys if k not in state] if key != "subject_id" else []
    if unknown and not own_kind:
        hashes = dict(zip(subjects.identifier_hashes(subjects.EXTERNAL_REF_KIND, unknown), unknown))
    else:
        hashes = {k: k for k in unknown}
    for size, bound in _key_batches(list(hashes), dialect):
        rows = read_rows(_suppression_query(dialect, size), bound)
        state.update((hashes[h], (None, None, since, erased)) for h, since, erased in rows if erased or own_counts)

    results = []
    invalid, transactional, no_consent = CheckResult(False, "invalid"), CheckResult(True, "transactional"), CheckResult(False, "no_consent")
    for k in lookup:
        if k is None:
            results.append(invalid)
            continue
        status, since, hit, erased = state.get(k, (None, None, None, None))
        if hit is not None:
            results.append(CheckResult(False, "erased" if erased else "suppressed", hit if with_since else None))
        elif not spec.needs_consent:
            results.append(transactional)
        elif status is None:
            results.append(no_consent)
        else:
            results.append(CheckResult(status == GRANTED, status, since))
    return results


def _lookup_keys(key: str, own_kind: str | None, values: list) -> list:
    """What each value is looked up by: an identifier hash, a subject id or an
    external ref; None for a value that cannot be one."""
    if own_kind:
        normalize = channels.NORMALIZERS[own_kind]
        canonicals = []
        for value in values:
            try:
                canonicals.append(normalize(value) if isinstance(value, str) else None)
            except ValueError:
                canonicals.append(None)
        hashes = iter(subjects.identifier_hashes(own_kind, [c for c in canonicals if c is not None]))
        return [next(hashes) if c is not None else None for c in canonicals]
    if key == "subject_id":
        lookup = []
        for value in values:
            try:
                lookup.append(uuid.UUID(value) if isinstance(value, str) else None)
            except ValueError:
                lookup.append(None)
        return lookup
    return [v if isinstance(v, str) and v else None for v in values]


# SQLite caps bound parameters per statement; PostgreSQL takes one array.
SQLITE_BATCH = 4096


def _key_batches(keys: list, dialect: str):
    """(statement size, parameters) for looking up `keys`, in as few statements
    as the backend allows. On SQLite a batch is padded, by repeating its last
    key, to a power of two: a handful of statements serve every batch size."""
    if not keys:
        return
    if len(keys) == 1:  # the single check: a plain comparison is cheaper to run
        yield 1, {"k0": keys[0]}
    elif dialect == "postgresql":
        yield None, {"keys": keys}
    else:
        yield from _sqlite_batches(keys)


def _sqlite_batches(keys: list):
    for start in range(0, len(keys), SQLITE_BATCH):
        batch = keys[start : start + SQLITE_BATCH]
        size = 1 << (len(batch) - 1).bit_length()
        batch += [batch[-1]] * (size - len(batch))
        yield size, {f"k{i}": value for i, value in enumerate(batch)}


def _matching(column, dialect: str, size: int | None):
    """column IN the keys of one batch (see _key_batches)."""
    if size == 1:
        return column == sa.bindparam("k0", type_=column.type)
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == sa.any_(sa.bindparam("keys", type_=ARRAY(column.type)))
    return column.in_([sa.bindparam(f"k{i}", type_=column.type) for i in range(size)])


@functools.cache
def _state_query(key: str, other_kind: str | None, own_counts: bool, needs_consent: bool, with_since: bool, dialect: str, size: int | None):
    """Rows of (lookup key, status, occurred_at, suppressed since, erased):
    `erased` is true when the person was erased, or a suppression that silences
    them came from an erasure. The given identifier's own suppression counts
    when it is the channel's identifier (`own_counts`), or came from an erasure."""
    cs = ConsentState.__table__
    ident = Identifier.__table__
    own = Suppression.__table__.alias("own_suppression")
    if key in subjects.IDENTIFIER_FIELDS:
        base, match, subject_col = ident, ident.c.value_hash, ident.c.subject_id
        joined = base.outerjoin(own, own.c.value_hash == match)
        own_erasure = own.c.reason == subjects.ERASURE
        suppressed = [own.c.created_at if own_counts else sa.case((own_erasure, own.c.created_at))]
        erased = [own_erasure]
    else:
        base = Subject.__table__
        match = base.c.id if key == "subject_id" else base.c.external_ref
        subject_col = base.c.id
        # Erasure silences the person on every channel.
        joined, suppressed, erased = base, [base.c.erased_at], [base.c.erased_at.is_not(None)]
    columns = [match]
    if needs_consent:
        joined = joined.outerjoin(
            cs,
            sa.and_(cs.c.subject_id == subject_col, cs.c.channel == sa.bindparam("channel"), cs.c.purpose == sa.bindparam("purpose")),
        )
        columns += [cs.c.status, cs.c.occurred_at if with_since else sa.null()]
    else:
        columns += [sa.null(), sa.null()]
    if other_kind:
        channel_ident = ident.alias("channel_ident")
        theirs = Suppression.__table__.alias("channel_suppression")
        joined = joined.outerjoin(
            channel_ident, sa.and_(channel_ident.c.subject_id == subject_col, channel_ident.c.kind == other_kind)
        ).outerjoin(theirs, theirs.c.value_hash == channel_ident.c.value_hash)
        suppressed.append(theirs.c.created_at)
        erased.append(theirs.c.reason == subjects.ERASURE)
    columns.append(sa.func.coalesce(*suppressed) if len(suppressed) > 1 else suppressed[0])
    columns.append(sa.or_(*erased) if len(erased) > 1 else erased[0])
    return sa.select(*columns).select_from(joined).where(_matching(match, dialect, size))


@functools.cache
def _suppression_query(dialect: str, size: int | None):
    """(hash, suppressed since, from an erasure) for suppressed keys."""
    table = Suppression.__table__
    return sa.select(table.c.value_hash, table.c.created_at, table.c.reason == subjects.ERASURE).where(
        _matching(table.c.value_hash, dialect, size)
    )


def _suppressions(hashes: set[bytes]) -> dict[bytes, tuple[datetime, bool]]:
    """{hash: (suppressed since, from an erasure)} for the suppressed ones."""
    dialect = db.engine.dialect.name
    out = {}
    for size, bound in _key_batches(list(hashes), dialect):
        out.update((value_hash, (since, bool(erased))) for value_hash, since, erased in read_rows(_suppression_query(dialect, size), bound))
    return out


def current(*, subject: Subject) -> list[dict]:
    """Every channel × purpose for the subject with its state and the check's answer."""
    states = {
        (s.channel, s.purpose): s
        for s in db.session.scalars(sa.select(ConsentState).where(ConsentState.subject_id == subject.id))
    }
    own = {i.kind: i.value_hash for i in subject.identifiers}
    suppressed = _suppressions(set(own.values()))
    out = []
    for channel, purpose in channels.all_purposes():
        spec = channels.CHANNELS[channel]
        state = states.get((channel, purpose))
        # A suppression names an identifier: it silences the channel that uses
        # it. An erasure silences every channel.
        own_hash = own.get(spec.identifier_kind)
        hit = (subject.erased_at, True) if subject.erased_at is not None else (suppressed.get(own_hash) if own_hash else None)
        if hit is not None:
            verdict = CheckResult(False, "erased" if hit[1] else "suppressed", hit[0])
        elif not spec.purpose(purpose).needs_consent:
            verdict = CheckResult(True, "transactional")
        elif state is None:
            verdict = CheckResult(False, "no_consent")
        else:
            verdict = CheckResult(state.status == GRANTED, state.status, state.occurred_at)
        out.append(
            {
                "channel": channel,
                "purpose": purpose,
                "status": state.status if state else None,
                "occurred_at": state.occurred_at if state else None,
                "source": state.source if state else None,
                "allowed": verdict.allowed,
                "reason": verdict.reason,
                "since": verdict.since,
            }
        )
    return out


def history(*, subject: Subject, limit: int = 500, before: int | None = None) -> list[ConsentEvent]:
    stmt = sa.select(ConsentEvent).where(ConsentEvent.subject_id == subject.id)
    if before is not None:
        stmt = stmt.where(ConsentEvent.id < before)
    return list(db.session.scalars(stmt.order_by(ConsentEvent.id.desc()).limit(limit)))


def parse_cursor(cursor: str | None) -> tuple[int, int]:
    if not cursor:
        return (-1, 0)
    try:
        txid, _, event_id = cursor.partition(".")
        parsed = int(txid), int(event_id)
    except ValueError:
        raise Invalid("Not a change-feed cursor.", errors={"after": ["use the `next` value of a previous page"]}) from None
    if parsed[0] < 0 or parsed[1] < 0:
        raise Invalid("Not a change-feed cursor.", errors={"after": ["use the `next` value of a previous page"]})
    return parsed


def cursor_of(event: ConsentEvent) -> str:
    return f"{event.txid}.{event.id}"


def changes(*, after: str | None, limit: int) -> tuple[list[ConsentEvent], str | None, bool]:
    """Up to `limit` ledger entries after `after`, the cursor to continue from,
    and whether more are waiting. The order is one a follower can rely on:
    nothing appears later behind a cursor already handed out (see ConsentEvent.txid)."""
    txid, event_id = parse_cursor(after)
    position = sa.tuple_(ConsentEvent.txid, ConsentEvent.id)
    stmt = sa.select(ConsentEvent).where(position > sa.tuple_(sa.literal(txid), sa.literal(event_id)))
    if db.session.get_bind().dialect.name == "postgresql":
        # Only transactions that can no longer commit anything older.
        stmt = stmt.where(ConsentEvent.txid < sa.text("pg_snapshot_xmin(pg_current_snapshot())::text::bigint"))
    events = list(db.session.scalars(stmt.order_by(ConsentEvent.txid, ConsentEvent.id).limit(limit + 1)))
    more = len(events) > limit
    events = events[:limit]
    return events, (cursor_of(events[-1]) if events else after), more


# --- the person's own choices (signed links) ------------------------------------------

SELF = "subject"  # recorded_by for what the person did through a signed link


def evidence_from(*, ip: str | None, user_agent: str | None, note: str | None = None) -> Evidence:
    """Evidence of a web action: the IP truncated (or dropped if unreadable)."""
    try:
        ip = truncate_ip(ip) if ip else None
    except ValueError:
        ip = None
    return Evidence(ip=ip, user_agent=(user_agent or None) and user_agent[:USER_AGENT_LIMIT], note=note)


def _own_event(channel: str, purpose: str, status: str, source: str, evidence: Evidence) -> EventInput:
    return EventInput(channel, purpose, status, source, utcnow(), None, evidence)


def unsubscribe(*, subject_id: uuid.UUID, channel: str, purpose: str, source: str, evidence: Evidence) -> bool:
    """Withdraw at once; whether that changed anything (a repeat does not).
    NotFound if the person no longer exists."""
    require_channel_purpose(channel, purpose)
    return change_if_different(subject_id=subject_id, event=_own_event(channel, purpose, WITHDRAWN, source, evidence), recorded_by=SELF)


def applicable_channels(subject: Subject) -> list[channels.Channel]:
    """Channels we could reach this person on: those whose identifier we hold, and partner sharing."""
    kinds = {i.kind for i in subject.identifiers}
    return [c for c in channels.CHANNELS.values() if c.identifier_kind is None or c.identifier_kind in kinds]


def preference_view(subject: Subject) -> list[dict]:
    """What the preference center shows: per applicable channel, each purpose with its answer."""
    answers = {(row["channel"], row["purpose"]): row for row in current(subject=subject)}
    view = []
    for channel in applicable_channels(subject):
        purposes = [
            {
                "name": p.name,
                "label": p.label,
                "choice": p.needs_consent,
                "granted": answers[(channel.name, p.name)]["status"] == GRANTED,
                "reason": answers[(channel.name, p.name)]["reason"],
            }
            for p in channel.purposes
        ]
        view.append(
            {
                "name": channel.name,
                "label": channel.label,
                "purposes": purposes,
                "suppressed": any(p["reason"] in ("suppressed", "erased") for p in purposes),
            }
        )
    return view


def save_preferences(*, subject: Subject, granted: set[tuple[str, str]], evidence: Evidence, source: str = "preference_center") -> list[ConsentEvent]:
    """Make every opt-in purpose of every applicable channel match `granted`
    ((channel, purpose) pairs), one ledger event per actual change."""
    unknown = {pair for pair in granted if channel_purpose_errors(*pair)}
    if unknown:
        raise Invalid("Unknown channel or purpose.", errors={"purposes": sorted(f"{c}.{p}" for c, p in unknown)})
    _lock_consent_of(subject.id)
    states = _statuses(subject.id)
    recorded = []
    for channel in applicable_channels(subject):
        for purpose in channel.purposes:
            if not purpose.needs_consent:
                continue
            key = (channel.name, purpose.name)
            wanted = GRANTED if key in granted else WITHDRAWN
            current_status = states.get(key)
            if current_status == wanted or (current_status is None and wanted == WITHDRAWN):
                continue
            row, _ = record(subject_id=subject.id, event=_own_event(*key, wanted, source, evidence), recorded_by=SELF)
            recorded.append(row)
    _lift_suppressions(subject, {channel for channel, _ in granted})
    return recorded


def _lift_suppressions(subject: Subject, channel_names: set[str]) -> None:
    """A grant the person made themselves, through a link mailed to them, is the
    one thing that lifts a suppression of the identifier on that channel."""
    for name in channel_names:
        kind = channels.CHANNELS[name].identifier_kind
        held = subject.identifier(kind) if kind else None
        suppression = db.session.get(Suppression, held.value_hash) if held else None
        if suppression is not None:
            db.session.delete(suppression)
            audit.record(
                "suppression.lifted",
                actor=SELF,
                target_type="suppression",
                target_id=held.value_hash.hex()[:16],
                details={"kind": kind, "reason": suppression.reason, "subject": str(subject.id)},
            )


def _statuses(subject_id: uuid.UUID) -> dict[tuple[str, str], str]:
    rows = db.session.execute(
        sa.select(ConsentState.channel, ConsentState.purpose, ConsentState.status).where(ConsentState.subject_id == subject_id)
    )
    return {(channel, purpose): status for channel, purpose, status in rows}


def stop_all_marketing(*, subject: Subject, evidence: Evidence) -> list[ConsentEvent]:
    """Withdraw every marketing purpose not already withdrawn, on every channel,
    so no older grant arriving later can count."""
    _lock_consent_of(subject.id)
    states = _statuses(subject.id)
    recorded = []
    for channel, purpose in channels.all_purposes():
        if channels.CHANNELS[channel].purpose(purpose).marketing and states.get((channel, purpose)) != WITHDRAWN:
            row, _ = record(subject_id=subject.id, event=_own_event(channel, purpose, WITHDRAWN, "preference_center", evidence), recorded_by=SELF)
            recorded.append(row)
    return recorded


GPC_PURPOSE = ("partner", "share_for_marketing")


def honour_gpc(*, subject: Subject, evidence: Evidence) -> bool:
    """A Global Privacy Control signal opts the person out of sharing for
    marketing. Returns whether that changed anything."""
    return change_if_different(subject_id=subject.id, event=_own_event(*GPC_PURPOSE, WITHDRAWN, "gpc", evidence), recorded_by=SELF)


PREFERENCES_LINK_EVERY = timedelta(minutes=10)


def request_preferences_link(*, email: str) -> None:
    """Mail a fresh preferences link if we know the address, or a link to come
    back if it belonged to someone we erased; otherwise do nothing. The caller
    answers the same either way. At most one mail per address per ten minutes,
    however often it is asked."""
    try:
        canonical = channels.normalize("email", email)
    except channels.InvalidIdentifier:
        return
    bucket = int(utcnow().timestamp() // PREFERENCES_LINK_EVERY.total_seconds())
    subject = subjects.find(kind="email", canonical=canonical)
    if subject is None:
        _offer_return(canonical, bucket)
        return
    notices.queue(
        kind="preferences_link",
        recipient=subject.identifier("email").value,
        template="preferences_link",
        context={"preferences_url": links.preferences_url(subject.id), "valid_days": tokens.PURPOSES["preferences"].max_age.days},
        idempotency_key=f"preferences-link:{subject.id}:{bucket}",
        subject_id=subject.id,
    )


def _offer_return(canonical: str, bucket: int) -> None:
    """An erased address asked for its preferences: mail it a link to come
    back. The mail's address is forgotten once sent, and the link names only
    the address's keyed hash."""
    email_hash = subjects.identifier_hash("email", canonical)
    if not erased_address(email_hash):
        return
    notices.queue(
        kind="return_link",
        recipient=canonical,
        template="return_link",
        context={"return_url": links.return_url(email_hash), "valid_days": tokens.PURPOSES["return"].max_age.days},
        idempotency_key=f"return-link:{email_hash.hex()[:32]}:{bucket}",
        forget_after_send=True,
    )


def erased_address(email_hash: bytes) -> bool:
    """Whether this address belonged to someone we erased and nobody holds it now."""
    suppression = db.session.get(Suppression, email_hash)
    if suppression is None or suppression.reason != subjects.ERASURE:
        return False
    return db.session.scalar(sa.select(Identifier.id).where(Identifier.value_hash == email_hash)) is None


def come_back(*, email_hash: bytes, typed_email: str, granted: set[tuple[str, str]], evidence: Evidence) -> tuple[Subject, int]:
    """The one way back for a person we erased: through a link mailed to
    their old address, they type it again and choose what to receive. A new
    person holds the address, their grants are in the ledger with the
    evidence, and the address's erasure suppression is lifted. Invalid when
    the address is not the one the link was sent to, or nothing was chosen.
    Returns (the person, how many grants were recorded)."""
    try:
        canonical = channels.normalize("email", typed_email)
    except channels.InvalidIdentifier:
        canonical = None
    if canonical is None or subjects.identifier_hash("email", canonical) != email_hash:
        raise Invalid("That is not the address this link was sent to.", errors={"email": ["type the address the link was sent to"]})
    wanted = {pair for pair in granted if pair[0] == "email" and not channel_purpose_errors(*pair)}
    if not wanted or any(not channels.CHANNELS["email"].purpose(p).needs_consent for _, p in wanted):
        raise Invalid("Choose what you would like to receive.", errors={"granted": ["choose at least one topic"]})
    if not erased_address(email_hash):
        raise Conflict("This link was used already: your address is with us again. Ask for a link to your preferences instead.")
    subject = subjects.come_back(email=canonical, actor=SELF)
    for channel, purpose in sorted(wanted):
        record(subject_id=subject.id, event=_own_event(channel, purpose, GRANTED, "preference_center", evidence), recorded_by=SELF)
    _lift_suppressions(subject, {"email"})
    return subject, len(wanted)


# --- suppressions ------------------------------------------------------------------


def suppress(*, kind: str, value: str, reason: str, note: str | None = None, actor: str) -> tuple[Suppression, bool]:
    """Never contact this identifier again (until lifted). Returns (row, created)."""
    if reason not in SUPPRESSION_REASONS:
        raise Invalid("Unknown suppression reason.", errors={"reason": [f"must be one of: {', '.join(SUPPRESSION_REASONS)}"]})
    try:
        canonical = channels.normalize(kind, value)
    except channels.InvalidIdentifier as exc:
        raise Invalid("Not a valid identifier.", errors={"value": [str(exc)]}) from None
    value_hash = subjects.identifier_hash(kind, canonical)
    created = db.session.execute(
        dialect_insert(Suppression.__table__)
        .values(value_hash=value_hash, kind=kind, reason=reason, note=note, created_by=actor, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["value_hash"])
        .returning(Suppression.__table__.c.value_hash)
    ).scalar()
    row = db.session.get(Suppression, value_hash)
    if created is None:
        return row, False
    audit.record("suppression.added", actor=actor, target_type="suppression", target_id=value_hash.hex()[:16], details={"kind": kind, "reason": reason})
    return row, True
