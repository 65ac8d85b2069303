"""Postal addresses: one normalised string, so the same address written with
different spacing, commas or case hashes alike."""

from __future__ import annotations

import re
import unicodedata

NAME = "mail"
LABEL = "Postal mail"
IDENTIFIER_KIND = "postal_address"
PURPOSES = (("marketing", "Marketing by post", True),)
MAX_LENGTH = 500

_SEPARATORS = re.compile(r"[\s,;]+")
_NOT_WRITING = {"Cc", "Cn", "Co", "Cs"}


def normalize(value: str) -> str:
    value = unicodedata.normalize("NFKC", value)
    lines = [_SEPARATORS.sub(" ", part).strip(" .") for part in re.split(r"[\n,;]+", value)]
    canonical = ", ".join(line for line in lines if line).upper()
    # Control characters, unassigned or private-use code points and lone surrogates write no address.
    if any(unicodedata.category(char) in _NOT_WRITING for char in canonical):
        raise ValueError("not a postal address: it holds control or unassigned characters")
    if len(canonical) < 5:
        raise ValueError("not a postal address: give at least a street and a town or postcode")
    if len(canonical) > MAX_LENGTH:
        raise ValueError(f"not a postal address: longer than {MAX_LENGTH} characters")
    return canonical
