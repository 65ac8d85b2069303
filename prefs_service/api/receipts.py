"""Consent receipts over the API: a ledger event as an ISO/IEC TS 27560 record
(W3C DPV JSON-LD) or a Kantara Consent Receipt v1.1."""

from __future__ import annotations

import orjson
from flask import current_app
from flask.views import MethodView
from marshmallow import Schema, fields

from ..db.scopes import reads
from ..ledger import receipts
from ..ledger.receipt_formats import FORMATS, ISO27560
from .auth import require
from .blueprint import Blueprint
from .fields import one_of
from .schemas import Strict

blp = Blueprint("receipts", __name__, url_prefix="/v1", description="Standard consent receipts, with their proof from the log.")


class ReceiptQuery(Strict):
    format = one_of(*FORMATS, load_default=ISO27560, metadata={"description": "iso27560 (default) or kantara."})


class ReceiptOut(Schema):
    """The receipt document: its shape is the format's (see the README and prefs_service/ledger/schemas/)."""

    class Meta:
        unknown = "include"

    ledgerProof = fields.Dict(metadata={"description": "Kantara: the proof block; ISO 27560 names it prefs:ledgerProof."})


@blp.route("/consent/events/<id:event_id>/receipt")
class EventReceipt(MethodView):
    @reads
    @require("consent:read")
    @blp.arguments(ReceiptQuery(), location="query")
    @blp.response(200, ReceiptOut, description="The receipt, with the inclusion proof and the signed checkpoint.")
    @blp.alt_response(
        202,
        schema=ReceiptOut,
        description=(
            "The event is not yet in a signed checkpoint: the receipt carries `ledgerProof: {status: pending}`. "
            "Ask again after Retry-After seconds for the proof."
        ),
        headers={"Retry-After": {"description": "Seconds to wait before asking again.", "schema": {"type": "integer"}}},
    )
    @blp.problems(404)
    def get(self, query, event_id):
        """One ledger event as a standard consent receipt: `format=iso27560` or `format=kantara`.

        A person we erased has no receipts (404). How to withdraw points at the public preferences page."""
        document, pending = receipts.receipt(event_id=event_id, fmt=query["format"])
        response = current_app.response_class(orjson.dumps(document), status=202 if pending else 200, mimetype="application/json")
        if pending:
            response.headers["Retry-After"] = str(receipts.RETRY_AFTER_SECONDS)
        return response
