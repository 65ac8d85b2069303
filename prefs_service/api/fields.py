"""Marshmallow fields that refuse, at the API's edge, what the database or the
service would refuse later, and describe exactly that in the OpenAPI document."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, time
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from .blueprint import OversizedInteger

# PostgreSQL refuses NUL in text; the pattern says so to clients.
NO_NUL_PATTERN = "^[^\\u0000]*$"
INT64_MAX = 2**63 - 1
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:[Zz]|[+-]\d{2}:\d{2})", re.ASCII)
RFC3339_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", re.ASCII)


def unstorable(value: str) -> str | None:
    """Why `value` cannot be stored as text, or None."""
    if "\x00" in value:
        return "must not contain NUL (\\u0000) characters"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid Unicode (a lone surrogate such as \\ud800 is not)"
    return None


class Text(fields.String):
    """A string the database can keep."""

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        reason = unstorable(value)
        if reason:
            raise ma.ValidationError(reason)
        return value


class _Int64(fields.Integer):
    """Integers the database can hold (SQLite and PostgreSQL bigint: 64 bits signed)."""

    def _validated(self, value):
        value = super()._validated(value)
        if not -INT64_MAX - 1 <= value <= INT64_MAX:
            raise ma.ValidationError(f"Must be between {-INT64_MAX - 1} and {INT64_MAX}.")
        return value


class StrictInteger(_Int64):
    """A JSON integer: not a numeric string, not a fraction, not a bool."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _validated(self, value):
        if isinstance(value, bool | OversizedInteger):
            raise self.make_error("invalid")
        return super()._validated(value)


class QueryInteger(_Int64):
    """An integer from a query string: decimal digits only, as the document says."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not re.fullmatch(r"-?[0-9]{1,20}", value, re.ASCII):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    """JSON true or false, nothing that merely looks like one."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class CanonicalUUID(fields.UUID):
    """A UUID written the one way the document describes (8-4-4-4-12 hex digits)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not UUID_TEXT.fullmatch(value):
            raise self.make_error("invalid_uuid")
        return uuid.UUID(value)


class UtcDateTime(fields.AwareDateTime):
    """An RFC 3339 date and time with its offset, read as UTC. Near the ends of
    the calendar an offset carries it outside (0001-01-01T00:00:00+02:00): that
    is refused, where converting it would overflow."""

    def __init__(self, **kwargs):
        super().__init__(format="iso", **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not RFC3339.fullmatch(value):
            raise ma.ValidationError("Not an RFC 3339 date and time with a zone, e.g. 2026-01-31T09:30:00Z.")
        return to_utc(super()._deserialize(value.upper(), attr, data, **kwargs))


def to_utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ma.ValidationError("Outside the calendar once converted to UTC (years 1 to 9999).") from None


class PeriodBound(fields.Field):
    """A date (its midnight, UTC) or an RFC 3339 date and time with a zone."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and RFC3339_DATE.fullmatch(value):
            try:
                return datetime.combine(date.fromisoformat(value), time.min, tzinfo=UTC)
            except ValueError:
                raise ma.ValidationError("Not a date (YYYY-MM-DD).") from None
        return UtcDateTime()._deserialize(value, attr, data, **kwargs)


def text(max_length: int, **kwargs):
    return Text(validate=validate.Length(min=1, max=max_length), **kwargs)


def _with_format(fmt: str, max_length: int, kwargs: dict):
    metadata = {"format": fmt, **kwargs.pop("metadata", {})}
    return text(max_length, metadata=metadata, **kwargs)


def email_address(**kwargs):
    """An address the email channel accepts (it is trimmed and its domain checked)."""
    return _with_format("email", 320, kwargs)


def phone_number(**kwargs):
    """A number valid in its numbering plan: E.164, or national to the GB plan."""
    return _with_format("phone", 64, kwargs)


def postal(**kwargs):
    """At least a street and a town or postcode (five characters once tidied)."""
    return _with_format("postal-address", 500, kwargs)


def one_of(*values, **kwargs):
    return Text(validate=validate.OneOf(list(values)), **kwargs)


class RecipientList(fields.List):
    """A list of strings, checked in one pass: bulk checks take 10,000 of them
    and per-item field objects would cost more than the lookup itself. Wrong
    items are answered `invalid` by the check, not refused here; text that no
    lookup can hold (NUL, lone surrogates) is refused naming its index."""

    def __init__(self, max_items: int, **kwargs):
        items = {"anyOf": [{"type": "string", "pattern": NO_NUL_PATTERN}, {"not": {"type": "string"}}]}
        super().__init__(fields.Raw(metadata=items), validate=validate.Length(min=1, max=max_items), **kwargs)
        self.max_items = max_items

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list):
            raise ma.ValidationError("Not a valid list.")
        if len(value) > self.max_items:
            raise ma.ValidationError(f"At most {self.max_items} recipients per call; split the list.")
        try:
            joined = "\n".join(value)  # one C-level pass over an all-string list
        except TypeError:
            joined = "\n".join(item for item in value if isinstance(item, str))
        if unstorable(joined):
            raise ma.ValidationError({i: [unstorable(item)] for i, item in enumerate(value) if isinstance(item, str) and unstorable(item)})
        return value


def document_field(converter, field, ret, **kwargs) -> dict:
    """apispec attribute function: the OpenAPI side of the fields above."""
    extra: dict[str, Any] = {}
    # A format (email, uuid…) already excludes NUL; a pattern beside it would
    # make generators search for strings matching both.
    if isinstance(field, Text) and not {"pattern", "enum", "format"} & set(ret):
        extra["pattern"] = NO_NUL_PATTERN
    if isinstance(field, CanonicalUUID):
        extra["pattern"] = "^" + UUID_TEXT.pattern + "$"
    if isinstance(field, PeriodBound):
        extra.update({"type": "string", "anyOf": [{"format": "date"}, {"format": "date-time"}]})
    if isinstance(field, _Int64):
        extra.setdefault("maximum", min(ret.get("maximum", INT64_MAX), INT64_MAX))
        extra.setdefault("minimum", max(ret.get("minimum", -INT64_MAX - 1), -INT64_MAX - 1))
    return extra


BASE64 = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


class Base64File(fields.String):
    """A file inside JSON: standard base64 (RFC 4648 §4, padded), decoded to bytes.
    The text's rules are checked before decoding (validators would see the bytes)."""

    def __init__(self, max_bytes: int, **kwargs: Any) -> None:
        self.max_bytes, self.max_length = max_bytes, -(-max_bytes // 3) * 4
        metadata = {
            "format": "byte",
            "contentEncoding": "base64",
            "minLength": 4,
            "maxLength": self.max_length,
            "pattern": BASE64,
            **kwargs.pop("metadata", {}),
        }
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        import base64
        import binascii

        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > self.max_length:
            raise ma.ValidationError(
                f"the file is too large: at most {self.max_bytes // (1024 * 1024)} MB (in base64, {self.max_length} characters)"
            )
        if len(text) < 4:
            raise ma.ValidationError(f"Length must be between 4 and {self.max_length}.")
        if not re.fullmatch(BASE64, text):
            raise ma.ValidationError("must be standard base64 (A–Z, a–z, 0–9, +, /, padded with =)")
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ma.ValidationError("must be standard base64 (A–Z, a–z, 0–9, +, /, padded with =)") from None
