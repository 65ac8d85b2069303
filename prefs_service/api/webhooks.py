from __future__ import annotations

from flask import request
from flask.views import MethodView

from ..extensions import db
from ..orders import service as orders
from .blueprint import Blueprint

blp = Blueprint("webhooks", __name__, url_prefix="/webhooks", description="Events from the payment provider.")


@blp.route("/stripe")
class StripeWebhook(MethodView):
    @blp.doc(security=[], description="Signed by Stripe (Stripe-Signature, 5-minute tolerance); no API key.")
    def post(self):
        """Receive a Stripe event: verified, stored once by its id, applied by a job."""
        event = orders.verify_webhook(request.get_data(), request.headers.get("Stripe-Signature"))
        outcome = orders.accept_event(event)
        db.session.commit()
        return {"received": True, "outcome": outcome}
