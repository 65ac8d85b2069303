"""What a register's entry is keyed by, shared by the importer and the checks.

Number registers (TPS, CTPS, FPS, DNC) key an entry by the E.164 number's keyed
hash under the register's identifier kind, the same hash a person's phone or
fax is kept as, so a check probes with the hash it already holds.

The Mail Preference Service keys a record by its normalised postcode plus its
first address line (house and street); a person's postal address matches when
the same two parts come out of it.
"""

from __future__ import annotations

import re

from .. import channels
from ..subjects.identifiers import identifier_hash

# A UK postcode: outward code, optional space, inward code.
_POSTCODE = re.compile(r"\b([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][A-Z]{2})\b")
_NOT_WORD = re.compile(r"[^A-Z0-9]+")
MAIL_KEY_KIND = "mps_address"


def mail_key(address: str) -> str | None:
    """The key "POSTCODE|FIRST LINE" of a postal address, or None when it has no UK postcode."""
    try:
        canonical = channels.normalize("postal_address", address)
    except channels.InvalidIdentifier:
        return None
    found = list(_POSTCODE.finditer(canonical))
    if not found:
        return None
    postcode = f"{found[-1].group(1)} {found[-1].group(2)}"
    for line in canonical.split(", "):
        first = _NOT_WORD.sub(" ", _POSTCODE.sub("", line)).strip()
        if first:
            return f"{postcode}|{first}"
    return None


def mail_hash(address: str) -> bytes | None:
    key = mail_key(address)
    return None if key is None else identifier_hash(MAIL_KEY_KIND, key)
