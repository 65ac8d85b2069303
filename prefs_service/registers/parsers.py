"""Reading the registers' files, one line at a time, into keyed hashes.

Each parser takes the file's lines (bytes, as read) and yields, per line,
either an `Entry` (line number, the entry's keyed hash, its MPS flag, whether
a delta removes it) or a `Rejection` (line number, a reason). A rejection never
carries a number's digits in full, nor any part of an address: the report of
rejected lines goes to files and logs.

Formats (README "Registers"):
- TPS, CTPS, FPS: one UK number per line in national format; the published
  files are 12-character records ending CRLF, with or without a space after
  the dialling code ("0207 3787244", "02073787244 ").
- DNC: a 10-digit number, or "NPA,NXXXXXX" (area code, then the rest).
- MPS: the published CSV (Original or Personal layout): flag (P = do not mail,
  X = deceased; the Original file's R is read as P), date of request
  DDMMCCYY, two inclusion fields, prefix, forename or initials, surname,
  suffix, address lines 1-3, town, county, postcode[, DPS].

Deltas: a line starting with "-" is a removal, in every format (a "+" may
mark an addition). A DNC change-list line may instead end in the FTC change
list's add/delete field: ",A" adds, ",D" removes. In a full import a removal
marker is a rejected line.

Numbers become E.164 as channels/phone.py does (phonenumbers, region GB; US
for DNC). Well-formed national numbers take a fast path that checks the
number against the same numbering-plan patterns phonenumbers validates with
and builds E.164 directly; anything else goes through phonenumbers itself
(channels/phone_fast.py, shared with channels/phone.py;
tests/registers/test_parsers.py checks that both agree).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from typing import NamedTuple

from flask import current_app

from ..channels.phone_fast import UK, US
from ..subjects.identifiers import _HASH_LABELS
from . import REGISTERS, keys


class Entry(NamedTuple):
    line_no: int
    key_hash: bytes
    flag: str | None
    remove: bool
    record: bytes | None = None  # MPS: the record's own hash (name and address), keys.mail_record_hash


class Rejection(NamedTuple):
    line_no: int
    reason: str


Parsed = Entry | Rejection
Hasher = Callable[[bytes], bytes]


def mask(text: str) -> str:
    """`text` with all but its first four characters' digits hidden, cut to 24 characters."""
    text = text[:24]
    return text[:4] + re.sub(r"[0-9]", "*", text[4:]) if len(text) > 6 else re.sub(r"[0-9]", "*", text)


# --- numbers -----------------------------------------------------------------------------


# The fast path and its readers live in channels/phone_fast.py, shared with channels/phone.py.


def hasher(kind: str) -> Hasher:
    """HMAC-SHA256 of b"kind:" + value under the identifier key, from the shared
    keyed copy, as subjects.identifiers.identifier_hashes does."""
    base = current_app.extensions["prefs.identifier_hmac"]
    prefix = f"{_HASH_LABELS.get(kind, kind)}:".encode()

    def digest(value: bytes) -> bytes:
        mac = base.copy()
        mac.update(prefix + value)
        out: bytes = mac.digest()
        return out

    return digest


def plain_hasher(key: bytes, kind: str) -> Hasher:
    """The same hash from the key itself, outside an app (bench/)."""
    prefix = f"{_HASH_LABELS.get(kind, kind)}:".encode()
    return lambda value: hmac.digest(key, prefix + value, hashlib.sha256)


def _marker(raw: bytes) -> tuple[bytes, bool | None]:
    """The line without its delta marker, and True (remove), False (add) or None (unmarked)."""
    if raw[:1] == b"-":
        return raw[1:], True
    if raw[:1] == b"+":
        return raw[1:], False
    return raw, None


def parse_uk_numbers(lines: Iterable[bytes], digest: Hasher, *, delta: bool) -> Iterator[Parsed]:
    """TPS, CTPS, FPS."""
    fast, slow = UK.fast, UK.e164
    for line_no, line in enumerate(lines, 1):
        raw = line.strip()
        if not raw:
            continue
        raw, marked = _marker(raw)
        if marked is not None and not delta:
            yield Rejection(line_no, "an addition or removal marker outside a delta import")
            continue
        digits = raw.replace(b" ", b"")
        e164 = fast(digits) if digits.isdigit() else None
        if e164 is None:
            e164 = slow(raw.strip())
        if e164 is None or not e164.startswith(b"+44"):
            yield Rejection(line_no, f"not a valid UK number: {mask(raw.decode('ascii', 'replace'))}")
            continue
        yield Entry(line_no, digest(e164), None, bool(marked))


_DNC_CHANGE = {b"A": False, b"D": True}


def parse_dnc(lines: Iterable[bytes], digest: Hasher, *, delta: bool) -> Iterator[Parsed]:
    """The National Do Not Call Registry's full or change list (flat text)."""
    for line_no, line in enumerate(lines, 1):
        raw = line.strip()
        if not raw:
            continue
        raw, marked = _marker(raw)
        fields = [f.strip() for f in raw.split(b",")]
        if len(fields) > 1 and fields[-1].upper() in _DNC_CHANGE:
            if marked is not None:
                yield Rejection(line_no, "both a leading marker and a change field")
                continue
            marked = _DNC_CHANGE[fields.pop().upper()]
        if marked is not None and not delta:
            yield Rejection(line_no, "an addition or removal marker outside a delta import")
            continue
        if len(fields) == 2 and len(fields[0]) == 3 and len(fields[1]) == 7:
            digits = fields[0] + fields[1]
        elif len(fields) == 1 and len(fields[0]) == 10:
            digits = fields[0]
        else:
            yield Rejection(line_no, f"expected 10 digits or NPA,NXXXXXX: {mask(raw.decode('ascii', 'replace'))}")
            continue
        e164 = US.e164(digits) if digits.isdigit() else None
        if e164 is None or not e164.startswith(b"+1"):
            yield Rejection(line_no, f"not a valid US number: {mask(raw.decode('ascii', 'replace'))}")
            continue
        yield Entry(line_no, digest(e164), None, bool(marked))


_MPS_FLAGS = {"P": "P", "R": "P", "X": "X"}
_MPS_NAME = slice(4, 8)  # prefix, forename or initials, surname, suffix
_MPS_ADDRESS = slice(8, 14)  # address lines 1-3, town, county, postcode


def _mps_date(text: str) -> bool:
    if len(text) != 8 or not text.isdigit():
        return False
    try:
        date(int(text[4:]), int(text[2:4]), int(text[:2]))
    except ValueError:
        return False
    return True


def parse_mps(lines: Iterable[bytes], _digest: Hasher, *, delta: bool) -> Iterator[Parsed]:
    """The Mail Preference Service's CSV; a record is keyed by postcode and first address line."""
    for line_no, line in enumerate(lines, 1):
        text = line.decode("utf-8", "replace").strip()
        if not text:
            continue
        marked: bool | None = None
        if text[:1] in "-+":
            text, marked = text[1:], text[0] == "-"
        if marked is not None and not delta:
            yield Rejection(line_no, "an addition or removal marker outside a delta import")
            continue
        try:
            fields = next(csv.reader([text]))
        except (csv.Error, StopIteration):
            yield Rejection(line_no, "not a CSV record")
            continue
        if len(fields) not in (14, 15):
            yield Rejection(line_no, f"expected 14 or 15 fields, found {len(fields)}")
            continue
        flag = _MPS_FLAGS.get(fields[0].strip().upper())
        if flag is None:
            yield Rejection(line_no, "the flag is not P (do not mail) or X (deceased)")
            continue
        if not _mps_date(fields[1].strip()):
            yield Rejection(line_no, "the date is not DDMMCCYY")
            continue
        address = ", ".join(part.strip() for part in fields[_MPS_ADDRESS] if part.strip())
        address_key = keys.mail_key(address) if address else None
        if address_key is None:
            yield Rejection(line_no, "no address line with a UK postcode")
            continue
        name = " ".join(part.strip() for part in fields[_MPS_NAME])
        yield Entry(line_no, keys.address_hash(address_key), flag, bool(marked), keys.mail_record_hash(address_key, name))


PARSERS = {"tps": parse_uk_numbers, "ctps": parse_uk_numbers, "fps": parse_uk_numbers, "dnc": parse_dnc, "mps": parse_mps}


def parse(register: str, lines: Iterable[bytes], *, delta: bool, digest: Hasher | None = None) -> Iterator[Parsed]:
    """Entries and rejections of a register's file, line by line."""
    kind = REGISTERS[register].identifier_kind
    return PARSERS[register](lines, digest or hasher(kind), delta=delta)
