"""Reference data other systems manage: privacy-policy versions and suppressions."""

from __future__ import annotations

from flask.views import MethodView

from .. import consent
from ..db.scopes import reads, writes
from ..extensions import db
from ..subjects.identifiers import KINDS
from . import schemas
from .auth import actor, require
from .blueprint import Blueprint

blp = Blueprint("admin", __name__, url_prefix="/v1", description="Privacy-policy versions and suppressions.")


@blp.route("/policy-versions")
class Policies(MethodView):
    @reads
    @require("consent:read")
    @blp.response(200, schemas.PolicyOut(many=True))
    def get(self):
        """Published privacy-policy versions, newest first. Each consent event carries the one in force."""
        return consent.list_policies()

    @writes
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
    @writes
    @require("consent:write")
    @blp.arguments(schemas.SuppressionIn())
    @blp.response(201, schemas.SuppressionOut)
    @blp.alt_response(200, schema=schemas.SuppressionOut, description="Already suppressed; unchanged.")
    def post(self, data):
        """Never contact this identifier again (a bounce, a complaint, an objection)."""
        kind = next(k for k in KINDS if k in data)
        row, created = consent.suppress(kind=kind, value=data[kind], reason=data["reason"], note=data.get("note"), actor=actor())
        db.session.commit()
        return row, (201 if created else 200)
