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


def normalize(value: str) -> str:
    value = unicodedata.normalize("NFKC", value)
    lines = [_SEPARATORS.sub(" ", part).strip(" .") for part in re.split(r"[\n,;]+", value)]
    canonical = ", ".join(line for line in lines if line).upper()
    if len(canonical) < 5:
        raise ValueError("not a postal address: give at least a street and a town or postcode")
    if len(canonical) > MAX_LENGTH:
        raise ValueError(f"not a postal address: longer than {MAX_LENGTH} characters")
    return canonical
