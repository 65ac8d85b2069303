"""National do-not-contact registers: which exist, which channel each covers,
and how old a list may grow before checks stop trusting it.

Entries are kept only as keyed hashes of the same canonical identifiers the
rest of the service hashes (subjects/identifiers.py), so a check probes a
register with the hash it already holds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Register:
    name: str
    label: str
    channel: str  # the contact channel whose marketing it silences
    identifier_kind: str  # which identifier its entries are hashed as
    # Numbers it covers start with this E.164 prefix (None: any identifier of its kind).
    country_prefix: str | None
    # The rule for screening: a list older than this no longer counts (None: no rule).
    stale_after_days: int | None


TPS = Register("tps", "Telephone Preference Service (UK)", "phone", "phone", "+44", 28)
CTPS = Register("ctps", "Corporate Telephone Preference Service (UK)", "phone", "phone", "+44", 28)
FPS = Register("fps", "Fax Preference Service (UK)", "fax", "fax", "+44", 28)
MPS = Register("mps", "Mail Preference Service (UK)", "mail", "postal_address", None, None)
DNC = Register("dnc", "National Do Not Call Registry (US)", "phone", "phone", "+1", 31)

REGISTERS: dict[str, Register] = {r.name: r for r in (TPS, CTPS, FPS, MPS, DNC)}


def covering(channel: str) -> tuple[Register, ...]:
    """The registers a marketing check on `channel` consults."""
    return tuple(r for r in REGISTERS.values() if r.channel == channel)
