from __future__ import annotations

import pytest

from prefs_service import channels


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [("020 7946 0000", "+442079460000"), ("+44 (0)20 7946 0000", "+442079460000"), ("+1 202-555-0142", "+12025550142")],
)
def test_phone_numbers_are_e164_with_gb_by_default(raw, canonical):
    assert channels.normalize("phone", raw) == canonical
    assert channels.normalize("fax", raw) == canonical


@pytest.mark.parametrize("raw", ["", "12", "not a number", "07700 900123", "+44" + "1" * 70])
def test_impossible_numbers_are_refused_with_a_reason(raw):
    with pytest.raises(channels.InvalidIdentifier, match="telephone"):
        channels.normalize("phone", raw)
    with pytest.raises(channels.InvalidIdentifier, match="fax"):
        channels.normalize("fax", raw)


def test_postal_addresses_hash_alike_whatever_the_spacing_and_case():
    a = channels.normalize("postal_address", "1 High Street,\n  Springfield ,  AB1 2CD")
    b = channels.normalize("postal_address", "1 high street; springfield; ab1  2cd.")
    assert a == b == "1 HIGH STREET, SPRINGFIELD, AB1 2CD"
    with pytest.raises(channels.InvalidIdentifier):
        channels.normalize("postal_address", "x")


@pytest.mark.parametrize("raw", ["\U0009e6a5\U000eb5b9\u0087\u00072", "1 High\u0007 Street, Leeds", "1 High Street, \ue000Leeds"])
def test_postal_addresses_with_control_or_unassigned_characters_are_refused(raw):
    with pytest.raises(channels.InvalidIdentifier, match="control or unassigned"):
        channels.normalize("postal_address", raw)


def test_every_channel_declares_its_purposes():
    assert {name: c.purpose_names for name, c in channels.CHANNELS.items()} == {
        "email": ["newsletter", "product_updates", "offers", "transactional"],
        "phone": ["marketing"],
        "fax": ["marketing"],
        "mail": ["marketing"],
        "partner": ["share_for_fulfilment", "share_for_marketing"],
        "profile": ["profile_enrichment", "use_sensitive_data"],
    }


def test_non_strings_are_refused():
    with pytest.raises(channels.InvalidIdentifier):
        channels.normalize("email", 42)
