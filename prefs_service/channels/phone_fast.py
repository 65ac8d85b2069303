"""A fast path to E.164 for well-formed UK and North American numbers.

`phonenumbers.parse` + `is_valid_number` cost ~65-130 µs a number, most of a
bulk check of 10,000 phone numbers, and of a register import. For the common
well-formed inputs this module checks the number against the same
numbering-plan patterns phonenumbers validates with (its own GB and US
metadata, compiled into one regex per length of national significant number)
and builds E.164 directly. It only ever says yes: anything it does not accept
goes through phonenumbers itself, whose answer then stands, so the result is
always phonenumbers' result (tests/channels/test_phone_fast.py and
tests/registers/test_parsers.py compare them on random candidates).

Used by channels/phone.py (and so fax.py) and registers/parsers.py.
"""

from __future__ import annotations

import re

import phonenumbers


def _desc_pattern(desc: phonenumbers.PhoneNumberDesc | None) -> str | None:
    return desc.national_number_pattern if desc is not None and desc.national_number_pattern else None


def _plan(region: str) -> dict[int, re.Pattern[bytes]]:
    """Per length of national significant number, one pattern that matches
    exactly the numbers phonenumbers' type check finds valid for `region`:
    the general description, and any one number type allowing that length."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    assert metadata is not None and metadata.general_desc is not None
    general = metadata.general_desc
    types = [
        metadata.premium_rate,
        metadata.toll_free,
        metadata.shared_cost,
        metadata.voip,
        metadata.personal_number,
        metadata.pager,
        metadata.uan,
        metadata.voicemail,
        metadata.fixed_line,
        metadata.mobile,
    ]
    plan = {}
    for length in general.possible_length:
        alternatives = [
            f"(?:{pattern})"
            for desc in types
            if desc is not None and (pattern := _desc_pattern(desc)) and (not desc.possible_length or length in desc.possible_length)
        ]
        general_pattern = _desc_pattern(general)
        if alternatives and general_pattern:
            plan[length] = re.compile(f"(?=(?:{general_pattern})$)(?:{'|'.join(alternatives)})$".encode())
    return plan


class NumberReader:
    """Numbers of one country (its main region's plan) to E.164, as bytes."""

    def __init__(self, region: str, country_code: str, trunk_prefix: bytes | None):
        self.region = region
        self.country_code = country_code.encode()
        self.country = b"+" + self.country_code
        self.trunk_prefix = trunk_prefix
        self.plan = _plan(region)

    def significant(self, digits: bytes) -> bytes | None:
        """E.164 for a national significant number (ASCII digits) the plan accepts, else None (not a verdict)."""
        if digits[:1] == b"0":
            return None  # a trunk prefix after the country code: phonenumbers' own rules decide
        pattern = self.plan.get(len(digits))
        if pattern is not None and pattern.match(digits):
            return self.country + digits
        return None

    def fast(self, digits: bytes) -> bytes | None:
        """E.164 for a well-formed national number (ASCII digits) the plan accepts, else None (not a verdict)."""
        if self.trunk_prefix is not None:
            if not digits.startswith(self.trunk_prefix) or digits.startswith(self.trunk_prefix * 2):
                return None
            digits = digits[len(self.trunk_prefix) :]
        pattern = self.plan.get(len(digits))
        if pattern is not None and pattern.match(digits):
            return self.country + digits
        return None

    def e164(self, text: bytes) -> bytes | None:
        """E.164 of a national number as written, or None when phonenumbers finds it invalid."""
        digits = text.replace(b" ", b"")
        if digits.isdigit():
            found = self.fast(digits)
            if found is not None:
                return found
        try:
            number = phonenumbers.parse(text.decode("ascii", "replace"), self.region)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_valid_number(number):
            return None
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).encode()


UK = NumberReader("GB", "44", b"0")
US = NumberReader("US", "1", None)


def e164(value: str) -> str | None:
    """E.164 for `value` (stripped) when it is a well-formed `+44…` or `+1…`
    number, or a UK national `0…` one, with or without spaces, and its plan
    accepts it; None otherwise, which is not a verdict: ask phonenumbers
    (default region GB, as channels/phone.py does)."""
    if not value.isascii():
        return None
    compact = value.replace(" ", "").encode()
    if compact[:1] == b"+":
        digits = compact[1:]
        if not digits.isdigit():
            return None
        if digits[:2] == UK.country_code:
            found = UK.significant(digits[2:])
        elif digits[:1] == US.country_code:
            found = US.significant(digits[1:])
        else:
            return None
    elif compact[:1] == b"0" and compact.isdigit():
        found = UK.fast(compact)
    else:
        return None
    return found.decode() if found is not None else None
