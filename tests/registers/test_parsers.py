"""The parsers' fast path for well-formed national numbers agrees with phonenumbers."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from prefs_service.channels import phone, phone_fast
from prefs_service.registers import parsers


def reference(text: str, region: str) -> bytes | None:
    """What phonenumbers makes of a number, as channels/phone.py reads it."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).encode()


def uk_candidates(count: int) -> list[str]:
    rnd = random.Random(20261206)
    prefixes = ["01", "02", "03", "05", "07", "08", "09", "0", "00", "011", "0161", "0207", "0800", "07700", "01534", "01624", "0169"]
    out = []
    for _ in range(count):
        prefix = rnd.choice(prefixes)
        length = rnd.choice([9, 10, 11, 11, 11, 12])
        out.append(prefix + "".join(rnd.choice("0123456789") for _ in range(max(0, length - len(prefix)))))
    return out


def test_the_uk_fast_path_agrees_with_phonenumbers():
    accepted = 0
    for digits in uk_candidates(40_000):
        fast = phone_fast.UK.fast(digits.encode())
        if fast is not None:
            accepted += 1
            assert fast == reference(digits, "GB"), digits
        # Whatever path it takes, the reader's answer is phonenumbers' answer.
        assert phone_fast.UK.e164(digits.encode()) == reference(digits, "GB"), digits
    assert accepted > 5_000  # the fast path does serve most well-formed numbers


def test_the_us_fast_path_agrees_with_phonenumbers():
    rnd = random.Random(7)
    accepted = 0
    for _ in range(20_000):
        digits = "".join(rnd.choice("0123456789") for _ in range(10))
        fast = phone_fast.US.fast(digits.encode())
        if fast is not None:
            accepted += 1
            assert fast == reference(digits, "US"), digits
        assert phone_fast.US.e164(digits.encode()) == reference(digits, "US"), digits
    assert accepted > 1_000


@pytest.mark.parametrize("written", ["0207 3787244", "02073787244 ", "01635 506160", "07860 338653", "01534 123456", "01624 612345"])
def test_a_register_number_hashes_as_the_same_number_given_to_the_api(written):
    """The register's E.164 is the one channels/phone.py keeps for a person."""
    assert phone_fast.UK.e164(written.strip().encode()) == phone.normalize(written).encode()


@pytest.mark.parametrize(
    ("text", "masked"),
    [("0207 3787244", "0207 *******"), ("02073787244", "0207*******"), ("12345", "*****"), ("hello there", "hello there")],
)
def test_rejections_mask_digits(text, masked):
    assert parsers.mask(text) == masked
