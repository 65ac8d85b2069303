"""May we contact this person, on this channel, for this purpose?

Single checks, bulk checks and the current-state view all decide through
rules.decide(), so they agree whichever key names the person.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .. import channels
from ..db import scopes
from ..errors import Invalid
from ..subjects.identifiers import EXTERNAL_REF, KINDS, identifier_hashes
from ..subjects.models import Subject
from ..subjects.refs import CHECK_KEYS, SUBJECT_ID
from . import queries, rules
from .events import require_channel_purpose
from .queries import CheckShape
from .rules import CheckResult

_NOTHING_HELD: tuple[Any, ...] = (None, None, None, None)


def check(*, channel: str, purpose: str, key: str, value: object) -> CheckResult:
    """May we contact the person named by `key`=`value` on `channel` for `purpose`?"""
    return check_many(channel=channel, purpose=purpose, key=key, values=[value])[0]


def check_many(*, channel: str, purpose: str, key: str, values: Sequence[object], with_since: bool = True) -> list[CheckResult]:
    """Answers in input order; an invalid value is answered `invalid`, not raised.

    This is the hot path of every send: one statement per batch of keys
    answers the consent state and every suppression that silences the person,
    and `with_since=False` skips the timestamps a bulk answer does not carry.
    """
    spec = require_channel_purpose(channel, purpose)
    if key not in CHECK_KEYS:
        raise Invalid("Unknown identifier type.", errors={"identifier_type": [f"must be one of: {', '.join(CHECK_KEYS)}"]})
    shape = CheckShape(key, channels.CHANNELS[channel].identifier_kind, spec.needs_consent, with_since)
    scope = scopes.current()
    lookup = _lookup_keys(key, values)
    keys = list({k for k in lookup if k is not None})
    state: dict[Any, tuple[Any, ...]] = {
        row[0]: row[1:] for row in queries.check_rows(shape, keys, channel=channel, purpose=purpose, scope=scope)
    }

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

    if with_since:
        return [_decide(spec.needs_consent, state.get(k, _NOTHING_HELD)) if k is not None else rules.INVALID for k in lookup]
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
    return results


def _decide(needs_consent: bool, held: tuple[Any, ...]) -> CheckResult:
    status, since, silenced_since, erased = held
    return rules.decide(needs_consent=needs_consent, status=status, since=since, silenced_since=silenced_since, erased=bool(erased))


def _without_since(result: CheckResult) -> CheckResult:
    return result if result.since is None else CheckResult(result.allowed, result.reason)


def _lookup_keys(key: str, values: Sequence[object]) -> list[Any]:
    """What each value is looked up by: an identifier hash, a subject id or an
    external ref; None for a value that cannot be one."""
    if key in KINDS:
        normalize = channels.NORMALIZERS[key]
        canonicals: list[str | None] = []
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
    own = {i.kind: i.value_hash for i in subject.identifiers}
    suppressed = queries.suppressions(set(own.values()), scope=scopes.current())
    out = []
    for channel, purpose in channels.all_purposes():
        spec = channels.CHANNELS[channel]
        state = states.get((channel, purpose))
        # A suppression names an identifier: it silences the channel that uses
        # it. An erasure silences every channel.
        own_hash = own.get(spec.identifier_kind) if spec.identifier_kind else None
        silenced_since: datetime | None = None
        erased = False
        if subject.erased_at is not None:
            silenced_since, erased = subject.erased_at, True
        elif own_hash in suppressed:
            silenced_since, erased = suppressed[own_hash]
        needs_consent = spec.purpose(purpose).needs_consent  # type: ignore[union-attr]  # all_purposes() names only real ones
        verdict = rules.decide(
            needs_consent=needs_consent,
            status=state.status if state else None,
            since=state.occurred_at if state else None,
            silenced_since=silenced_since,
            erased=erased,
        )
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
