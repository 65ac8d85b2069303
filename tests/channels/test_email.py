"""Email normalisation: the fast path for plain addresses agrees with email-validator."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from prefs_service import channels
from prefs_service.channels import email


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("  Jane.Doe@Example.COM ", "jane.doe@example.com"),
        ("o'brien+news@sub.example.co.uk", "o'brien+news@sub.example.co.uk"),
        ("Jürgen@Bücher.de", "jürgen@xn--bcher-kva.de"),
        ("user@XN--BCHER-KVA.DE", "user@xn--bcher-kva.de"),
    ],
)
def test_canonical_form(raw, canonical):
    assert email.normalize(raw) == canonical


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "plain",
        "a@b",
        "a..b@example.com",
        "a@example..com",
        "a@localhost",
        "a@host.test",
        "a@ex--ample.com",
        '"quoted"@example.com',
        "a@[127.0.0.1]",
        "a@" + "b" * 64 + ".com",
    ],
)
def test_refused(raw):
    with pytest.raises(channels.InvalidIdentifier):
        channels.normalize("email", raw)


def _slow_path(value: str) -> str | None:
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    return f"{result.local_part}@{result.ascii_domain}".lower()


ATOM = st.text(alphabet="abcXYZ019!#$%&'*+/=?^_`{|}~-", min_size=1, max_size=70)
LABEL = st.text(alphabet="abcXYZ019-", min_size=1, max_size=70)
TLD = st.sampled_from(["com", "uk", "TEST", "local", "c", "x1", "museum", "invalid", "example"]) | st.text("abcXYZ", min_size=1, max_size=8)


@settings(max_examples=2000, deadline=None)
@given(
    local=st.lists(ATOM, min_size=1, max_size=3).map(".".join),
    labels=st.lists(LABEL, min_size=1, max_size=3),
    tld=TLD,
    pad=st.sampled_from(["", " ", "  \t"]),
)
def test_fast_path_and_email_validator_agree(local, labels, tld, pad):
    address = f"{pad}{local}@{'.'.join([*labels, tld])}{pad}"
    expected = _slow_path(address)
    try:
        actual = email.normalize(address)
    except ValueError:
        actual = None
    assert actual == expected
