"""Whole-list screening: a mailer's list of any length, checked in chunks
through check_many (the bulk check's own path) and answered line for line, in
the list's own format and order, in constant memory.

Formats (UTF-8; a line ends at LF, a CR before it is dropped):
- CSV, one recipient a line (a line wholly in double quotes is unquoted, so a
  postal address may hold commas); or, with `column`, a header row and the
  named column of each row (no line breaks inside fields).
- NDJSON: each line a JSON string, or an object whose `column` field (default
  `recipient`) holds the recipient.

Every line after a CSV header is one recipient and gets one answer line: a
line that cannot be read (not UTF-8, not JSON, too long, a row without the
column) or a recipient no lookup can hold (NUL) is answered `invalid`, as the
bulk check answers an invalid item.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import IO, Any

import orjson

from ..db import scopes
from ..errors import Invalid
from ..subjects.refs import CHECK_KEYS
from .checks import check_many, register_fields
from .events import require_channel_purpose
from .rules import CheckResult

CSV, NDJSON = "csv", "ndjson"
MEDIA_TYPES = {CSV: "text/csv", NDJSON: "application/x-ndjson"}
FORMAT_OF_MEDIA_TYPE = {media: name for name, media in MEDIA_TYPES.items()}
# Recipients per check_many call: the bulk check's own limit.
CHUNK = 10_000
# A line longer than this is answered `invalid` (its bytes are skipped, never held).
MAX_LINE_BYTES = 8192
MAX_COLUMN_NAME = 200
NDJSON_FIELD = "recipient"
CSV_COLUMNS = ("recipient", "allowed", "reason", "register", "register_stale")
_READ_BYTES = 256 * 1024
_BOM = b"\xef\xbb\xbf"

# What a bulk check or a screening reads by default, by channel; partner and profile have none of their own.
DEFAULT_IDENTIFIER = {"email": "email", "phone": "phone", "fax": "fax", "mail": "postal_address"}


def identifier_type(*, channel: str, purpose: str, given: str | None) -> str:
    """What the recipients are: `given`, else the channel's own identifier.
    Invalid (naming the field) for a bad channel, purpose or identifier type."""
    require_channel_purpose(channel, purpose)
    key = given or DEFAULT_IDENTIFIER.get(channel)
    if key is None:
        raise Invalid(
            "Say what the recipients are.",
            errors={"identifier_type": [f"required for the {channel} channel; one of: {', '.join(CHECK_KEYS)}"]},
        )
    if key not in CHECK_KEYS:
        raise Invalid("Unknown identifier type.", errors={"identifier_type": [f"must be one of: {', '.join(CHECK_KEYS)}"]})
    return key


@dataclass(frozen=True)
class Screening:
    """What a list is screened for, and how it is written."""

    channel: str
    purpose: str
    key: str
    format: str
    column: str | None = None


def prepare(*, channel: str, purpose: str, identifier_type_given: str | None, format: str, column: str | None) -> Screening:
    """The screening asked for, checked before a line of the list is read."""
    key = identifier_type(channel=channel, purpose=purpose, given=identifier_type_given)
    if format not in MEDIA_TYPES:
        raise Invalid("Unknown list format.", errors={"format": [f"one of: {', '.join(MEDIA_TYPES)}"]})
    if column is not None and not (1 <= len(column) <= MAX_COLUMN_NAME and not any(c in column for c in "\x00\r\n")):
        raise Invalid(
            "Name the column as the header row writes it.",
            errors={"column": [f"1 to {MAX_COLUMN_NAME} characters, without line breaks or NUL"]},
        )
    return Screening(channel, purpose, key, format, column)


# --- reading ------------------------------------------------------------------------------------


def lines(stream: IO[bytes]) -> Iterator[bytes | None]:
    """Each line of `stream`, without its line break (a UTF-8 BOM first is
    dropped); None for a line longer than MAX_LINE_BYTES, whose bytes are skipped.
    Reads a block at a time: memory stays bounded however long the stream is."""
    carry = b""
    skipping = False  # inside a line already too long
    first = True
    while block := stream.read(_READ_BYTES):
        if first:
            block, first = block.removeprefix(_BOM), False
        parts = block.split(b"\n")
        if skipping:
            if len(parts) == 1:
                continue
            yield None  # the long line ends in this block: what is left of it goes
            skipping = False
            del parts[0]
        else:
            parts[0] = carry + parts[0]
        for part in islice(parts, len(parts) - 1):
            yield part if len(part) <= MAX_LINE_BYTES else None
        carry = parts[-1]
        if len(carry) > MAX_LINE_BYTES:
            carry, skipping = b"", True
    if skipping:
        yield None
    elif carry:
        yield carry


def _text(line: bytes) -> str | None:
    try:
        return line.removesuffix(b"\r").decode("utf-8")
    except UnicodeDecodeError:
        return None


def _fields(text: str) -> list[str] | None:
    """A CSV row's fields; None for a row CSV cannot read (an unclosed quote)."""
    if '"' not in text:
        return text.split(",")
    try:
        return next(csv.reader((text,), strict=True), [])
    except csv.Error:
        return None


def _single(text: str) -> str:
    """A line that is one recipient: as it is, or unquoted when it is wholly quoted."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        fields = _fields(text)
        if fields is not None and len(fields) == 1:
            return fields[0]
    return text


def _csv_items(source: Iterator[bytes | None], column_index: int | None) -> Iterator[tuple[Any, Any]]:
    for line in source:
        if line is None:  # too long
            yield None, None
            continue
        text = _text(line)
        readable = text is not None
        if text is None:  # not UTF-8: echoed as best it reads, checked as nothing
            text = line.decode("utf-8", "replace").removesuffix("\r")
        value: str | None
        if column_index is None:
            value = _single(text)
        else:
            fields = _fields(text)
            value = fields[column_index] if fields is not None and column_index < len(fields) else None
        yield value, (value if readable and (value is None or "\x00" not in value) else None)


def _ndjson_items(source: Iterator[bytes | None], field: str) -> Iterator[tuple[Any, Any]]:
    for line in source:
        if line is None:
            yield None, None
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            yield line.decode("utf-8", "replace").removesuffix("\r"), None
            continue
        if type(value) is dict:
            value = value.get(field)
        yield value, (value if type(value) is not str or "\x00" not in value else None)


def items(stream: IO[bytes], screening: Screening) -> Iterator[tuple[Any, Any]]:
    """(what the answer echoes as `recipient`, what is checked) for each line of
    the list, in order. With a CSV column the header is read at once: Invalid
    (naming `column`) if it lacks the column, before any answer is given."""
    source = lines(stream)
    if screening.format == NDJSON:
        return _ndjson_items(source, screening.column or NDJSON_FIELD)
    if screening.column is None:
        return _csv_items(source, None)
    header_line = next(source, None)
    header = _fields(_text(header_line) or "") if header_line is not None else None
    names = [name.strip() for name in header or []]
    wanted = screening.column.strip()
    if wanted not in names:
        shown = ", ".join(repr(n[:40]) for n in names[:20]) or "none"
        raise Invalid(
            "The list has no such column.",
            errors={"column": [f"no column {screening.column!r} in the header row; its columns: {shown}"]},
        )
    return _csv_items(source, names.index(wanted))


# --- checking -----------------------------------------------------------------------------------


def screen(screening: Screening, listed: Iterable[tuple[Any, Any]]) -> Iterator[list[tuple[Any, CheckResult]]]:
    """(echo, answer) pairs, CHUNK at a time, each chunk one check_many call as
    the bulk check makes it. A stream outlives the scope of the boundary that
    started it (a view returns before its answer is sent), so each chunk runs in
    a read-only scope of its own: nothing is written, and no transaction stays
    open while the answer waits on the network."""
    source = iter(listed)
    while chunk := list(islice(source, CHUNK)):
        values = [value for _, value in chunk]
        with scopes.read_only():
            results = check_many(channel=screening.channel, purpose=screening.purpose, key=screening.key, values=values, with_since=False)
        answered = [(echo, result) for (echo, _), result in zip(chunk, results, strict=True)]
        del chunk, values, results  # not held while the answer is written
        yield answered


def answer(recipient: Any, result: CheckResult) -> dict[str, Any]:
    """One recipient's answer, as the bulk check and a screening give it."""
    if result.register:
        return {"recipient": recipient, "allowed": result.allowed, "reason": result.reason, **register_fields(result)}
    return {"recipient": recipient, "allowed": result.allowed, "reason": result.reason}


# --- writing ------------------------------------------------------------------------------------


def header(screening: Screening) -> bytes:
    """What the answer starts with: CSV's header row."""
    return (",".join(CSV_COLUMNS) + "\n").encode() if screening.format == CSV else b""


def encode(screening: Screening, answered: list[tuple[Any, CheckResult]]) -> bytes:
    """A chunk of answers, one line each, in the list's format. An answer is
    one of a handful: each is written once, and only the recipient per line."""
    tails: dict[int, str] = {}
    pieces: list[str] = []
    if screening.format == NDJSON:
        for echo, result in answered:
            tail = tails.get(id(result))
            if tail is None:  # ,"allowed":…,"reason":…[,"register":…]} as answer() orders them
                tail = tails[id(result)] = "," + orjson.dumps(answer(None, result)).decode()[len('{"recipient":null,') :] + "\n"
            if type(echo) is str and _JSON_PLAIN.fullmatch(echo):
                pieces += ('{"recipient":"', echo, '"', tail)
            else:
                pieces += ('{"recipient":', _json_value(echo), tail)
        return "".join(pieces).encode()
    for echo, result in answered:
        tail = tails.get(id(result))
        if tail is None:
            row = ("true" if result.allowed else "false", result.reason, result.register or "", "true" if result.register_stale else "")
            tail = tails[id(result)] = "," + ",".join(row) + "\n"
        if echo is None:
            pieces.append(tail)
        elif _CSV_QUOTED.search(echo):
            pieces += ('"', echo.replace('"', '""'), '"', tail)
        else:
            pieces += (echo, tail)
    return "".join(pieces).encode()


def _json_value(value: Any) -> str:
    # Rarely needed: strings with quotes, backslashes or control characters, and values that are not strings.
    if type(value) is str:
        return json.dumps(value, ensure_ascii=False)
    return orjson.dumps(value).decode()


_JSON_PLAIN = re.compile(r'[^"\\\x00-\x1f]*')
_CSV_QUOTED = re.compile(r'[,"\r\n]')
