"""Request and response shapes of rights requests in the JSON API (the rest are in
schemas.py); the OpenAPI document is generated from them."""

from __future__ import annotations

from typing import Any, ClassVar

import marshmallow as ma
from marshmallow import fields, validate

from ..rights.agents import KINDS_IN_WORDS, MAX_PERMISSION_BYTES
from ..rights.models import TYPES
from ..subjects.jurisdictions import JURISDICTIONS
from . import combinations as combos
from .fields import Base64File, StrictBoolean, StrictInteger, Text, email_address, one_of, phone_number, postal, text
from .schemas import Strict, uuid_text

# Something besides white space, as JSON Schema (ECMA-262 \s) and Python (str.isspace, which
# also counts U+001C-001F and U+0085) both read it: the service strips names with str.strip().
# No NUL anywhere (PostgreSQL refuses it; fields.Text says so): a pattern of the field's own
# replaces fields.NO_NUL_PATTERN in the OpenAPI document, so this one must exclude NUL too.
NOT_BLANK = r"^[^\u0000]*[^\s\u0000\u001c-\u001f\u0085\ufeff][^\u0000]*$"


class ChangesIn(Strict):
    name = Text(validate=[validate.Length(max=255), validate.Regexp(NOT_BLANK, error="give 1 to 255 characters")])
    email = email_address()
    phone = phone_number()
    fax = phone_number()
    postal_address = postal()

    OPENAPI_EXTRA: ClassVar[dict[str, Any] | None] = {"minProperties": 1}

    @ma.validates_schema
    def _something(self, data, **kwargs):
        if not data:
            raise ma.ValidationError("give new values for some of: name, email, phone, fax, postal_address")


class AgentIn(Strict):
    name = Text(
        required=True,
        validate=[validate.Length(min=1, max=255), validate.Regexp(NOT_BLANK, error="give the agent's name (1 to 255 characters)")],
        metadata={"description": "The agent's name (a person's, or the business's contact)."},
    )
    email = email_address(required=True, metadata={"description": "Where we tell the agent how the request stands."})
    organisation = text(255, metadata={"description": "For a business acting as agent: its name."})
    registration = text(100, metadata={"description": "For a business: its registration (e.g. with the Secretary of State)."})
    permission = Base64File(
        MAX_PERMISSION_BYTES,
        required=True,
        metadata={
            "description": f"The consumer's signed permission for the agent, {KINDS_IN_WORDS} of at most "
            f"{MAX_PERMISSION_BYTES // (1024 * 1024)} MB, in base64. The kind is read from the file's own first bytes."
        },
    )


class AgentOut(ma.Schema):
    name = fields.String()
    email = fields.String(allow_none=True)
    organisation = fields.String(allow_none=True)
    registration = fields.String(allow_none=True)
    permission_type = fields.String(metadata={"description": "application/pdf, image/png or image/jpeg."})
    permission_bytes = fields.Integer()
    permission_held = fields.Boolean(metadata={"description": "False once erased with the request's data."})
    power_of_attorney_at = fields.DateTime(allow_none=True)


class RequestIn(Strict):
    type = one_of(
        *TYPES,
        required=True,
        metadata={"description": "opt_out_sale_sharing and limit_sensitive need no identity verification; a job applies them at once."},
    )
    jurisdiction = one_of(
        *JURISDICTIONS,
        metadata={"description": "The person's jurisdiction: the request follows its clock, and it becomes the person's once confirmed."},
    )
    email = email_address(metadata={"description": "Where we answer; for subject_id, defaults to the email we hold."})
    subject_id = uuid_text()
    changes = fields.Nested(ChangesIn, metadata={"description": "Correction only, and required for it."})
    explanation = text(2000)
    verified = StrictBoolean(
        load_default=False, metadata={"description": "Staff already checked the requester's identity: no verification mail."}
    )
    agent = fields.Nested(
        AgentIn,
        metadata={
            "description": "An authorised agent makes the request on the consumer's behalf. The consumer (at `email`) "
            "still confirms it through the mailed link, unless staff record the agent's power of attorney."
        },
    )

    OPENAPI_EXTRA: ClassVar[dict[str, Any] | None] = combos.request_shape()

    @ma.validates_schema
    def _who(self, data, **kwargs):
        if "email" not in data and "subject_id" not in data:
            raise ma.ValidationError("Give email or subject_id.", "email")
        if (data.get("type") == "correction") != ("changes" in data):
            raise ma.ValidationError("required for a correction, and only for one", "changes")


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
    extension_days = fields.Integer(allow_none=True)
    extension_reason = fields.String(allow_none=True)
    jurisdiction = fields.String(
        allow_none=True, metadata={"description": "Whose clock the request follows; null: made before jurisdictions."}
    )
    acknowledge_by = fields.DateTime(allow_none=True, metadata={"description": "US-CA: the acknowledgement is owed by then."})
    acknowledged_at = fields.DateTime(allow_none=True, metadata={"description": "US-CA: when the acknowledgement mail left."})
    created_at = fields.DateTime()
    verified_at = fields.DateTime(allow_none=True)
    due_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    export_expires_at = fields.DateTime(allow_none=True)
    agent = fields.Nested(AgentOut, allow_none=True)
    timeline = fields.List(fields.Nested(TimelineEntry))


class RejectIn(Strict):
    reason = text(2000, required=True)


class ExtendIn(Strict):
    months = StrictInteger(
        validate=validate.OneOf([1, 2]),
        metadata={"description": "GDPR (GB, EU, other): 1 or 2, required. Leave out for a US-CA request: it extends by 45 days."},
    )
    reason = text(2000, required=True)
