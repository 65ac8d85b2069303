"""May we contact this person, on this channel, for this purpose?

Single checks, bulk checks and the current-state view all decide through
rules.decide(), so they agree whichever key names the person.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from .. import channels
from ..db import scopes
from ..errors import Invalid
from ..registers import DNC, screening
from ..subjects.identifiers import EXTERNAL_REF, KINDS, identifier_hashes
from ..subjects.models import Subject
from ..subjects.refs import CHECK_KEYS, SUBJECT_ID
from . import decisions, queries, rules
from .events import require_channel_purpose
from .queries import CheckShape
from .rules import CheckResult

_NOTHING_HELD: tuple[Any, ...] = (None, None, None, None)
# A check's keys, hashes, rows and answers are held for SLICE values at a time,
# not for a whole 10k bulk check: with four such checks at once in a worker,
# those were most of its memory (1M as 10k calls on SQLite under gunicorn: the
# workers peaked at 215-218 MB unsliced, 183-184 MB in slices of 2048). A 10k
# call in process took 70 ms unsliced and 72 ms sliced on SQLite (110 and 114
# on PostgreSQL, medians of five); on SQLite a statement binds 4096 keys at most.
SLICE = 2048


def check(*, channel: str, purpose: str, key: str, value: object) -> CheckResult:
    """May we contact the person named by `key`=`value` on `channel` for `purpose`?"""
    return check_many(channel=channel, purpose=purpose, key=key, values=[value])[0]


def check_many(*, channel: str, purpose: str, key: str, values: Sequence[object], with_since: bool = True) -> list[CheckResult]:
    """Answers in input order; an invalid value is answered `invalid`, not raised.

    This is the hot path of every send: one statement per batch of keys
    answers the consent state and every suppression that silences the person,
    and `with_since=False` skips the timestamps a bulk answer does not carry.
    Values are checked SLICE at a time.
    """
    if len(values) <= SLICE:
        return _check(channel=channel, purpose=purpose, key=key, values=values, with_since=with_since, from_tables=False)
    results: list[CheckResult] = []
    for start in range(0, len(values), SLICE):
        part = values[start : start + SLICE]
        results += _check(channel=channel, purpose=purpose, key=key, values=part, with_since=with_since, from_tables=False)
    return results


def check_from_tables(*, channel: str, purpose: str, key: str, values: Sequence[object]) -> list[CheckResult]:
    """check_many()'s answers computed from the tables themselves (identifiers,
    subjects, consent state, suppressions) rather than the read model: the
    reference tests hold the read model to, and the path register screening takes."""
    return _check(channel=channel, purpose=purpose, key=key, values=values, with_since=True, from_tables=True)


def _check(*, channel: str, purpose: str, key: str, values: Sequence[object], with_since: bool, from_tables: bool) -> list[CheckResult]:
    spec = require_channel_purpose(channel, purpose)
    if key not in CHECK_KEYS:
        raise Invalid("Unknown identifier type.", errors={"identifier_type": [f"must be one of: {', '.join(CHECK_KEYS)}"]})
    channel_kind = channels.CHANNELS[channel].identifier_kind
    lists = screening.lists_for(channel, marketing=spec.marketing)
    scope = scopes.current()
    canonicals: list[str | None] = []
    lookup = _lookup_keys(key, values, canonicals)
    if from_tables or (lists and key != channel_kind):
        # Registers screen the person's own identifier of the channel's kind: the tables give it.
        state, screened_by = _joined(key, lookup, channel, purpose, channel_kind, spec.needs_consent, with_since)
    else:
        # The read model: one primary-key probe per key (consent/decisions.py).
        # Named by the channel's identifier, registers screen the key itself;
        # they need only its holder (for DNC's exemption, screening.screen).
        lookup = decisions.probe_keys(key, lookup)
        wanted = {k for k in lookup if k is not None}
        # Only DNC's exemption asks who holds a listed number.
        with_subject = any(lst.register is DNC for lst in lists)
        rows = decisions.read(wanted, channel=channel, purpose=purpose, scope=scope, with_subject=with_subject, with_since=with_since)
        if with_subject:
            state, screened_by = {}, {}
            for row in rows:
                state[row[0]], screened_by[row[0]] = row[1:5], (row[5], None, None)
        else:
            state, screened_by = {row[0]: row[1:] for row in rows}, {}

    if with_since:
        results = [_decide(spec.needs_consent, state.get(k, _NOTHING_HELD)) if k is not None else rules.INVALID for k in lookup]
        return _screened(results, lists, lookup, canonicals, key, channel_kind, screened_by) if lists else results
    # Without timestamps an answer is one of a handful: decide each once.
    decided: dict[tuple[Any, ...], CheckResult] = {}
    results = []
    for k in lookup:
        if k is None:
            results.append(rules.INVALID)
            continue
        held = state.get(k, _NOTHING_HELD)
        kind = (held[0], held[2] is None, bool(held[3]))
        result = decided.get(kind)
        if result is None:
            result = decided[kind] = _without_since(_decide(spec.needs_consent, held))
        results.append(result)
    return _screened(results, lists, lookup, canonicals, key, channel_kind, screened_by) if lists else results


def _joined(
    key: str, lookup: list[Any], channel: str, purpose: str, channel_kind: str | None, needs_consent: bool, with_since: bool
) -> tuple[dict[Any, tuple[Any, ...]], dict[Any, tuple[Any, ...]]]:
    """The state of each key from the tables themselves, with what the
    national registers screen: (status, since, silenced since, erased) and
    (subject id, channel identifier's hash, its value) by lookup key."""
    shape = CheckShape(key, channel_kind, needs_consent, with_since, screen=channel_kind is not None)
    scope = scopes.current()
    keys = list({k for k in lookup if k is not None})
    state: dict[Any, tuple[Any, ...]] = {}
    screened_by: dict[Any, tuple[Any, ...]] = {}
    for row in queries.check_rows(shape, keys, channel=channel, purpose=purpose, scope=scope):
        state[row[0]], screened_by[row[0]] = row[1:5], row[5:]
    # A key we hold nobody by may still be suppressed: a bounce reported before
    # they signed up, or a key of a person we erased (an erased person's
    # external ref is kept only as a suppressed hash).
    unknown = [k for k in keys if k not in state] if key != SUBJECT_ID else []
    hashes = (
        dict(zip(identifier_hashes(EXTERNAL_REF, unknown), unknown, strict=True))
        if unknown and not shape.own_kind
        else {k: k for k in unknown}
    )
    for value_hash, (since, erased) in queries.suppressions(hashes, scope=scope).items():
        if erased or shape.own_counts:
            state[hashes[value_hash]] = (None, None, since, erased)
    return state, screened_by


def _screened(
    results: list[CheckResult],
    lists: Sequence[screening.CurrentList],
    lookup: list[Any],
    canonicals: list[str | None],
    key: str,
    channel_kind: str | None,
    held: dict[Any, tuple[Any, ...]],
) -> list[CheckResult]:
    """`results` once the national registers covering the channel are heard.

    Named by the channel's own identifier, the value given is screened (held
    or not); named otherwise, the person's identifier of the channel's kind.
    Only answers a register can change are screened (rules.with_registers).
    An identifier no register can key (an address without a UK postcode) is
    not: the Mail Preference Service, the only register keyed that way, never
    goes stale."""
    assert channel_kind is not None
    speak_to = rules.REGISTERS_SPEAK_TO
    by_mail_key = channel_kind == "postal_address"
    holders = {k: row[0] for k, row in held.items() if row[0] is not None}
    if key == channel_kind and not by_mail_key:
        # A number's hash is its register key: the lookup key itself (a hash wherever its canonical form is not None).
        to_screen = {k: c for k, c, result in zip(lookup, canonicals, results, strict=True) if c is not None and result.reason in speak_to}
        said = screening.screen(lists, to_screen, holders)
    else:
        pairs: Iterator[tuple[Any, str]]
        if key == channel_kind:
            pairs = (
                (k, canonical)
                for k, canonical, result in zip(lookup, canonicals, results, strict=True)
                if canonical is not None and result.reason in speak_to
            )
        else:
            open_to_registers = {k for k, result in zip(lookup, results, strict=True) if result.reason in speak_to}
            pairs = ((k, value) for k, (_, _, value) in held.items() if value is not None and k in open_to_registers)
        register_key_of: dict[Any, bytes] = {}
        by_key: dict[bytes, str] = {}
        holder_of: dict[bytes, uuid.UUID] = {}
        for k, canonical in pairs:
            register_key = screening.screen_key(channel_kind, canonical) if by_mail_key else held[k][1]
            if register_key is not None:
                register_key_of[k], by_key[register_key] = register_key, canonical
                if k in holders:
                    holder_of[register_key] = holders[k]
        by_register_key = screening.screen(lists, by_key, holder_of)
        said = {k: verdict for k, register_key in register_key_of.items() if (verdict := by_register_key.get(register_key)) is not None}
    if not said:
        return results
    warn_only = screening.warn_only()
    # A bulk answer is one of a handful (no timestamps): decide each pair once,
    # by identity (both are shared objects; hashing their fields costs more).
    decided: dict[tuple[int, int], CheckResult] = {}
    out = []
    for k, result in zip(lookup, results, strict=True):
        verdict = said.get(k)
        if verdict is not None:
            pair = (id(result), id(verdict))
            screened = decided.get(pair)
            if screened is None:
                screened = decided[pair] = rules.with_registers(
                    result, listed=verdict.listed, exempt=verdict.exempt, stale=verdict.stale, warn_only=warn_only
                )
            result = screened
        out.append(result)
    return out


def register_fields(result: CheckResult) -> dict[str, Any]:
    """The answer's register fields, present only when a register had its say."""
    if result.register is None:
        return {}
    if result.register_stale:
        return {"register": result.register, "register_stale": True}
    return {"register": result.register}


def _decide(needs_consent: bool, held: tuple[Any, ...]) -> CheckResult:
    status, since, silenced_since, erased = held
    return rules.decide(needs_consent=needs_consent, status=status, since=since, silenced_since=silenced_since, erased=bool(erased))


def _without_since(result: CheckResult) -> CheckResult:
    return result if result.since is None else CheckResult(result.allowed, result.reason)


def _lookup_keys(key: str, values: Sequence[object], canonicals: list[str | None]) -> list[Any]:
    """What each value is looked up by: an identifier hash, a subject id or an
    external ref; None for a value that cannot be one. An identifier's
    canonical forms are appended to `canonicals`, in order."""
    if key in KINDS:
        normalize = channels.NORMALIZERS[key]
        for value in values:
            try:
                canonicals.append(normalize(value) if isinstance(value, str) else None)
            except ValueError:
                canonicals.append(None)
        hashes = iter(identifier_hashes(key, [c for c in canonicals if c is not None]))
        return [next(hashes) if c is not None else None for c in canonicals]
    if key == SUBJECT_ID:
        lookup: list[Any] = []
        for value in values:
            try:
                lookup.append(uuid.UUID(value) if isinstance(value, str) else None)
            except ValueError:
                lookup.append(None)
        return lookup
    return [v if isinstance(v, str) and v else None for v in values]


def current(*, subject: Subject) -> list[dict[str, Any]]:
    """Every channel × purpose for the person, with its state and the check's answer."""
    states = queries.states_of(subject.id)
    decided = decisions.of_subject(subject.id)  # the read model, by the subject id: what check() answers
    out = []
    for channel, purpose in channels.all_purposes():
        spec = channels.CHANNELS[channel]
        state = states.get((channel, purpose))
        needs_consent = spec.purpose(purpose).needs_consent  # type: ignore[union-attr]  # all_purposes() names only real ones
        verdict = _decide(needs_consent, decided.get((channel, purpose), _NOTHING_HELD))
        marketing = spec.purpose(purpose).marketing  # type: ignore[union-attr]  # all_purposes() names only real ones
        if verdict.reason in (rules.GRANTED, rules.NO_CONSENT.reason) and screening.lists_for(channel, marketing=marketing):
            verdict = check(channel=channel, purpose=purpose, key=SUBJECT_ID, value=str(subject.id))  # the registers speak
        out.append(
            {
                **register_fields(verdict),
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
