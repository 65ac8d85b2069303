from __future__ import annotations

import marshmallow as ma
from flask import request
from flask.views import MethodView
from marshmallow import fields

from ..db.scopes import writes
from ..extensions import db
from ..orders import stripe_events
from .blueprint import Blueprint


class StripeEventIn(ma.Schema):
    """The parts of a Stripe event this service reads (it keeps an allow-list of the rest)."""

    id = fields.String(required=True, metadata={"pattern": "^[^\\u0000]*$"})
    type = fields.String(required=True, metadata={"pattern": "^[^\\u0000]*$"})
    data = fields.Raw(metadata={"type": "object", "description": "`data.object` is required for the event types this service acts on."})

    class Meta:
        unknown = ma.INCLUDE


class StripeAck(ma.Schema):
    received = fields.Boolean(required=True)
    outcome = fields.String(required=True, metadata={"enum": ["accepted", "duplicate", "ignored"]})


blp = Blueprint("webhooks", __name__, url_prefix="/webhooks", description="Events from the payment provider.")


@blp.route("/stripe")
class StripeWebhook(MethodView):
    @blp.doc(
        security=[],
        description="Signed by Stripe (Stripe-Signature, 5-minute tolerance); no API key. "
        "400 for a wrong or stale signature, or a signed body that is not a Stripe event.",
        parameters=[{"in": "header", "name": "Stripe-Signature", "required": True, "schema": {"type": "string"}}],
        requestBody={"required": True, "content": {"application/json": {"schema": StripeEventIn}}},
    )
    @writes
    @blp.response(200, StripeAck)
    @blp.problems(400, 413, 422, 503)
    def post(self):
        """Receive a Stripe event: verified, stored once by its id, applied by a job."""
        event = stripe_events.verify_webhook(request.get_data(), request.headers.get("Stripe-Signature"))
        outcome = stripe_events.accept_event(event)
        db.session.commit()
        return {"received": True, "outcome": outcome}
