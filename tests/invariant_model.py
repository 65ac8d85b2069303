"""The small model of the rules that tests/test_invariants.py holds the service to."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from prefs_service import channels

KINDS = ("email", "phone", "postal_address")  # the identifier kinds people get here, each its API field


@dataclass
class Person:
    """What the model holds about one person."""

    number: int
    id: str
    keys: dict[str, str]  # API field -> canonical value: email, phone, postal_address, external_ref
    name: str
    erased: bool = False
    # (channel, purpose) -> [(when, status, chosen on the preference page)]; `when` orders like occurred_at.
    events: dict[tuple[str, str], list[tuple[float, str, bool]]] = field(default_factory=dict)
    gpc_seen: bool = False  # a Global Privacy Control signal is in the ledger

    def __repr__(self) -> str:  # how a failing example names the person
        return f"person{self.number}"

    def status(self, pair) -> str | None:
        winner = self.deciding(pair)
        return winner[1] if winner else None

    def deciding(self, pair) -> tuple[float, str, bool] | None:
        history = self.events.get(pair)
        if not history:
            return None
        # (a): the newest wins; on a tie the withdrawal wins.
        return max(history, key=lambda e: (e[0], e[1] == "withdrawn"))

    def record(self, pair, when: float, status: str, *, on_preference_page: bool = False) -> None:
        self.events.setdefault(pair, []).append((when, status, on_preference_page))

    def ledger_size(self) -> int:
        return sum(len(h) for h in self.events.values())


class Model:
    def __init__(self):
        self.people: list[Person] = []
        self.suppressed: dict[tuple[str, str], str] = {}  # (kind, canonical value) -> reason
        self.erased_keys: set[tuple[str, str]] = set()  # (API field, value) of erased people
        self.erased_text: set[str] = set()  # plain text that must be gone
        self.used: set[tuple[str, str]] = set()  # (API field, value) of every key ever given
        self.strangers: list[str] = []  # suppressed addresses nobody held when suppressed
        self.clock = itertools.count(1)

    def now(self) -> float:
        """Self-service events happen now: later than any back-dated API event."""
        return 1e9 + next(self.clock)

    def answer(self, person: Person, pair) -> tuple[bool, str]:
        channel, purpose = pair
        if person.erased:
            return False, "erased"
        kind = channels.CHANNELS[channel].identifier_kind
        value = person.keys.get(kind) if kind in KINDS else None
        reason = self.suppressed.get((kind, value)) if value else None
        if reason is not None:
            return False, "erased" if reason == "erasure" else "suppressed"
        if not channels.CHANNELS[channel].purpose(purpose).needs_consent:
            return True, "transactional"
        status = person.status(pair)
        return (False, "no_consent") if status is None else (status == "granted", status)

    def keys_of(self, person: Person) -> dict[str, str]:
        return {"subject_id": person.id, **person.keys}
