"""Contact channels: what identifies a person on each, and which purposes exist.

Each channel module normalises and validates its own identifier; this package
ties them into one registry that the consent rules read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import email, fax, mail, partner, phone, profile


class InvalidIdentifier(ValueError):
    """The value cannot be an identifier of this kind; the message says why."""


@dataclass(frozen=True)
class Purpose:
    name: str
    label: str
    marketing: bool = True
    # Opt-in purposes: marketing, and other uses the person must agree to first.
    needs_consent: bool = True


@dataclass(frozen=True)
class Channel:
    name: str
    label: str
    # Which identifier a sender uses on this channel, and so which one a
    # suppression is checked against. The partner channel has none of its own.
    identifier_kind: str | None
    purposes: tuple[Purpose, ...]

    def purpose(self, name: str) -> Purpose | None:
        return next((p for p in self.purposes if p.name == name), None)

    @property
    def purpose_names(self) -> list[str]:
        return [p.name for p in self.purposes]


def _declare(module) -> Channel:
    return Channel(
        name=module.NAME,
        label=module.LABEL,
        identifier_kind=module.IDENTIFIER_KIND,
        purposes=tuple(
            Purpose(name, label, marketing, marketing or name in getattr(module, "NEEDS_CONSENT", ()))
            for name, label, marketing in module.PURPOSES
        ),
    )


CHANNELS: dict[str, Channel] = {c.name: c for c in map(_declare, (email, phone, fax, mail, partner, profile))}

# Identifier kinds and the function that turns raw input into the canonical form
# that is hashed. Each raises InvalidIdentifier with a reason a person can act on.
NORMALIZERS: dict[str, Callable[[str], str]] = {
    "email": email.normalize,
    "phone": phone.normalize,
    "fax": fax.normalize,
    "postal_address": mail.normalize,
}


def normalize(kind: str, value) -> str:
    """Canonical form of an identifier of `kind`, or InvalidIdentifier."""
    if not isinstance(value, str):
        raise InvalidIdentifier(f"{kind} must be a string")
    try:
        return NORMALIZERS[kind](value)
    except ValueError as exc:
        raise InvalidIdentifier(str(exc)) from None


def all_purposes() -> list[tuple[str, str]]:
    return [(c.name, p.name) for c in CHANNELS.values() for p in c.purposes]
