"""Appending to the consent ledger, and keeping the current state with it.

Every change is an immutable event; the current-state row of its person,
channel and purpose follows in the same transaction, but only where the event
wins (rules.wins): a late import of an old grant never undoes a later
withdrawal. A withdrawal that comes to decide its purpose is announced
(hooks.CONSENT_WITHDRAWN) in the same transaction, and so is every append
(hooks.LEDGER_RECORDED, for the metrics).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from .. import hooks
from ..clock import utcnow
from ..db.backend import backend
from ..errors import Invalid, NotFound
from ..ledger.leaves import evidence_columns
from ..subjects import refs as subject_refs
from ..subjects import service as subjects
from . import queries
from .events import API_SOURCES, EventInput, validate_batch
from .models import ConsentEvent
from .policies import policy_in_force
from .rules import WITHDRAWN, wins


def record(*, subject_id: uuid.UUID, event: EventInput, recorded_by: str) -> tuple[ConsentEvent, bool]:
    """Append one event and update the current state. Returns (event, applied):
    applied is False when a newer event already decides this purpose."""
    values = queries.append_event(_stamped(subject_id, event, recorded_by))
    _recorded({event.source: 1})
    applied = bool(_apply_states([(subject_id, event, values[0])]))
    # Not added to the session: the ledger is append-only.
    return ConsentEvent(**dict(zip(ConsentEvent.__table__.c.keys(), values, strict=True))), applied


def change_if_different(*, subject_id: uuid.UUID, event: EventInput, recorded_by: str) -> bool:
    """Record `event` only if it changes the current state (a repeated
    unsubscribe adds nothing to the ledger). Returns whether it did; NotFound
    if we hold nobody by that id. The paths people click: on a backend that
    can, one round trip (change_in_one_statement); elsewhere by reading first
    (change_by_reading). tests/consent/test_ledger.py holds the two equal."""
    if backend().data_modifying_ctes:
        return change_in_one_statement(subject_id=subject_id, event=event, recorded_by=recorded_by)
    return change_by_reading(subject_id=subject_id, event=event, recorded_by=recorded_by)


def change_by_reading(*, subject_id: uuid.UUID, event: EventInput, recorded_by: str) -> bool:
    """change_if_different() on any backend: lock the person (where writers are
    not serialised already), read the state, and append only if the event
    differs from it and wins over it."""
    queries.lock_person(subject_id)
    found = queries.status_of(subject_id, event.channel, event.purpose)
    if not found:
        raise NotFound("No subject with that id.")
    _, status, since = found[0]
    if status is not None and (status == event.status or not wins(event.occurred_at, event.status, since, status)):
        return False
    values = queries.append_event(_stamped(subject_id, event, recorded_by))
    _recorded({event.source: 1})
    return bool(_apply_states([(subject_id, event, values[0])]))


def change_in_one_statement(*, subject_id: uuid.UUID, event: EventInput, recorded_by: str) -> bool:
    """change_if_different() in one statement (data-modifying WITH): lock the
    person, change the state only where the event wins and differs, append the
    event only if it did. Concurrent clicks stay single: ON CONFLICT DO UPDATE
    waits for a state row another transaction is changing, then judges its
    newest version; the lock orders clicks with the preference center."""
    rows = queries.change_in_one_statement(_stamped(subject_id, event, recorded_by))
    if not rows:
        raise NotFound("No subject with that id.")
    changed = rows[0][1] is not None  # else the state already said so
    if changed:  # the event was appended
        _recorded({event.source: 1})
        _announce([(subject_id, event.channel, event.purpose, event.status)])
    return changed


def record_batch(
    *, items: Sequence[Mapping[str, Any]], recorded_by: str, allowed_sources: Collection[str] = API_SOURCES
) -> tuple[int, list[int]]:
    """All-or-nothing: every item valid, or Invalid listing the bad ones by index.

    Each item is {one key naming the person: value, channel, purpose, status,
    source, occurred_at?, policy_version?, evidence?}. Unknown identifiers and
    external refs create people. Nothing is recorded for a person we erased,
    whichever key names them, and they are never re-created. Returns
    (recorded, indexes skipped for that reason).
    """
    refs, events = validate_batch(items, allowed_sources=allowed_sources)
    erased = subject_refs.erased(refs)
    skipped = [i for i, ref in enumerate(refs) if ref in erased]
    subject_ids = subjects.resolve_many([ref for ref in refs if ref not in erased], actor=recorded_by)
    resolved: list[tuple[uuid.UUID, EventInput]] = []
    missing = {}
    for index, (ref, event) in enumerate(zip(refs, events, strict=True)):
        subject_id = subject_ids.get(ref)
        if ref in erased:
            continue
        if subject_id is None:
            missing[str(index)] = {"subject_id": ["no subject with that id"]}
        else:
            resolved.append((subject_id, event))
    if missing:
        raise Invalid(f"{len(missing)} of {len(items)} events name an unknown subject; nothing was recorded.", errors=missing)
    in_force = policy_in_force()
    rows = [_columns(subject_id, event, recorded_by, event.policy_version or in_force(event.occurred_at)) for subject_id, event in resolved]
    if rows:
        ids = queries.append_events(rows)
        _recorded(Counter(row["source"] for row in rows))
        _apply_states([(subject_id, event, event_id) for (subject_id, event), event_id in zip(resolved, ids, strict=True)])
    return len(rows), skipped


def _columns(subject_id: uuid.UUID, event: EventInput, recorded_by: str, policy_version: str | None) -> dict[str, Any]:
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
        # The transparency log's salted commitment to the evidence (ledger/leaves.py).
        **evidence_columns(event.evidence.ip, event.evidence.user_agent, event.evidence.note),
    }


def _stamped(subject_id: uuid.UUID, event: EventInput, recorded_by: str) -> dict[str, Any]:
    """Parameters of a statement that appends `event`, stamping the policy the
    caller named or else the one in force when it occurred."""
    columns = _columns(subject_id, event, recorded_by, None)
    del columns["policy_version"]
    return {**columns, "named_policy": event.policy_version, "policy_moment": event.occurred_at}


def _apply_states(entries: Sequence[tuple[uuid.UUID, EventInput, int]]) -> int:
    """Upsert the current state from new events; how many keys changed.

    Within the batch the winner per key is chosen here (the database cannot
    update one row twice in one statement); against stored rows the statement
    applies the same rule atomically, so concurrent writers cannot break it.
    """
    winners: dict[tuple[uuid.UUID, str, str], tuple[EventInput, int]] = {}
    for subject_id, event, event_id in entries:
        key = (subject_id, event.channel, event.purpose)
        held = winners.get(key)
        if held is None or wins(event.occurred_at, event.status, held[0].occurred_at, held[0].status):
            winners[key] = (event, event_id)
    rows: list[dict[str, Any]] = [
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
    changed = queries.upsert_states(rows)
    _announce(
        [
            (subject_id, channel, purpose, event.status)
            for (subject_id, channel, purpose), (event, event_id) in winners.items()
            if event_id in changed
        ]
    )
    return len(changed)


def _recorded(sources: Mapping[str, int]) -> None:
    """Events appended in this transaction, by source (for the metrics)."""
    hooks.emit(hooks.LEDGER_RECORDED, sources=sources)


def _announce(changes: Sequence[tuple[uuid.UUID, str, str, str]]) -> None:
    """Tell other domains what changed state: (subject, channel, purpose, new status)."""
    for subject_id, channel, purpose, status in changes:
        if status == WITHDRAWN:
            hooks.emit(hooks.CONSENT_WITHDRAWN, subject_id=subject_id, channel=channel, purpose=purpose)
