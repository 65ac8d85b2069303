"""The decisions read model: what a check answers, kept beside the ledger.

One row per key × channel × purpose (consent/models.py Decision). A key is
whatever a check can name a person by, made one probe: an identifier's keyed
hash, the keyed hash of an external ref, or a subject id's 16 bytes. A row
holds the consent state (for a purpose that needs consent), when a suppression
or an erasure silenced the channel, and whether it was an erasure; a key
without a row holds nothing. The rows of a key answer exactly what the checks
answered when they joined identifiers, subjects, consent state and
suppressions (the rules are those of queries.CheckShape):

- named by an identifier: a suppression of that identifier silences its own
  channel; an erasure silences every channel;
- named by a subject id or external ref: an erasure silences every channel;
- either way, the person's identifier of the channel's kind, when suppressed,
  silences the channel;
- a suppressed key nobody holds (a bounce before sign-up, a key of an erased
  person) answers the same way, without a state.

Every change that can alter an answer marks what it touched (`touch()`, or
on its own for changes made through the ORM: subjects, identifiers,
suppressions); before the transaction commits, the rows of every touched
person and key are computed again from the tables, in that transaction.
`rebuild()` computes them all (`prefs screening rebuild`).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .. import channels
from ..db import fast
from ..db.backend import Backend, backend, chunks
from ..db.scopes import WRITE, Scope
from ..extensions import db
from ..subjects.identifiers import EXTERNAL_REF, KINDS, identifier_hashes
from ..subjects.models import Identifier, Subject, Suppression
from ..subjects.refs import ERASURE, SUBJECT_ID
from .models import ConsentState, Decision

COLUMNS = ("key_hash", "channel", "purpose", "status", "since", "silenced_since", "erased", "subject_id")
_TOUCHED = "prefs.decisions.touched"
_CHUNK = 500  # people or keys per statement (SQLite caps bound parameters)


@dataclass(frozen=True)
class _Pair:
    channel: str
    purpose: str
    channel_kind: str | None  # the identifier a sender uses on the channel
    needs_consent: bool


@functools.cache
def _pairs() -> list[_Pair]:
    out = []
    for channel, purpose in channels.all_purposes():
        spec = channels.CHANNELS[channel]
        found = spec.purpose(purpose)
        assert found is not None
        out.append(_Pair(channel, purpose, spec.identifier_kind, found.needs_consent))
    return out


@functools.cache
def _pair_named() -> dict[tuple[str, str], _Pair]:
    return {(pair.channel, pair.purpose): pair for pair in _pairs()}


def subject_key(subject_id: uuid.UUID) -> bytes:
    """The key a subject id is probed by."""
    return subject_id.bytes


def probe_keys(key: str, lookup: Sequence[Any]) -> list[Any]:
    """The keys `lookup` (checks._lookup_keys: hashes, subject ids or external
    refs, None for an invalid value) are probed by, in order."""
    if key in KINDS:
        return list(lookup)
    if key == SUBJECT_ID:
        return [k.bytes if k is not None else None for k in lookup]
    refs = [k for k in lookup if k is not None]
    hashes = iter(identifier_hashes(EXTERNAL_REF, refs))
    return [next(hashes) if k is not None else None for k in lookup]


# --- reading ---------------------------------------------------------------------------


def read_statement(chosen: Backend, size: int | None, with_subject: bool = False, with_since: bool = True) -> sa.Select[Any]:
    """(key, status, since, silenced since, erased[, subject id]) for a batch of
    keys; since is NULL unless `with_since` (a bulk answer carries no dates, and
    converting 10,000 of them costs a tenth of the call)."""
    table = Decision.__table__
    source, matching = chosen.probing(table, table.c.key_hash, size)
    since = table.c.since if with_since else sa.null()
    # `erased` as stored (SQLite 0/1, only its truth counts): rows keep fast.py's one-converter path (10k on SQLite: 73 -> 67 ms).
    erased = sa.type_coerce(table.c.erased, sa.Integer)
    columns = [table.c.key_hash, table.c.status, since, table.c.silenced_since, erased]
    return (
        sa.select(*columns, *([table.c.subject_id] if with_subject else []))
        .select_from(source)
        .where(table.c.channel == sa.bindparam("channel"), table.c.purpose == sa.bindparam("purpose"), matching)
    )


_statements: dict[tuple[Backend, int | None, bool, bool], sa.Select[Any]] = {}


def read(
    keys: Collection[bytes], *, channel: str, purpose: str, scope: Scope, with_subject: bool = False, with_since: bool = True
) -> Iterator[tuple[Any, ...]]:
    """The rows of `keys` for one channel and purpose: one primary-key probe
    per key, in key order (neighbouring keys share the index's pages).
    `with_subject`: each row also names the key's holder (None for a key
    nobody holds; a held key without a row has no row at all)."""
    chosen = backend()
    for size, bound in chosen.key_batches(sorted(keys)):
        shape = (chosen, size, with_subject, with_since)
        stmt = _statements.get(shape)
        if stmt is None:
            stmt = _statements[shape] = read_statement(*shape)
        yield from fast.rows(stmt, {"channel": channel, "purpose": purpose, **bound}, scope=scope)


def of_subject(subject_id: uuid.UUID) -> dict[tuple[str, str], tuple[Any, ...]]:
    """{(channel, purpose): (status, since, silenced since, erased)} of a person, by their subject id."""
    table = Decision.__table__
    rows = db.session.execute(
        sa.select(table.c.channel, table.c.purpose, table.c.status, table.c.since, table.c.silenced_since, table.c.erased).where(
            table.c.key_hash == subject_key(subject_id)
        )
    )
    return {(channel, purpose): tuple(rest) for channel, purpose, *rest in rows}


# --- computing -------------------------------------------------------------------------


def _row(key: bytes, pair: _Pair, state: Any, silenced: Sequence[Any], subject_id: uuid.UUID | None) -> dict[str, Any] | None:
    """A row, unless the key holds nothing for the pair. `silenced`: (since,
    erased) of each thing that may silence it, in the order a check reads them."""
    status, since = (state[0], state[1]) if state is not None and pair.needs_consent else (None, None)
    silenced_since = next((at for at, _ in silenced if at is not None), None)
    erased = any(flag for _, flag in silenced)
    if status is None and silenced_since is None and not erased:
        return None
    return {
        "key_hash": key, "channel": pair.channel, "purpose": pair.purpose, "status": status, "since": since,
        "silenced_since": silenced_since, "erased": erased, "subject_id": subject_id,
    }  # fmt: skip


def _subject_rows(session: Session, subject_ids: Sequence[uuid.UUID], pairs: Sequence[_Pair]) -> tuple[list[dict[str, Any]], set[bytes]]:
    """Every row of the keys of these people (those we hold, erased or not),
    and those keys: two round trips (people with their keys and what
    suppresses them; their consent states)."""
    subjects, ident, supp = Subject.__table__, Identifier.__table__, Suppression.__table__
    found = session.execute(
        sa.select(
            subjects.c.id, subjects.c.external_ref, subjects.c.erased_at, ident.c.kind, ident.c.value_hash, supp.c.created_at, supp.c.reason
        )
        .select_from(
            subjects.outerjoin(ident, ident.c.subject_id == subjects.c.id).outerjoin(supp, supp.c.value_hash == ident.c.value_hash)
        )
        .where(subjects.c.id.in_(subject_ids))
    ).all()
    if not found:
        return [], set()
    people: dict[uuid.UUID, tuple[str | None, datetime | None]] = {}
    held: dict[uuid.UUID, dict[str, bytes]] = {}
    suppressed: dict[bytes, tuple[datetime, bool]] = {}
    for subject_id, external_ref, erased_at, kind, value_hash, since, reason in found:
        people[subject_id] = (external_ref, erased_at)
        if kind is not None:
            held.setdefault(subject_id, {})[kind] = value_hash
        if since is not None:
            suppressed[value_hash] = (since, reason == ERASURE)
    states: dict[uuid.UUID, dict[tuple[str, str], tuple[str, datetime]]] = {}
    state = ConsentState.__table__
    for subject_id, channel, purpose, status, since in session.execute(
        sa.select(state.c.subject_id, state.c.channel, state.c.purpose, state.c.status, state.c.occurred_at).where(
            state.c.subject_id.in_(subject_ids)
        )
    ):
        states.setdefault(subject_id, {})[(channel, purpose)] = (status, since)
    refs = [ref for ref, _ in people.values() if ref is not None]
    ref_hashes: dict[str | None, bytes] = dict(zip(refs, identifier_hashes(EXTERNAL_REF, refs), strict=True))
    rows: list[dict[str, Any]] = []
    all_keys: set[bytes] = set()
    for subject_id, (external_ref, erased_at) in people.items():
        theirs = _person_rows(
            subject_id, erased_at, ref_hashes.get(external_ref), held.get(subject_id, {}), suppressed, states.get(subject_id, {}), pairs
        )
        rows += theirs[0]
        all_keys |= theirs[1]
    return rows, all_keys


_NOTHING = (None, False)


def _person_rows(
    subject_id: uuid.UUID,
    erased_at: datetime | None,
    ref_hash: bytes | None,
    own: dict[str, bytes],
    suppressed: dict[bytes, tuple[datetime, bool]],
    states: dict[tuple[str, str], tuple[str, datetime]],
    pairs: Sequence[_Pair],
) -> tuple[list[dict[str, Any]], set[bytes]]:
    """The rows of one person's keys (`own`: their identifiers' hashes by
    kind; `suppressed`: (since, by erasure) by hash), and those keys."""
    rows: list[dict[str, Any]] = []
    keys: list[tuple[str, bytes]] = [(SUBJECT_ID, subject_key(subject_id))]
    if ref_hash is not None:
        keys.append((EXTERNAL_REF, ref_hash))
    keys += sorted(own.items())
    if erased_at is None and not any(h in suppressed for h in own.values()):
        # Nothing silences them: a row per key for each purpose they chose (most people).
        for pair in pairs:
            state = states.get((pair.channel, pair.purpose))
            if state is not None and pair.needs_consent:
                rows += [row for _, key in keys if (row := _row(key, pair, state, (), subject_id)) is not None]
        return rows, {key for _, key in keys}
    for pair in pairs:
        state = states.get((pair.channel, pair.purpose))
        channel_hash = own.get(pair.channel_kind) if pair.channel_kind else None
        theirs = suppressed.get(channel_hash, _NOTHING) if channel_hash is not None else _NOTHING
        for kind, key in keys:
            if kind in KINDS:
                own_since, by_erasure = suppressed.get(key, _NOTHING)
                # Its own suppression silences the key's channel; an erasure, every channel.
                first = (own_since if kind == pair.channel_kind or by_erasure else None, by_erasure)
            else:
                first = (erased_at, erased_at is not None)
            silenced = [first] if kind == pair.channel_kind else [first, theirs]
            row = _row(key, pair, state, silenced, subject_id)
            if row is not None:
                rows.append(row)
    return rows, {key for _, key in keys}


def _loose_rows(session: Session, hashes: Sequence[bytes], pairs: Sequence[_Pair]) -> list[dict[str, Any]]:
    """The rows of suppressed keys no identifier holds: a bounce reported
    before the person signed up, the keys of an erased person."""
    held = set(session.scalars(sa.select(Identifier.value_hash).where(Identifier.value_hash.in_(hashes))))
    rows: list[dict[str, Any]] = []
    for value_hash, kind, since, reason in session.execute(
        sa.select(Suppression.value_hash, Suppression.kind, Suppression.created_at, Suppression.reason).where(
            Suppression.value_hash.in_(hashes)
        )
    ):
        if value_hash in held:
            continue
        by_erasure = reason == ERASURE
        for pair in pairs:
            if by_erasure or (kind in KINDS and kind == pair.channel_kind):
                row = _row(value_hash, pair, None, [(since, by_erasure)], None)
                if row is not None:
                    rows.append(row)
    return rows


def _write(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows, or replace those another writer put in meanwhile."""
    if not rows:
        return
    chosen = backend()
    table = Decision.__table__
    stmt = chosen.insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.key_hash, table.c.channel, table.c.purpose],
        set_={name: stmt.excluded[name] for name in COLUMNS[3:]},
    )
    for chunk in chunks(rows, 1000):
        session.execute(stmt, list(chunk))


# --- keeping it in step ----------------------------------------------------------------


def touch(session: Session | None = None, *, subject_ids: Iterable[uuid.UUID] = (), hashes: Iterable[bytes] = ()) -> None:
    """Mark people and keys whose answers this transaction may change: their
    rows are computed again before it commits."""
    session = session if session is not None else db.session()
    people, keys, _ = session.info.setdefault(_TOUCHED, (set(), set(), {}))
    people.update(s for s in subject_ids if s is not None)
    keys.update(h for h in hashes if h is not None)


def state_changed(subject_id: uuid.UUID, channel: str, purpose: str, status: str, since: datetime) -> None:
    """A person's consent state for one channel and purpose is now (status,
    since), and nothing else of theirs changed: before commit, only that
    pair's rows of their keys are written (a click costs two round trips, not
    a recomputation). The writer holds the person's lock (queries.lock_person,
    or the click's statement), so nobody changes their keys meanwhile."""
    session = db.session()
    people, _, changes = session.info.setdefault(_TOUCHED, (set(), set(), {}))
    if (subject_id, channel, purpose) in changes:  # changed twice: recompute them whole
        people.add(subject_id)
    changes[(subject_id, channel, purpose)] = (status, since)


def _touched_by_flush(session: Session, _context: Any) -> None:
    """Changes made through the ORM mark what they touch themselves."""
    people: set[uuid.UUID] = set()
    keys: set[bytes] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Subject):
            people.add(obj.id)
        elif isinstance(obj, Identifier):
            people.add(obj.subject_id)
            keys.add(obj.value_hash)
        elif isinstance(obj, Suppression):
            keys.add(obj.value_hash)
    if people or keys:
        touch(session, subject_ids=people, hashes=keys)


def _before_commit(session: Session) -> None:
    if not session.info.get(_TOUCHED):
        return
    session.flush()
    people, keys, changes = session.info.pop(_TOUCHED)
    done = refresh(session, subject_ids=people, hashes=keys) if people or keys else set()
    by_person: dict[uuid.UUID, list[tuple[str, str, str, datetime]]] = {}
    for (subject_id, channel, purpose), (status, since) in changes.items():
        if subject_id not in done:
            by_person.setdefault(subject_id, []).append((channel, purpose, status, since))
    if len(by_person) > _ONE_BY_ONE:
        refresh(session, subject_ids=by_person)
    else:
        for subject_id, changed in by_person.items():  # a person's own click, a consent recorded through the API
            _write_changes(subject_id, changed)


def _forget(session: Session, transaction: Any) -> None:  # committed or rolled back: nothing left to do
    if transaction.parent is None:
        session.info.pop(_TOUCHED, None)


def listen() -> None:
    """Keep the read model in step with every session's changes (sessions are
    shared by every app: listen once)."""
    for name, listener in (("after_flush", _touched_by_flush), ("before_commit", _before_commit), ("after_transaction_end", _forget)):
        if not sa.event.contains(Session, name, listener):
            sa.event.listen(Session, name, listener)


def lock_people(session: Session, subject_ids: Iterable[uuid.UUID]) -> None:
    """Where writers are not serialised already, lock these people's rows (as
    queries.lock_person() does, NO KEY UPDATE), in one order: two transactions
    computing the same person's rows run one after the other, the second
    seeing what the first committed. A writer that changes a person's consent
    state locks them first (queries.upsert_states), so the order is always the
    person, then their state: no deadlock with the one who clicks meanwhile."""
    if backend().serialises_writers:
        return
    ordered = sorted(set(subject_ids))
    for chunk in chunks(ordered, _CHUNK):
        session.execute(sa.select(Subject.id).where(Subject.id.in_(chunk)).order_by(Subject.id).with_for_update(key_share=True))


def refresh(session: Session, *, subject_ids: Collection[uuid.UUID] = (), hashes: Collection[bytes] = ()) -> set[uuid.UUID]:
    """Compute again the rows of these people and keys, in `session`'s
    transaction; the people whose rows it computed (holders of the keys too)."""
    table = Decision.__table__
    people, keys = set(subject_ids), set(hashes)
    # Whoever holds a touched key is touched; so are the keys a touched person
    # held before (an address they changed may still be suppressed).
    holders: dict[bytes, uuid.UUID] = {}
    seen_keys: set[bytes] = set()
    seen_people: set[uuid.UUID] = set()
    while keys - seen_keys or people - seen_people:
        new_keys, new_people = sorted(keys - seen_keys), sorted(people - seen_people)
        seen_keys |= set(new_keys)
        seen_people |= set(new_people)
        for chunk in chunks(new_keys, _CHUNK):
            found = session.execute(sa.select(Identifier.value_hash, Identifier.subject_id).where(Identifier.value_hash.in_(chunk)))
            holders.update((value_hash, subject_id) for value_hash, subject_id in found)
        people.update(holders.values())
        for chunk in chunks(new_people, _CHUNK):
            keys.update(session.scalars(sa.select(table.c.key_hash).where(table.c.subject_id.in_(chunk))))
    pairs = _pairs()
    # A key somebody holds is written with its holder's rows, below.
    for chunk in chunks(sorted(keys - holders.keys()), _CHUNK):
        session.execute(sa.delete(table).where(table.c.key_hash.in_(chunk)))
        _write(session, _loose_rows(session, chunk, pairs))
    for chunk in chunks(sorted(people), _CHUNK):
        lock_people(session, chunk)
        rows, held = _subject_rows(session, chunk, pairs)
        # Their rows, and those of a suppressed key they took up.
        session.execute(sa.delete(table).where(sa.or_(table.c.subject_id.in_(chunk), table.c.key_hash.in_(sorted(held)))))
        _write(session, rows)
    return people


# People whose consent state alone changed, one by one: statements built once,
# on the fast path (db/fast.py), two round trips each. More people than this:
# recomputed in chunks.
_ONE_BY_ONE = 8


@functools.cache
def _keys_statement() -> sa.Select[Any]:
    """(external ref, an identifier's hash or None) of one person, one row per identifier."""
    subjects, ident = Subject.__table__, Identifier.__table__
    return (
        sa.select(subjects.c.external_ref, ident.c.value_hash)
        .select_from(subjects.outerjoin(ident, ident.c.subject_id == subjects.c.id))
        .where(subjects.c.id == sa.bindparam("subject_id", type_=subjects.c.id.type))
    )


@functools.cache
def _upsert_statement(chosen: Backend, count: int) -> Any:
    """Write `count` rows' consent state, keeping what silences them: a key
    without a row for the pair was silenced by nothing (a silenced key has a
    row for every pair its silence covers)."""
    table = Decision.__table__
    rows = [{name: sa.bindparam(f"{name}_{i}", type_=table.c[name].type) for name in COLUMNS} for i in range(count)]
    stmt = chosen.insert(table).values(rows)
    return stmt.on_conflict_do_update(
        index_elements=[table.c.key_hash, table.c.channel, table.c.purpose],
        set_={"status": stmt.excluded.status, "since": stmt.excluded.since},
    )


def _write_changes(subject_id: uuid.UUID, changed: Sequence[tuple[str, str, str, datetime]]) -> None:
    """state_changed()'s rows, on the fast path: the person's keys, then one upsert."""
    found = fast.rows(_keys_statement(), {"subject_id": subject_id}, scope=WRITE)
    if not found:
        return
    external_ref = found[0][0]
    keys = [subject_key(subject_id), *(value_hash for _, value_hash in found if value_hash is not None)]
    if external_ref is not None:
        keys.append(identifier_hashes(EXTERNAL_REF, [external_ref])[0])
    pair_named = _pair_named()
    # Nothing silences these rows (or they would be there already): _row() leaves out
    # the purposes that need no consent, whose rows hold no state.
    values = [
        row
        for channel, purpose, status, since in changed
        for key in keys
        if (row := _row(key, pair_named[(channel, purpose)], (status, since), (), subject_id)) is not None
    ]
    for chunk in chunks(values, 64):
        params = {f"{name}_{i}": value for i, row in enumerate(chunk) for name, value in row.items()}
        fast.rows(_upsert_statement(backend(), len(chunk)), params, scope=WRITE)


def rebuild(*, session: Session | None = None, progress: Any = None) -> int:
    """Compute every row again from the ledger's state, the identifiers and
    the suppressions, a chunk of people or keys at a time, in the session's
    transaction; how many rows."""
    session = session if session is not None else db.session()
    table = Decision.__table__
    if session.get_bind().dialect.name == "postgresql":  # writers wait for the rebuild, rather than race it
        session.execute(sa.text("LOCK TABLE decisions IN EXCLUSIVE MODE"))
        # A rebuild follows rows written behind the service's back: with the
        # statistics from before them, 1M people planned a sequential scan of
        # the identifiers for each chunk of 500 (190 ms a chunk, not 3).
        session.execute(sa.text("ANALYZE subjects, identifiers, suppressions, consent_state"))
    session.execute(sa.delete(table))
    pairs = _pairs()
    written = 0
    after: uuid.UUID | None = None
    while True:
        stmt = sa.select(Subject.id).order_by(Subject.id).limit(_CHUNK)
        ids = list(session.scalars(stmt.where(Subject.id > after) if after is not None else stmt))
        if not ids:
            break
        rows, _ = _subject_rows(session, ids, pairs)
        _write(session, rows)
        written += len(rows)
        after = ids[-1]
        if progress is not None:
            progress(len(ids))
    last: bytes | None = None
    while True:
        by_hash = sa.select(Suppression.value_hash).order_by(Suppression.value_hash).limit(_CHUNK)
        hashes = list(session.scalars(by_hash.where(Suppression.value_hash > last) if last is not None else by_hash))
        if not hashes:
            break
        rows = _loose_rows(session, hashes, pairs)
        _write(session, rows)
        written += len(rows)
        last = hashes[-1]
        if progress is not None:
            progress(len(hashes))
    return written
