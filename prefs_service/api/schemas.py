"""Request and response shapes of the JSON API (marshmallow; the OpenAPI document
is generated from them). Input schemas refuse exactly what they document, and
document at least everything the service refuses that JSON Schema can say."""

from __future__ import annotations

from typing import Any, ClassVar

import marshmallow as ma
from marshmallow import fields, validate

from .. import consent
from ..consent import lists
from ..consent.rules import STATUSES
from ..registers import REGISTERS
from ..subjects.identifiers import KINDS
from ..subjects.refs import WRITE_KEYS
from . import combinations as combos
from .fields import (
    UUID_TEXT,
    CanonicalUUID,
    PeriodBound,
    QueryInteger,
    RecipientList,
    Text,
    UtcDateTime,
    email_address,
    one_of,
    phone_number,
    postal,
    text,
)

INT64_MAX = 2**63 - 1
HTTP_URL = "^https?://[^\\s/?#\u0000-\u001f]+(?:[/?#][^\\s\u0000-\u001f]*)?$"


class Strict(ma.Schema):
    """An input shape: unknown fields are refused (additionalProperties: false).
    OPENAPI_EXTRA holds the JSON Schema rules across fields; validators enforce them."""

    OPENAPI_EXTRA: ClassVar[dict[str, Any] | None] = None

    class Meta:
        unknown = ma.RAISE


# --- subjects -------------------------------------------------------------------------


class SubjectFields(Strict):
    external_ref = text(255, allow_none=True, metadata={"description": "Your CRM's id for this person."})
    name = text(255, allow_none=True)
    email = email_address(allow_none=True)
    phone = phone_number(allow_none=True)
    fax = phone_number(allow_none=True)
    postal_address = postal(allow_none=True)


class SubjectOut(ma.Schema):
    id = fields.UUID()
    external_ref = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    fax = fields.String(allow_none=True)
    postal_address = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


# --- consent --------------------------------------------------------------------------


class EvidenceIn(Strict):
    ip = text(
        64,
        allow_none=True,
        metadata={"description": "Stored truncated: /24 for IPv4, /48 for IPv6.", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
    )
    user_agent = Text(allow_none=True, metadata={"description": "Kept up to 512 characters."})
    note = text(consent.NOTE_LIMIT, allow_none=True)


def uuid_text(**kwargs):
    """A subject id as the service takes it: the canonical string form."""
    metadata = {"format": "uuid", **kwargs.pop("metadata", {})}
    return Text(validate=validate.Regexp("^" + UUID_TEXT.pattern + "$", error="Not a valid UUID."), metadata=metadata, **kwargs)


class SubjectRef(Strict):
    subject_id = uuid_text(metadata={"description": "Name the person by exactly one of these five."})
    external_ref = text(255)
    email = email_address()
    phone = phone_number()
    fax = phone_number()


class ConsentIn(SubjectRef):
    """One event. Which values and combinations are valid is documented here
    and checked by the ledger, so that a batch lists every bad event at once."""

    channel = Text(required=True, metadata={"enum": combos.CHANNEL_NAMES})
    purpose = Text(required=True, metadata={"enum": combos.ALL_PURPOSES})
    status = one_of(*STATUSES, required=True)
    source = Text(load_default="api", metadata={"enum": list(consent.API_SOURCES)})
    occurred_at = UtcDateTime(metadata={"description": "When the person acted, not in the future; defaults to now."})
    policy_version = text(40, metadata={"description": "A published policy version; defaults to the one in force."})
    evidence = fields.Nested(EvidenceIn)

    OPENAPI_EXTRA: ClassVar[dict[str, Any] | None] = {"allOf": [combos.channel_purpose(), combos.exactly_one(WRITE_KEYS)]}


class EvidenceOut(ma.Schema):
    ip = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)
    note = fields.String(allow_none=True)


class ConsentEventOut(ma.Schema):
    id = fields.Integer()
    subject_id = fields.UUID()
    channel = fields.String()
    purpose = fields.String()
    status = fields.String()
    source = fields.String()
    occurred_at = fields.DateTime()
    recorded_at = fields.DateTime()
    policy_version = fields.String(allow_none=True)
    evidence = fields.Method("_evidence", metadata={"type": "object"})
    applied = fields.Boolean(metadata={"description": "False when a newer event already decides this purpose."})

    def _evidence(self, event):
        return {"ip": event.evidence_ip, "user_agent": event.evidence_user_agent, "note": event.evidence_note}


class ConsentBatchIn(Strict):
    events = fields.List(fields.Nested(ConsentIn), required=True, validate=validate.Length(min=1, max=consent.BATCH_LIMIT))

    @ma.pre_load
    def _limit_before_parsing(self, data, **kwargs):
        events = data.get("events") if isinstance(data, dict) else None
        if isinstance(events, list) and len(events) > consent.BATCH_LIMIT:
            raise ma.ValidationError(f"At most {consent.BATCH_LIMIT} events per batch; split the file.", "events")
        return data


class BatchOut(ma.Schema):
    recorded = fields.Integer()
    skipped_erased = fields.List(fields.Integer(), metadata={"description": "Indexes of events for erased people, not recorded."})


class ConsentStateOut(ma.Schema):
    channel = fields.String()
    purpose = fields.String()
    status = fields.String(allow_none=True)
    occurred_at = fields.DateTime(allow_none=True)
    source = fields.String(allow_none=True)
    allowed = fields.Boolean()
    reason = fields.String(metadata={"enum": list(consent.REASONS)})
    since = fields.DateTime(allow_none=True)
    register = fields.String(
        metadata={"enum": list(REGISTERS), "description": "The national register the answer concerns; absent when none had a say."}
    )
    register_stale = fields.Boolean(
        metadata={
            "description": "Present (true) when that register's list is past its rule and PREFS_REGISTER_STALE=warn let the answer stand."
        }
    )


class SubjectConsentsOut(ma.Schema):
    subject_id = fields.UUID()
    ask_again_after = fields.DateTime(
        allow_none=True,
        metadata={"description": "CCPA: the person opted out of sale/sharing; do not ask them to opt back in before this."},
    )
    consents = fields.List(fields.Nested(ConsentStateOut))
    history = fields.List(fields.Nested(ConsentEventOut))
    history_before = fields.Integer(allow_none=True, metadata={"description": "Pass as `before` to read older history; null at the start."})


class SubjectConsentsQuery(Strict):
    history = fields.Boolean(load_default=False)
    limit = QueryInteger(load_default=500, validate=validate.Range(min=1, max=5000))
    before = QueryInteger(validate=validate.Range(min=1, max=INT64_MAX))


class CheckQuery(Strict):
    """The single check's query. Channel and purpose are checked by the check
    itself (the same 422), so that its fast path and this schema read alike."""

    channel = Text(required=True, metadata={"enum": combos.CHANNEL_NAMES})
    purpose = Text(required=True, metadata={"enum": combos.ALL_PURPOSES})
    email = Text()
    phone = Text()
    fax = Text()
    postal_address = Text()
    subject_id = Text()
    external_ref = Text()

    OPENAPI_EXTRA: ClassVar[dict[str, Any] | None] = {"allOf": [combos.channel_purpose(), combos.exactly_one(consent.CHECK_KEYS)]}

    @ma.validates_schema
    def _one_person(self, data, **kwargs):
        given = [k for k in consent.CHECK_KEYS if k in data]
        if len(given) != 1:
            raise ma.ValidationError(f"Give exactly one of: {', '.join(consent.CHECK_KEYS)}.", "subject")


class CheckOut(ma.Schema):
    allowed = fields.Boolean()
    reason = fields.String(metadata={"enum": list(consent.REASONS)})
    since = fields.DateTime(allow_none=True)
    register = fields.String(
        metadata={"enum": list(REGISTERS), "description": "The national register the answer concerns; absent when none had a say."}
    )
    register_stale = fields.Boolean(
        metadata={
            "description": "Present (true) when that register's list is past its rule and PREFS_REGISTER_STALE=warn let the answer stand."
        }
    )


def defaulted_identifier_type() -> ma.fields.Field:
    """The bulk check's and whole-list screening's `identifier_type`: optional where the channel has its own."""
    return one_of(
        *consent.CHECK_KEYS,
        metadata={
            "description": "Defaults to the channel's own identifier (email, phone, fax, postal_address); required for partner and profile."
        },
    )


class BulkCheckIn(Strict):
    channel = one_of(*combos.CHANNEL_NAMES, required=True)
    purpose = one_of(*combos.ALL_PURPOSES, required=True)
    identifier_type = defaulted_identifier_type()
    recipients = RecipientList(consent.BATCH_LIMIT, required=True)

    OPENAPI_EXTRA: ClassVar[dict[str, Any] | None] = {"allOf": [combos.channel_purpose(), combos.identifier_type_needed()]}

    @ma.validates_schema
    def _channel_purpose(self, data, **kwargs):
        combos.check_channel_purpose(data)


class ScreenQuery(Strict):
    """Whole-list screening's query: what the list is screened for, and where its recipients are."""

    channel = one_of(*combos.CHANNEL_NAMES, required=True)
    purpose = one_of(*combos.ALL_PURPOSES, required=True)
    identifier_type = defaulted_identifier_type()
    column = Text(
        validate=[validate.Length(min=1, max=lists.MAX_COLUMN_NAME), validate.Regexp(r"^[^\r\n]+$")],
        metadata={
            "pattern": "^[^\\u0000\\r\\n]+$",
            "description": "CSV: the header row's name of the recipients' column (without it, each line is one recipient). "
            "NDJSON: the field of each object that holds the recipient (default `recipient`).",
        },
    )

    OPENAPI_EXTRA: ClassVar[dict[str, Any] | None] = {"allOf": [combos.channel_purpose(), combos.identifier_type_needed()]}

    @ma.validates_schema
    def _channel_purpose(self, data, **kwargs):
        combos.check_channel_purpose(data)


class BulkCheckResult(ma.Schema):
    recipient = fields.Raw(metadata={"description": "The item as given (any JSON value)."})
    allowed = fields.Boolean()
    reason = fields.String(metadata={"enum": list(consent.REASONS)})
    register = fields.String(
        metadata={"enum": list(REGISTERS), "description": "The national register the answer concerns; absent when none had a say."}
    )
    register_stale = fields.Boolean(
        metadata={
            "description": "Present (true) when that register's list is past its rule and PREFS_REGISTER_STALE=warn let the answer stand."
        }
    )


class BulkCheckOut(ma.Schema):
    results = fields.List(fields.Nested(BulkCheckResult))


class FeedCursor(Text):
    """`<transaction>.<event id>`, both 64-bit counts, as `next` gives it."""

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        txid, dot, event_id = value.partition(".")
        if not (dot and txid.isascii() and txid.isdigit() and event_id.isascii() and event_id.isdigit()):
            raise ma.ValidationError("use the `next` value of a previous page")
        if int(txid) > INT64_MAX or int(event_id) > INT64_MAX:
            raise ma.ValidationError("use the `next` value of a previous page (this one is out of range)")
        return value


class ChangesQuery(Strict):
    after = FeedCursor(
        metadata={
            "description": "The `next` cursor of the previous page; omit to start at the beginning.",
            "pattern": "^[0-9]{1,19}\\.[0-9]{1,19}$",
        }
    )
    limit = QueryInteger(load_default=100, validate=validate.Range(min=1, max=1000))


class ChangesOut(ma.Schema):
    events = fields.List(fields.Nested(ConsentEventOut))
    next = fields.String(allow_none=True, metadata={"description": "Pass as `after` to read on; keep it to resume later."})
    has_more = fields.Boolean()


# --- suppressions and policies ----------------------------------------------------------


class SuppressionIn(Strict):
    email = email_address()
    phone = phone_number()
    fax = phone_number()
    postal_address = postal()
    reason = one_of(*[r for r in consent.SUPPRESSION_REASONS if r != "erasure"], required=True)
    note = text(500)

    OPENAPI_EXTRA: ClassVar[dict[str, Any] | None] = combos.exactly_one(KINDS)

    @ma.validates_schema
    def _one_identifier(self, data, **kwargs):
        combos.check_exactly_one(data, KINDS, "identifier")


class SuppressionOut(ma.Schema):
    kind = fields.String()
    reason = fields.String()
    created_at = fields.DateTime()


class PolicyIn(Strict):
    version = Text(
        required=True, validate=validate.Regexp(r"^[A-Za-z0-9._-]{1,40}$", error="use 1-40 letters, digits, dots, dashes or underscores")
    )
    last_updated = fields.Date(required=True, metadata={"description": "The 'last updated' date shown to people."})
    url = Text(
        allow_none=True, validate=validate.Regexp(HTTP_URL, error="Not an http(s) URL."), metadata={"description": "An http or https URL."}
    )
    effective_at = UtcDateTime(metadata={"description": "Defaults to now."})


class PolicyOut(ma.Schema):
    version = fields.String()
    last_updated = fields.Date()
    url = fields.String(allow_none=True)
    effective_at = fields.DateTime()


class UnsubscribeLinkIn(Strict):
    subject_id = uuid_text()
    email = email_address()
    channel = one_of(*combos.CHANNEL_NAMES, load_default="email")
    # Refused by _one_person, which says why (a purpose that needs no consent has nothing to unsubscribe from).
    purpose = Text(
        required=True,
        metadata={"enum": combos.CONSENT_PURPOSES, "description": "A purpose that needs consent: nobody unsubscribes from receipts."},
    )

    OPENAPI_EXTRA: ClassVar[dict[str, Any] | None] = {
        "allOf": [combos.channel_purpose(consent_only=True, channel_default="email"), combos.exactly_one(("subject_id", "email"))]
    }

    @ma.validates_schema
    def _one_person(self, data, **kwargs):
        combos.check_exactly_one(data, ("subject_id", "email"), "subject", "Give exactly one of subject_id or email.")
        combos.check_channel_purpose(data, consent_only=True, channel_default="email")


class UnsubscribeLinkOut(ma.Schema):
    subject_id = fields.UUID()
    url = fields.String(metadata={"description": "The one-click unsubscribe URL (GET shows a page, POST unsubscribes)."})
    preferences_url = fields.String()
    headers = fields.Dict(
        keys=fields.String(), values=fields.String(), metadata={"description": "List-Unsubscribe and List-Unsubscribe-Post, ready to use."}
    )


# --- partners, disclosures ---------------------------------------------------------------


class PartnerIn(Strict):
    code = Text(
        required=True,
        validate=validate.Regexp(r"^[a-z0-9][a-z0-9_-]{1,39}$", error="use 2-40 lower-case letters, digits, '-' or '_'"),
        metadata={"description": "2-40 lower-case letters, digits, '-' or '_'."},
    )
    name = text(200, required=True)
    contact_email = email_address(required=True)


class PartnerOut(ma.Schema):
    code = fields.String()
    name = fields.String()
    contact_email = fields.String()
    created_at = fields.DateTime()


class DisclosureIn(Strict):
    subject_id = CanonicalUUID(required=True)
    partner = Text(required=True, metadata={"description": "The partner's code."})
    data_categories = fields.List(one_of(*combos.DATA_CATEGORIES), required=True, validate=validate.Length(min=1))
    purpose = one_of("share_for_fulfilment", "share_for_marketing", required=True)
    occurred_at = UtcDateTime(metadata={"description": "Not in the future; defaults to now."})


class DisclosureOut(ma.Schema):
    id = fields.Integer()
    subject_id = fields.UUID()
    partner = fields.Function(lambda d: d.partner.code)
    data_categories = fields.List(fields.String())
    purpose = fields.String()
    occurred_at = fields.DateTime()
    recorded_at = fields.DateTime()


class SalesQuery(Strict):
    from_ = PeriodBound(required=True, data_key="from")
    to = PeriodBound(required=True)
    format = one_of("json", "csv")

    @ma.post_load
    def _rename(self, data, **kwargs):
        data["from"] = data.pop("from_")
        return data


class SaleOut(ma.Schema):
    reference = fields.String()
    plan = fields.String(allow_none=True)
    kind = fields.String()
    amount = fields.Integer(metadata={"description": "In the smallest unit of the currency."})
    currency = fields.String()
    paid_at = fields.DateTime()
    stripe_id = fields.String()


class SalesOut(ma.Schema):
    partner = fields.String()
    from_ = fields.DateTime(data_key="from", attribute="from")
    to = fields.DateTime()
    sales = fields.List(fields.Nested(SaleOut))
    totals = fields.Dict(keys=fields.String(), values=fields.Integer())


class EnquiryIn(Strict):
    occurred_at = UtcDateTime(metadata={"description": "When the person enquired, not in the future; defaults to now."})


class EnquiryOut(ma.Schema):
    id = fields.Integer()
    subject_id = fields.UUID()
    occurred_at = fields.DateTime()
    recorded_at = fields.DateTime()
