"""Every statement of the consent ledger and its checks, and how each runs.

The statements of the paths that run by the thousand a second (checks, the
person's own clicks) are built once and run on the fast path (db/fast.py); the
caller says in which scope. Batches and pages go through the session.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from ..db import fast
from ..db.backend import Backend, backend, chunks
from ..db.scopes import WRITE, Scope
from ..extensions import db
from ..subjects.identifiers import KINDS
from ..subjects.models import Identifier, Subject, Suppression
from ..subjects.refs import ERASURE, SUBJECT_ID
from . import decisions
from .models import ConsentEvent, ConsentState, PolicyVersion
from .rules import GRANTED, WITHDRAWN

EVENT_COLUMNS = (
    "subject_id", "channel", "purpose", "status", "source", "occurred_at", "recorded_at",
    "evidence_ip", "evidence_user_agent", "evidence_note", "recorded_by", "evidence_salt", "evidence_commitment",
)  # fmt: skip
STATE_COLUMNS = ("subject_id", "channel", "purpose", "status", "occurred_at", "event_id", "source")
_STATE_UPDATES = ("status", "occurred_at", "event_id", "source")

# --- the rules, in SQL -------------------------------------------------------------


def new_state_wins(new: Any, stored: Any) -> sa.ColumnElement[bool]:
    """rules.wins(), in SQL: the newer event decides; on a tie, a withdrawal beats a grant."""
    return sa.or_(
        new.occurred_at > stored.occurred_at,
        sa.and_(new.occurred_at == stored.occurred_at, new.status == WITHDRAWN, stored.status == GRANTED),
    )


def _policy_stamp() -> sa.ColumnElement[Any]:
    """The policy version the caller named, else the one in force at `policy_moment`."""
    in_force = (
        sa.select(PolicyVersion.version)
        .where(PolicyVersion.effective_at <= sa.bindparam("policy_moment", type_=PolicyVersion.effective_at.type))
        .order_by(PolicyVersion.effective_at.desc(), PolicyVersion.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return sa.func.coalesce(sa.bindparam("named_policy", type_=sa.String), in_force)


# --- appending -------------------------------------------------------------------------


@functools.cache
def _insert_event() -> Any:
    """INSERT one ledger row, stamped with _policy_stamp(); built once, bound per call."""
    table = ConsentEvent.__table__
    return (
        sa.insert(table)
        .values({**{name: sa.bindparam(name, type_=table.c[name].type) for name in EVENT_COLUMNS}, "policy_version": _policy_stamp()})
        .returning(*table.c)
    )


def append_event(params: dict[str, Any]) -> tuple[Any, ...]:
    """Append one ledger row (EVENT_COLUMNS, named_policy, policy_moment); its columns."""
    (values,) = fast.rows(_insert_event(), params, scope=WRITE)
    return values


def append_events(rows: Sequence[dict[str, Any]]) -> list[int]:
    """Append many ledger rows (every column given); their ids, in order."""
    return list(db.session.scalars(sa.insert(ConsentEvent).returning(ConsentEvent.id, sort_by_parameter_order=True), rows))


@functools.cache
def _person_lock() -> sa.Select[Any]:
    """The person's row, if we hold them (not erased), locked. NO KEY UPDATE:
    serialises these writers without blocking the foreign-key checks of events
    other callers append for the same person."""
    return (
        sa.select(Subject.id)
        .where(Subject.id == sa.bindparam("subject_id", type_=Subject.id.type), Subject.erased_at.is_(None))
        .with_for_update(key_share=True)
    )


def lock_person(subject_id: uuid.UUID) -> None:
    """Before reading a person's state to decide what to record: two saves of
    the preference center, or a save and a click, must not both record the same
    withdrawal. Where writers are not serialised anyway, the second waits here
    for the first to commit, then reads its outcome."""
    backend().lock(_person_lock(), {"subject_id": subject_id})


@functools.cache
def _status_of() -> sa.Select[Any]:
    """(subject id, current status, since) for one subject × channel × purpose;
    no row: no such subject, or one we erased (their links lead nowhere)."""
    state = ConsentState.__table__
    return (
        sa.select(Subject.id, state.c.status, state.c.occurred_at)
        .outerjoin(
            state,
            sa.and_(
                state.c.subject_id == Subject.id, state.c.channel == sa.bindparam("channel"), state.c.purpose == sa.bindparam("purpose")
            ),
        )
        .where(Subject.id == sa.bindparam("subject_id", type_=Subject.id.type), Subject.erased_at.is_(None))
    )


def status_of(subject_id: uuid.UUID, channel: str, purpose: str) -> list[tuple[Any, ...]]:
    """[(subject id, status, since)] for a live person (None, None if they never
    chose), [] for nobody we hold."""
    return fast.rows(_status_of(), {"subject_id": subject_id, "channel": channel, "purpose": purpose}, scope=WRITE)


@functools.cache
def _change_in_one_statement() -> Any:
    """Lock the person, change the state only where the event wins and
    differs, and append the event only if it did (PostgreSQL: data-modifying WITH)."""
    events, state = ConsentEvent.__table__, ConsentState.__table__
    person = _person_lock().cte("person")  # the lock lock_person() takes too
    proposed = sa.select(
        person.c.id,
        *(sa.bindparam(name, type_=state.c[name].type) for name in ("channel", "purpose", "status", "occurred_at")),
        sa.Sequence("consent_events_id_seq").next_value(),  # the event's id, drawn before we know it is needed
        sa.bindparam("source", type_=state.c.source.type),
    )
    upsert = postgresql.insert(state).from_select(list(STATE_COLUMNS), proposed)
    changed = (
        upsert.on_conflict_do_update(
            index_elements=[state.c.subject_id, state.c.channel, state.c.purpose],
            set_={c: upsert.excluded[c] for c in _STATE_UPDATES},
            where=sa.and_(upsert.excluded.status != state.c.status, new_state_wins(upsert.excluded, state.c)),
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


def change_in_one_statement(params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """[(subject id, new event id or None)] for a live person, [] for nobody we hold."""
    rows = fast.rows(_change_in_one_statement(), params, scope=WRITE)
    if rows and rows[0][1] is not None:
        decisions.state_changed(params["subject_id"], params["channel"], params["purpose"], params["status"], params["occurred_at"])
    return rows


@functools.cache
def _state_upsert(chosen: Backend) -> Any:
    """Insert the state, or update it only when the new event wins."""
    table = ConsentState.__table__
    stmt = chosen.insert(table).values({name: sa.bindparam(name, type_=table.c[name].type) for name in STATE_COLUMNS})
    return stmt.on_conflict_do_update(
        index_elements=[table.c.subject_id, table.c.channel, table.c.purpose],
        set_={c: stmt.excluded[c] for c in _STATE_UPDATES},
        where=new_state_wins(stmt.excluded, table.c),
    ).returning(table.c.event_id)


def upsert_states(rows: Sequence[dict[str, Any]]) -> set[int]:
    """Apply winning states (STATE_COLUMNS); the event ids of the rows that changed."""
    stmt = _state_upsert(backend())
    decisions.lock_people(db.session(), {row["subject_id"] for row in rows})  # the people first, in one order, then their state
    if len(rows) == 1:  # a person's own click: the common case
        changed = {event_id for (event_id,) in fast.rows(stmt, rows[0], scope=WRITE)}
    else:
        changed = set()
        for chunk in chunks(rows, 1000):
            changed.update(db.session.execute(stmt, chunk).scalars())
    for row in rows:
        if row["event_id"] in changed:
            decisions.state_changed(row["subject_id"], row["channel"], row["purpose"], row["status"], row["occurred_at"])
    return changed


def statuses(subject_id: uuid.UUID) -> dict[tuple[str, str], str]:
    """{(channel, purpose): status} of one person, in the session's transaction."""
    rows = db.session.execute(
        sa.select(ConsentState.channel, ConsentState.purpose, ConsentState.status).where(ConsentState.subject_id == subject_id)
    )
    return {(channel, purpose): status for channel, purpose, status in rows}


# --- checking ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckShape:
    """What a check statement looks up (people named by `key`) and answers
    (the state of a purpose that `needs_consent`, `with_since` or not, and the
    suppressions that silence the channel, whose identifier is `channel_kind`)."""

    key: str
    channel_kind: str | None
    needs_consent: bool
    with_since: bool
    # The national registers are consulted: each row also carries the
    # person's id and their identifier of the channel's kind (hash, plain value).
    screen: bool = False

    @property
    def own_kind(self) -> str | None:
        """The identifier kind of the key, if it is one."""
        return self.key if self.key in KINDS else None

    @property
    def own_counts(self) -> bool:
        """Whether a suppression of the key itself silences the channel. The
        answer must not depend on the key that names the person: only the
        channel's own identifier can be suppressed for it (an email bounce says
        nothing about calling), while an erasure silences the person everywhere."""
        return self.own_kind is not None and self.own_kind == self.channel_kind

    @property
    def other_kind(self) -> str | None:
        """The channel's identifier, when the person was named some other way."""
        return self.channel_kind if self.channel_kind != self.own_kind else None


@functools.cache
def _check_statement(shape: CheckShape, chosen: Backend, size: int | None) -> sa.Select[Any]:
    """Rows of (lookup key, status, occurred_at, silenced since, erased) for
    the people a batch of keys names. `erased` is true when the person was
    erased, or a suppression that silences them came from an erasure. A
    screening shape adds (subject id, channel identifier's hash, its value);
    the last two are null where the key is that identifier."""
    cs = ConsentState.__table__
    ident = Identifier.__table__
    own = Suppression.__table__.alias("own_suppression")
    joined: sa.FromClause
    if shape.own_kind:
        match, subject_col = ident.c.value_hash, ident.c.subject_id
        joined = ident.outerjoin(own, own.c.value_hash == match)
        own_erasure = own.c.reason == ERASURE
        silenced: list[Any] = [own.c.created_at if shape.own_counts else sa.case((own_erasure, own.c.created_at))]
        erased: list[Any] = [own_erasure]
    else:
        subjects = Subject.__table__
        match = subjects.c.id if shape.key == SUBJECT_ID else subjects.c.external_ref
        subject_col = subjects.c.id
        # Erasure silences the person on every channel.
        joined, silenced, erased = subjects, [subjects.c.erased_at], [subjects.c.erased_at.is_not(None)]
    columns: list[Any] = [match]
    if shape.needs_consent:
        joined = joined.outerjoin(
            cs, sa.and_(cs.c.subject_id == subject_col, cs.c.channel == sa.bindparam("channel"), cs.c.purpose == sa.bindparam("purpose"))
        )
        columns += [cs.c.status, cs.c.occurred_at if shape.with_since else sa.null()]
    else:
        columns += [sa.null(), sa.null()]
    screened: list[Any] = [subject_col, sa.null(), sa.null()] if shape.screen else []
    if shape.other_kind:
        channel_ident = ident.alias("channel_ident")
        if shape.screen:
            screened[1:] = [channel_ident.c.value_hash, channel_ident.c.value]
        theirs = Suppression.__table__.alias("channel_suppression")
        joined = joined.outerjoin(
            channel_ident, sa.and_(channel_ident.c.subject_id == subject_col, channel_ident.c.kind == shape.other_kind)
        )
        joined = joined.outerjoin(theirs, theirs.c.value_hash == channel_ident.c.value_hash)
        silenced.append(theirs.c.created_at)
        erased.append(theirs.c.reason == ERASURE)
    columns.append(sa.func.coalesce(*silenced) if len(silenced) > 1 else silenced[0])
    columns.append(sa.or_(*erased) if len(erased) > 1 else erased[0])
    columns += screened
    return sa.select(*columns).select_from(joined).where(chosen.matching(match, size))


def check_rows(shape: CheckShape, keys: Sequence[Any], *, channel: str, purpose: str, scope: Scope) -> Iterator[tuple[Any, ...]]:
    """check_statement()'s rows for `keys`, in as few statements as the backend allows."""
    chosen = backend()
    for size, bound in chosen.key_batches(keys):
        yield from fast.rows(_check_statement(shape, chosen, size), {"channel": channel, "purpose": purpose, **bound}, scope=scope)


@functools.cache
def _suppression_statement(chosen: Backend, size: int | None) -> sa.Select[Any]:
    """(hash, suppressed since, from an erasure) for suppressed keys."""
    table = Suppression.__table__
    return sa.select(table.c.value_hash, table.c.created_at, table.c.reason == ERASURE).where(chosen.matching(table.c.value_hash, size))


def suppressions(hashes: Iterable[bytes], *, scope: Scope) -> dict[bytes, tuple[datetime, bool]]:
    """{hash: (suppressed since, from an erasure)} for the suppressed ones."""
    chosen = backend()
    found: dict[bytes, tuple[datetime, bool]] = {}
    for size, bound in chosen.key_batches(list(hashes)):
        found.update(
            (value_hash, (since, bool(erased)))
            for value_hash, since, erased in fast.rows(_suppression_statement(chosen, size), bound, scope=scope)
        )
    return found


def states_of(subject_id: uuid.UUID) -> dict[tuple[str, str], ConsentState]:
    return {(s.channel, s.purpose): s for s in db.session.scalars(sa.select(ConsentState).where(ConsentState.subject_id == subject_id))}


# --- reading the ledger ------------------------------------------------------------------


def has_event_from(subject_id: uuid.UUID, source: str) -> bool:
    """Whether the ledger holds any event of this person from `source` (e.g. a GPC signal)."""
    found = sa.select(ConsentEvent.id).where(ConsentEvent.subject_id == subject_id, ConsentEvent.source == source).limit(1)
    return db.session.scalar(found) is not None


def history(subject_id: uuid.UUID, *, limit: int, before: int | None) -> list[ConsentEvent]:
    stmt = sa.select(ConsentEvent).where(ConsentEvent.subject_id == subject_id)
    if before is not None:
        stmt = stmt.where(ConsentEvent.id < before)
    return list(db.session.scalars(stmt.order_by(ConsentEvent.id.desc()).limit(limit)))


def feed(after: tuple[int, int], *, limit: int) -> list[ConsentEvent]:
    """Ledger entries after the (txid, id) position, in feed order, that no
    running transaction can still commit anything behind."""
    position = sa.tuple_(ConsentEvent.txid, ConsentEvent.id)
    stmt = sa.select(ConsentEvent).where(position > sa.tuple_(sa.literal(after[0]), sa.literal(after[1])))
    horizon = backend().feed_horizon(ConsentEvent.txid)
    if horizon is not None:
        stmt = stmt.where(horizon)
    return list(db.session.scalars(stmt.order_by(ConsentEvent.txid, ConsentEvent.id).limit(limit)))
