"""Published figures: the yearly rights-request metrics (CCPA §7102)."""

from __future__ import annotations

import marshmallow as ma
from flask import current_app, request
from flask.views import MethodView
from marshmallow import fields, validate

from ..db.scopes import reads
from ..rights import report as request_metrics
from .auth import require
from .blueprint import Blueprint
from .fields import QueryInteger, one_of
from .schemas import Strict

blp = Blueprint("reports", __name__, url_prefix="/v1/reports", description="Yearly figures to publish.")


class RequestReportQuery(Strict):
    year = QueryInteger(
        required=True,
        validate=validate.Range(min=request_metrics.MIN_YEAR, max=request_metrics.MAX_YEAR),
        metadata={"description": "The calendar year, from 1 January 00:00 UTC to the next."},
    )
    format = one_of("json", "csv", metadata={"description": "`csv` for CSV; without it, the Accept header decides (JSON by default)."})


class TypeFiguresOut(ma.Schema):
    type = fields.String(metadata={"description": "The request type."})
    received = fields.Integer(metadata={"description": "Requests received in the year."})
    complied_in_whole_or_part = fields.Integer(metadata={"description": "Of those, completed before the year ended."})
    denied = fields.Integer(metadata={"description": "Of those, rejected, or expired unconfirmed, before the year ended."})
    denied_unverified = fields.Integer(metadata={"description": "Of the denied, those never confirmed by the requester."})
    not_answered = fields.Integer(metadata={"description": "Of those received, still open at the year's end (or now)."})
    median_days_to_answer = fields.Float(
        allow_none=True, metadata={"description": "From receipt to answer, over those complied with or rejected; null if none."}
    )
    mean_days_to_answer = fields.Float(allow_none=True, metadata={"description": "As the median, the mean."})


class RequestReportOut(ma.Schema):
    year = fields.Integer()
    from_ = fields.DateTime(data_key="from", attribute="starts", metadata={"description": "The year's start (inclusive)."})
    to = fields.DateTime(attribute="ends", metadata={"description": "The year's end (exclusive)."})
    as_of = fields.DateTime(metadata={"description": "The end of the year, or now while it lasts."})
    complete = fields.Boolean(metadata={"description": "Whether the year is over, so the figures no longer change."})
    types = fields.List(fields.Nested(TypeFiguresOut), metadata={"description": "One line per request type."})


@blp.route("/requests")
class RequestReport(MethodView):
    @reads
    @require("admin")
    @blp.arguments(RequestReportQuery(), location="query")
    @blp.response(200, RequestReportOut)
    @blp.doc(
        responses={
            "200": {
                "description": "JSON, or CSV (a header line, then one line per request type) with format=csv or Accept: text/csv.",
                "content": {"application/json": {"schema": RequestReportOut}, "text/csv": {"schema": {"type": "string"}}},
            }
        }
    )
    def get(self, query):
        """Rights requests received in a calendar year (UTC), per type: how many were complied with in whole
        or in part, denied (`denied_unverified` of them never confirmed by the requester) or not answered by
        the year's end, and the median and mean days from receipt to answer over those complied with or
        rejected (CCPA regulations §7102). For the year in progress the figures are as of now."""
        figures = request_metrics.request_report(year=query["year"])
        if query.get("format") != "csv" and not (query.get("format") is None and request.accept_mimetypes.best == "text/csv"):
            return figures
        response = current_app.response_class(figures.as_csv(), mimetype="text/csv")
        response.headers["Content-Disposition"] = f'attachment; filename="requests-{figures.year}.csv"'
        return response
