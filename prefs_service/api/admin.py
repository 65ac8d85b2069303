"""Reference data other systems manage: privacy-policy versions and suppressions."""

from __future__ import annotations

from flask.views import MethodView

from ..consent import service as consent
from ..extensions import db
from ..subjects.service import IDENTIFIER_FIELDS
from . import schemas
from .auth import actor, require
from .blueprint import Blueprint

blp = Blueprint("admin", __name__, url_prefix="/v1", description="Privacy-policy versions and suppressions.")


@blp.route("/policy-versions")
class Policies(MethodView):
    @require("consent:read")
    @blp.response(200, schemas.PolicyOut(many=True))
    def get(self):
        """Published privacy-policy versions, newest first. Each consent event carries the one in force."""
        return consent.list_policies()

    @require("admin")
    @blp.arguments(schemas.PolicyIn())
    @blp.response(201, schemas.PolicyOut)
    @blp.problems(409)
    def post(self, data):
        """Publish a privacy-policy version with its "last updated" date."""
        policy = consent.publish_policy(actor=actor(), **data)
        db.session.commit()
        return policy


@blp.route("/suppressions")
class Suppressions(MethodView):
    @require("consent:write")
    @blp.arguments(schemas.SuppressionIn())
    @blp.response(201, schemas.SuppressionOut)
    @blp.alt_response(200, schema=schemas.SuppressionOut, description="Already suppressed; unchanged.")
    def post(self, data):
        """Never contact this identifier again (a bounce, a complaint, an objection)."""
        field = next(f for f in IDENTIFIER_FIELDS if f in data)
        row, created = consent.suppress(
            kind=IDENTIFIER_FIELDS[field], value=data[field], reason=data["reason"], note=data.get("note"), actor=actor()
        )
        db.session.commit()
        return row, (201 if created else 200)
