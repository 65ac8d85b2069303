"""Request and response shapes of the JSON API (marshmallow; the OpenAPI document
is generated from them)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from .. import channels
from ..consent import service as consent
from ..consent.models import STATUSES
from ..requests.models import STATUSES as REQUEST_STATUSES

CHANNEL_NAMES = list(channels.CHANNELS)
ALL_PURPOSES = sorted({p.name for c in channels.CHANNELS.values() for p in c.purposes})


class Strict(ma.Schema):
    class Meta:
        unknown = ma.RAISE


def text(max_length: int, **kwargs):
    return fields.String(validate=validate.Length(min=1, max=max_length), **kwargs)


class RecipientList(fields.List):
    """A list of strings, checked in one pass: bulk checks take 10,000 of them
    and per-item field objects would cost more than the lookup itself. Wrong
    items are answered `invalid` by the check, not refused here."""

    def __init__(self, max_items: int, **kwargs):
        super().__init__(fields.String(), validate=validate.Length(min=1, max=max_items), **kwargs)
        self.max_items = max_items

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list):
            raise ma.ValidationError("Not a valid list.")
        if len(value) > self.max_items:
            raise ma.ValidationError(f"At most {self.max_items} recipients per call; split the list.")
        return value


# --- subjects -------------------------------------------------------------------------


class SubjectFields(Strict):
    external_ref = text(255, allow_none=True, metadata={"description": "Your CRM's id for this person."})
    name = text(255, allow_none=True)
    email = text(320, allow_none=True)
    phone = text(64, allow_none=True)
    fax = text(64, allow_none=True)
    postal_address = text(500, allow_none=True)


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
    ip = text(64, allow_none=True, metadata={"description": "Stored truncated: /24 for IPv4, /48 for IPv6."})
    user_agent = fields.String(allow_none=True, metadata={"description": "Kept up to 512 characters."})
    note = text(consent.NOTE_LIMIT, allow_none=True)


class SubjectRef(Strict):
    subject_id = fields.String(metadata={"description": "Name the person by exactly one of these five."})
    external_ref = text(255)
    email = text(320)
    phone = text(64)
    fax = text(64)


class ConsentIn(SubjectRef):
    channel = fields.String(required=True, metadata={"enum": CHANNEL_NAMES})
    purpose = fields.String(required=True, metadata={"enum": ALL_PURPOSES})
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    source = fields.String(load_default="api", metadata={"enum": list(consent.API_SOURCES)})
    occurred_at = fields.AwareDateTime(metadata={"description": "When the person acted; defaults to now."})
    policy_version = text(40)
    evidence = fields.Nested(EvidenceIn)


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


class SubjectConsentsOut(ma.Schema):
    subject_id = fields.UUID()
    consents = fields.List(fields.Nested(ConsentStateOut))
    history = fields.List(fields.Nested(ConsentEventOut))
    history_before = fields.Integer(
        allow_none=True, metadata={"description": "Pass as `before` to read older history; null at the start."}
    )


class SubjectConsentsQuery(Strict):
    history = fields.Boolean(load_default=False)
    limit = fields.Integer(load_default=500, validate=validate.Range(min=1, max=5000))
    before = fields.Integer(validate=validate.Range(min=1))


class CheckQuery(Strict):
    channel = fields.String(required=True, metadata={"enum": CHANNEL_NAMES})
    purpose = fields.String(required=True, metadata={"enum": ALL_PURPOSES})
    email = fields.String()
    phone = fields.String()
    fax = fields.String()
    postal_address = fields.String()
    subject_id = fields.String()
    external_ref = fields.String()

    @ma.validates_schema
    def _one_person(self, data, **kwargs):
        given = [k for k in consent.CHECK_KEYS if k in data]
        if len(given) != 1:
            raise ma.ValidationError(f"Give exactly one of: {', '.join(consent.CHECK_KEYS)}.", "subject")


class CheckOut(ma.Schema):
    allowed = fields.Boolean()
    reason = fields.String(metadata={"enum": list(consent.REASONS)})
    since = fields.DateTime(allow_none=True)


class BulkCheckIn(Strict):
    channel = fields.String(required=True, metadata={"enum": CHANNEL_NAMES})
    purpose = fields.String(required=True, metadata={"enum": ALL_PURPOSES})
    identifier_type = fields.String(
        validate=validate.OneOf(consent.CHECK_KEYS),
        metadata={"description": "Defaults to the channel's own identifier (email, phone, fax, postal_address)."},
    )
    recipients = RecipientList(consent.BATCH_LIMIT, required=True)


class BulkCheckResult(ma.Schema):
    recipient = fields.String()
    allowed = fields.Boolean()
    reason = fields.String(metadata={"enum": list(consent.REASONS)})


class BulkCheckOut(ma.Schema):
    results = fields.List(fields.Nested(BulkCheckResult))


class ChangesQuery(Strict):
    after = fields.String(metadata={"description": "The `next` cursor of the previous page; omit to start at the beginning."})
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class ChangesOut(ma.Schema):
    events = fields.List(fields.Nested(ConsentEventOut))
    next = fields.String(allow_none=True, metadata={"description": "Pass as `after` to read on; keep it to resume later."})
    has_more = fields.Boolean()


# --- suppressions and policies ----------------------------------------------------------


class SuppressionIn(Strict):
    email = text(320)
    phone = text(64)
    fax = text(64)
    postal_address = text(500)
    reason = fields.String(required=True, validate=validate.OneOf([r for r in consent.SUPPRESSION_REASONS if r != "erasure"]))
    note = text(500)

    @ma.validates_schema
    def _one_identifier(self, data, **kwargs):
        given = [k for k in ("email", "phone", "fax", "postal_address") if k in data]
        if len(given) != 1:
            raise ma.ValidationError("Give exactly one of: email, phone, fax, postal_address.", "identifier")


class SuppressionOut(ma.Schema):
    kind = fields.String()
    reason = fields.String()
    created_at = fields.DateTime()


class PolicyIn(Strict):
    version = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9._-]{1,40}$", error="use 1-40 letters, digits, dots, dashes or underscores"))
    last_updated = fields.Date(required=True, metadata={"description": "The 'last updated' date shown to people."})
    url = fields.Url(allow_none=True)
    effective_at = fields.AwareDateTime(metadata={"description": "Defaults to now."})


class PolicyOut(ma.Schema):
    version = fields.String()
    last_updated = fields.Date()
    url = fields.String(allow_none=True)
    effective_at = fields.DateTime()


class UnsubscribeLinkIn(Strict):
    subject_id = fields.String()
    email = text(320)
    channel = fields.String(load_default="email", metadata={"enum": CHANNEL_NAMES})
    purpose = fields.String(required=True, metadata={"enum": ALL_PURPOSES})

    @ma.validates_schema
    def _one_person(self, data, **kwargs):
        if ("subject_id" in data) == ("email" in data):
            raise ma.ValidationError("Give exactly one of subject_id or email.", "subject")


class UnsubscribeLinkOut(ma.Schema):
    subject_id = fields.UUID()
    url = fields.String(metadata={"description": "The one-click unsubscribe URL (GET shows a page, POST unsubscribes)."})
    preferences_url = fields.String()
    headers = fields.Dict(
        keys=fields.String(), values=fields.String(), metadata={"description": "List-Unsubscribe and List-Unsubscribe-Post, ready to use."}
    )


# --- rights requests, partners, disclosures ----------------------------------------------


class RequestIn(Strict):
    type = fields.String(required=True, validate=validate.OneOf(["access", "erasure", "correction"]))
    email = text(320, metadata={"description": "Where we answer; for subject_id, defaults to the email we hold."})
    subject_id = fields.String()
    changes = fields.Dict(
        keys=fields.String(), values=fields.String(), metadata={"description": "Correction only: new values for name, email, phone, fax, postal_address."}
    )
    explanation = text(2000)
    verified = fields.Boolean(load_default=False, metadata={"description": "Staff already checked the requester's identity: no verification mail."})

    @ma.validates_schema
    def _who(self, data, **kwargs):
        if "email" not in data and "subject_id" not in data:
            raise ma.ValidationError("Give email or subject_id.", "email")


class TimelineEntry(ma.Schema):
    occurred_at = fields.DateTime()
    actor = fields.String()
    action = fields.String()
    details = fields.Dict()


class RequestOut(ma.Schema):
    id = fields.Integer()
    reference = fields.String()
    type = fields.String()
    status = fields.String()
    subject_id = fields.UUID(allow_none=True)
    email = fields.String(allow_none=True)
    changes = fields.Dict(allow_none=True)
    explanation = fields.String(allow_none=True)
    rejection_reason = fields.String(allow_none=True)
    extension_months = fields.Integer(allow_none=True)
    extension_reason = fields.String(allow_none=True)
    created_at = fields.DateTime()
    verified_at = fields.DateTime(allow_none=True)
    due_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    export_expires_at = fields.DateTime(allow_none=True)
    timeline = fields.List(fields.Nested(TimelineEntry))


class RequestListQuery(Strict):
    status = fields.List(fields.String(validate=validate.OneOf(REQUEST_STATUSES)))
    limit = fields.Integer(load_default=200, validate=validate.Range(min=1, max=1000))


class RejectIn(Strict):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class ExtendIn(Strict):
    months = fields.Integer(required=True, validate=validate.OneOf([1, 2]))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class PartnerIn(Strict):
    code = fields.String(required=True, metadata={"description": "2-40 lower-case letters, digits, '-' or '_'."})
    name = text(200, required=True)
    contact_email = text(320, required=True)


class PartnerOut(ma.Schema):
    code = fields.String()
    name = fields.String()
    contact_email = fields.String()
    created_at = fields.DateTime()


class DisclosureIn(Strict):
    subject_id = fields.UUID(required=True)
    partner = fields.String(required=True, metadata={"description": "The partner's code."})
    data_categories = fields.List(fields.String(), required=True)
    purpose = fields.String(required=True, metadata={"enum": ["share_for_fulfilment", "share_for_marketing"]})
    occurred_at = fields.AwareDateTime()


class DisclosureOut(ma.Schema):
    id = fields.Integer()
    subject_id = fields.UUID()
    partner = fields.Function(lambda d: d.partner.code)
    data_categories = fields.List(fields.String())
    purpose = fields.String()
    occurred_at = fields.DateTime()
    recorded_at = fields.DateTime()


class PeriodBound(fields.DateTime):
    """A date (its midnight, UTC) or a date and time with a zone."""

    def _deserialize(self, value, attr, data, **kwargs):
        from datetime import UTC, date, datetime

        if isinstance(value, str) and len(value) == 10:
            try:
                return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=UTC)
            except ValueError:
                raise ma.ValidationError("Not a date (YYYY-MM-DD) or date and time.") from None
        moment = super()._deserialize(value, attr, data, **kwargs)
        if moment.tzinfo is None:
            raise ma.ValidationError("Give a time zone, e.g. 2026-01-01T00:00:00Z.")
        return moment


class SalesQuery(Strict):
    from_ = PeriodBound(required=True, data_key="from")
    to = PeriodBound(required=True)
    format = fields.String(validate=validate.OneOf(["json", "csv"]))

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
