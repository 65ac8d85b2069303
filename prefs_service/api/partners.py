from __future__ import annotations

import csv
import io

import sqlalchemy as sa
from flask import current_app, request
from flask.views import MethodView

from ..db.scopes import reads, writes
from ..extensions import db
from ..orders import service as orders
from ..partners import service as partners
from ..partners.models import Partner
from . import schemas
from .auth import actor, require
from .blueprint import Blueprint

blp = Blueprint("partners", __name__, url_prefix="/v1", description="Partners, resellers and what we disclosed to them.")


@blp.route("/partners")
class Partners(MethodView):
    @writes
    @require("admin")
    @blp.arguments(schemas.PartnerIn())
    @blp.response(201, schemas.PartnerOut)
    @blp.problems(409)
    def post(self, data):
        """Register a partner or reseller."""
        partner = partners.create_partner(actor=actor(), **data)
        db.session.commit()
        return partner

    @reads
    @require("consent:read")
    @blp.response(200, schemas.PartnerOut(many=True))
    def get(self):
        """Every partner."""
        return db.session.scalars(sa.select(Partner).order_by(Partner.code)).all()


@blp.route("/disclosures")
class Disclosures(MethodView):
    @writes
    @require("consent:write")
    @blp.arguments(schemas.DisclosureIn())
    @blp.response(201, schemas.DisclosureOut)
    @blp.problems(404, 409)
    def post(self, data):
        """Record that a partner received some of a person's data. Sharing for
        marketing needs the person's share_for_marketing consent (409 without)."""
        disclosure = partners.record_disclosure(
            subject_id=data["subject_id"],
            partner_code=data["partner"],
            data_categories=data["data_categories"],
            purpose=data["purpose"],
            occurred_at=data.get("occurred_at"),
            actor=actor(),
        )
        db.session.commit()
        return disclosure


@blp.route("/partners/<code>/sales")
class PartnerSales(MethodView):
    @require("admin")
    @blp.arguments(schemas.SalesQuery(), location="query")
    @blp.response(200, schemas.SalesOut)
    @blp.doc(
        responses={
            "200": {
                "description": "JSON, or CSV with format=csv or Accept: text/csv.",
                "content": {"application/json": {"schema": schemas.SalesOut}, "text/csv": {"schema": {"type": "string"}}},
            }
        }
    )
    @reads
    @blp.problems(404)
    def get(self, query, code):
        """Payments on orders the partner referred, from `from` (inclusive) to `to` (exclusive): what they are owed on."""
        sales, totals = orders.partner_sales(code=code, start=query["from"], end=query["to"])
        wants_csv = query.get("format") == "csv" or request.accept_mimetypes.best == "text/csv"
        if not wants_csv:
            return {"partner": code, "from": query["from"], "to": query["to"], "sales": sales, "totals": totals}
        out = io.StringIO()
        writer = csv.writer(out)
        columns = ["reference", "plan", "kind", "amount", "currency", "paid_at", "stripe_id"]
        writer.writerow(columns)
        for sale in sales:
            writer.writerow([sale[c].isoformat() if c == "paid_at" else sale[c] for c in columns])
        response = current_app.response_class(out.getvalue(), mimetype="text/csv")
        response.headers["Content-Disposition"] = f'attachment; filename="{code}-sales.csv"'
        return response
