"""Telephone numbers: E.164, parsed with phonenumbers (default region GB).

Well-formed `+44…`, `+1…` and UK national `0…` numbers take phone_fast's
path (the same numbering plan, checked without phonenumbers' per-call cost);
its answer is always phonenumbers' answer."""

from __future__ import annotations

import phonenumbers

from . import phone_fast

NAME = "phone"
LABEL = "Telephone"
IDENTIFIER_KIND = "phone"
PURPOSES = (("marketing", "Marketing calls", True),)
DEFAULT_REGION = "GB"


def normalize(value: str) -> str:
    value = value.strip()
    if not value or len(value) > 64:
        raise ValueError("not a valid telephone number: expected up to 64 characters such as +44 20 7946 0000")
    found = phone_fast.e164(value)
    if found is not None:
        return found
    try:
        number = phonenumbers.parse(value, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise ValueError("not a valid telephone number: expected a number such as +44 20 7946 0000") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid telephone number: no such number in its numbering plan")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
