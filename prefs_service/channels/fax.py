"""Fax numbers: the same E.164 form as telephone numbers, kept as their own kind
so that suppressing someone's fax does not silence their telephone."""

from __future__ import annotations

from . import phone

NAME = "fax"
LABEL = "Fax"
IDENTIFIER_KIND = "fax"
PURPOSES = (("marketing", "Marketing faxes", True),)


def normalize(value: str) -> str:
    try:
        return phone.normalize(value)
    except ValueError as exc:
        raise ValueError(str(exc).replace("telephone", "fax")) from None
