from __future__ import annotations

import sqlalchemy as sa
from flask.views import MethodView

from ..extensions import db
from ..partners import service as partners
from ..partners.models import Partner
from . import schemas
from .auth import actor, require
from .blueprint import Blueprint

blp = Blueprint("partners", __name__, url_prefix="/v1", description="Partners, resellers and what we disclosed to them.")


@blp.route("/partners")
class Partners(MethodView):
    @require("admin")
    @blp.arguments(schemas.PartnerIn())
    @blp.response(201, schemas.PartnerOut)
    def post(self, data):
        """Register a partner or reseller."""
        partner = partners.create_partner(actor=actor(), **data)
        db.session.commit()
        return partner

    @require("consent:read")
    @blp.response(200, schemas.PartnerOut(many=True))
    def get(self):
        """Every partner."""
        return db.session.scalars(sa.select(Partner).order_by(Partner.code)).all()


@blp.route("/disclosures")
class Disclosures(MethodView):
    @require("consent:write")
    @blp.arguments(schemas.DisclosureIn())
    @blp.response(201, schemas.DisclosureOut)
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
