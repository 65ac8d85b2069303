"""Rules the OpenAPI document states in prose because JSON Schema cannot say
them (an address must exist in its numbering plan, a time must not be in the
future, a policy version must have been published). The fuzzer cannot read
prose, so these hooks replace a generated value that the document allows but
such a rule refuses with one the rule accepts. Only values that are valid by
the document are replaced, so a case built to break the document still does."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime

import jsonschema_rs

from prefs_service import channels

RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:[Zz]|[+-]\d{2}:\d{2})")
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
EMAIL_FORMAT = jsonschema_rs.validator_for({"type": "string", "format": "email"}, validate_formats=True)
PUBLISHED_POLICY = "fuzz-1"
PAST = "2020-01-01T00:00:00Z"
# A register file whose every register accepts one line (TPS/CTPS/FPS, DNC, MPS):
# an upload with no acceptable line is refused (422), a rule JSON Schema cannot state.
REGISTER_FILE = '02073787244 \r\n2015550123\r\n"P","01022024","","","","","","","1 High Street","","","Leeds","","LS1 4AP",""\r\n'
BASE64 = re.compile(r"(?=.{4})(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?", re.S)
PERMISSION = base64.b64encode(b"%PDF-1.4\n% a signed permission\n%%EOF\n").decode()

# field -> (identifier kind, longest value the document allows, a valid value)
IDENTIFIERS = {
    "email": ("email", 320, "fuzz@example.com"),
    "contact_email": ("email", 320, "partner@example.com"),
    "phone": ("phone", 64, "+44 20 7946 0000"),
    "fax": ("fax", 64, "+44 20 7946 0001"),
    "postal_address": ("postal_address", 500, "1 High Street, Leeds"),
}


def _documented_text(value, max_length: int) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= max_length and "\x00" not in value


def _refused_identifier(field: str, value) -> bool:
    kind, max_length, _ = IDENTIFIERS[field]
    if not _documented_text(value, max_length) or (kind == "email" and not EMAIL_FORMAT.is_valid(value)):
        return False  # the document refuses it already: leave the case as generated
    try:
        channels.normalize(kind, value)
    except channels.InvalidIdentifier:
        return True
    return False


def _future(value) -> bool:
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        return False
    try:
        return datetime.fromisoformat(value.upper().replace("Z", "+00:00")) > datetime.now(UTC)
    except (ValueError, OverflowError):
        return False


def _follow_rules(fields: dict) -> None:
    for field, (_, _, valid) in IDENTIFIERS.items():
        if field in fields and _refused_identifier(field, fields[field]):
            fields[field] = valid
    if _future(fields.get("occurred_at")):
        fields["occurred_at"] = PAST
    if _documented_text(fields.get("policy_version"), 40):
        fields["policy_version"] = PUBLISHED_POLICY


def _moment(value) -> datetime | None:
    """A period bound as the document allows it (a date, or RFC 3339), or None."""
    if not isinstance(value, str) or not (RFC3339.fullmatch(value) or re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)):
        return None
    try:
        moment = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def follow_prose_rules(path: str, body, query) -> None:
    if isinstance(body, dict):
        _follow_rules(body)
        events = body.get("events") if isinstance(body.get("events"), list) else []
        for nested in [body.get("changes"), body.get("agent"), *events]:
            if isinstance(nested, dict):
                _follow_rules(nested)
        # An agent's permission must be a PDF, PNG or JPEG by its first bytes.
        agent = body.get("agent")
        if isinstance(agent, dict) and isinstance(agent.get("permission"), str) and BASE64.fullmatch(agent["permission"]):
            agent["permission"] = PERMISSION
        # A batch names its people by keys it already holds or creates: an
        # unknown subject id is refused for the whole batch.
        for event in events:
            if isinstance(event, dict) and isinstance(event.get("subject_id"), str) and UUID.fullmatch(event["subject_id"]):
                event["email"] = IDENTIFIERS["email"][2]
                del event["subject_id"]
        # A request for a subject_id we hold no address for needs one to answer at.
        if path == "/v1/requests" and "subject_id" in body and "email" not in body:
            body["email"] = IDENTIFIERS["email"][2]
    # A consistency proof runs from a smaller tree to a larger one.
    if path == "/v1/ledger/proofs/consistency" and isinstance(query, dict):
        sizes = [query.get("from"), query.get("to")]
        if all(isinstance(v, int) or (isinstance(v, str) and v.isascii() and v.isdigit()) for v in sizes) and int(sizes[0]) > int(sizes[1]):
            query["from"], query["to"] = query["to"], query["from"]
    # A sales period must end after it starts.
    if path.endswith("/sales") and isinstance(query, dict):
        start, end = _moment(query.get("from")), _moment(query.get("to"))
        if start and end and end <= start:
            query["from"], query["to"] = "2000-01-01", "2100-01-01"


def screening_list(column: str, body):
    """A CSV list for whole-list screening whose header row names its `column`:
    a list without it is refused (422), a rule no schema can state."""
    header = '"' + column.replace('"', '""') + '"\n'
    if isinstance(body, bytes):
        return header.encode() + body
    return header + (body if isinstance(body, str) else "")
