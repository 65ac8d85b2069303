"""channels/phone.py's (and fax.py's) fast path answers exactly as phonenumbers does."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from prefs_service import channels
from prefs_service.channels import phone_fast

SEED = 20261206


def reference(text: str) -> str | None:
    """The phonenumbers path alone, as channels/phone.py read numbers before the fast path."""
    text = text.strip()
    if not text or len(text) > 64:
        return None
    try:
        number = phonenumbers.parse(text, "GB")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def answer(kind: str, text: str) -> str | None:
    try:
        return channels.normalize(kind, text)
    except channels.InvalidIdentifier:
        return None


def _spaced(rnd: random.Random, text: str) -> str:
    """`text` with spaces dropped in at random places (and sometimes around it)."""
    out = "".join(c + (" " if rnd.random() < 0.15 else "") for c in text)
    return (" " if rnd.random() < 0.1 else "") + out + (" " if rnd.random() < 0.1 else "")


def _examples() -> list[str]:
    """phonenumbers' own example numbers of every type for the regions +44 and +1 share, written every way."""
    out = []
    for region in ("GB", "GG", "IM", "JE", "US", "CA", "PR", "JM", "AG"):
        for kind in range(11):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            for form in (phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.INTERNATIONAL):
                out.append(phonenumbers.format_number(number, form))
            out.append(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))
    return out


def candidates(count: int) -> list[str]:
    """Mostly near-valid numbers in the fast path's forms, some valid, some not, some in other forms."""
    rnd = random.Random(SEED)
    heads = [
        "+44",
        "+44 ",
        "+440",
        "+1",
        "+1 ",
        "+11",
        "0",
        "00",
        "01",
        "02",
        "07",
        "08",
        "0800",
        "07700",
        "01534",
        "01624",
        "+4420",
        "+447",
    ]
    heads += ["+44 1534", "+44 1624", "+1 264", "+1 684", "+1 876", "+1 416", "+1 202", "+33", "+", "44", "1", "(0)", "+44 (0)"]
    examples = _examples()
    out = list(examples)
    while len(out) < count:
        roll = rnd.random()
        if roll < 0.15:
            # An example with a digit changed, added or dropped.
            digits = list(rnd.choice(examples))
            spot = rnd.randrange(1, len(digits))
            action = rnd.choice(("change", "add", "drop"))
            if action == "change" and digits[spot].isdigit():
                digits[spot] = rnd.choice("0123456789")
            elif action == "add":
                digits.insert(spot, rnd.choice("0123456789"))
            elif action == "drop":
                del digits[spot]
            out.append("".join(digits))
            continue
        head = rnd.choice(heads)
        body = "".join(rnd.choice("0123456789") for _ in range(rnd.choice([6, 8, 9, 9, 10, 10, 10, 11, 12])))
        text = _spaced(rnd, head + body) if rnd.random() < 0.5 else head + body
        if rnd.random() < 0.03:
            spot = rnd.randrange(len(text) + 1)
            text = text[:spot] + rnd.choice("-.()x\t٣") + text[spot:]
        out.append(text)
    return out


def test_the_fast_path_answers_as_phonenumbers_does():
    served = 0
    for text in candidates(60_000):
        expected = reference(text)
        fast = phone_fast.e164(text.strip())
        if fast is not None:
            served += 1
            assert fast == expected, text
        # Whatever path it takes, the channel's answer (value or refusal) is phonenumbers'.
        assert answer("phone", text) == expected, text
    assert served > 3_000  # the fast path does serve the common forms (most random candidates are no number at all)


@pytest.mark.parametrize(
    "text",
    [
        "+442079460000",
        "+44 20 7946 0000",
        "020 7946 0000",
        "02079460000",
        "07700 900123",
        "+1 202 555 0142",
        "+12025550142",
        "+1 416 555 0123",
    ],
)
def test_phone_and_fax_agree_with_phonenumbers_on_common_forms(text):
    assert answer("phone", text) == answer("fax", text) == reference(text)
