"""What a register's entry is keyed by, shared by the importer and the checks.

Number registers (TPS, CTPS, FPS, DNC) key an entry by the E.164 number's keyed
hash under the register's identifier kind, the same hash a person's phone or
fax is kept as, so a check probes with the hash it already holds.

The Mail Preference Service keys a record by its normalised postcode plus its
first address line (house and street); a person's postal address matches when
the same two parts come out of it. Several people may be listed at one
address: each record is also kept by a keyed hash of its name and address
(mail_record_hash), so that a delta can take away one of them alone.
"""

from __future__ import annotations

import re

from .. import channels
from ..subjects.identifiers import identifier_hash

# A UK postcode: outward code, optional space, inward code.
_POSTCODE = re.compile(r"\b([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][A-Z]{2})\b")
_NOT_WORD = re.compile(r"[^A-Z0-9]+")
MAIL_KEY_KIND = "mps_address"
MAIL_RECORD_KIND = "mps_record"


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
    return None if key is None else address_hash(key)


def address_hash(address_key: str) -> bytes:
    return identifier_hash(MAIL_KEY_KIND, address_key)


def mail_record_hash(address_key: str, name: str) -> bytes:
    """One MPS record: its address's key (mail_key) and the name it lists,
    letters and digits only, in capitals ("Mr J. Smith" and "MR J SMITH" are one)."""
    return identifier_hash(MAIL_RECORD_KIND, f"{address_key}|{_NOT_WORD.sub(' ', name.upper()).strip()}")
