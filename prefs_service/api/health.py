from __future__ import annotations

from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask.views import MethodView
from marshmallow import fields

from ..db.scopes import reads
from ..extensions import db
from ..jobs.dispatch import describe_error, jobs
from ..registers import status
from .blueprint import Blueprint


class HealthOut(ma.Schema):
    status = fields.String(required=True, metadata={"enum": ["ok"]})


class RegisterStatusOut(ma.Schema):
    register = fields.String(required=True)
    channel = fields.String(required=True)
    list_date = fields.Date(
        allow_none=True, metadata={"description": "The current full list's date; null: never imported (not consulted)."}
    )
    age_days = fields.Integer(allow_none=True)
    stale_after_days = fields.Integer(allow_none=True, metadata={"description": "The register's rule; null: none."})
    stale = fields.Boolean(
        required=True, metadata={"description": "Past its rule: checks answer register_stale (or warn, per PREFS_REGISTER_STALE)."}
    )
    entries = fields.Integer(allow_none=True)


class ReadyOut(ma.Schema):
    status = fields.String(required=True, metadata={"enum": ["ready", "unavailable"]})
    database = fields.String(required=True, metadata={"description": "`ok`, or what went wrong reaching it."})
    broker = fields.String(required=True, metadata={"description": "`ok`, or what went wrong reaching it."})
    registers = fields.List(
        fields.Nested(RegisterStatusOut),
        metadata={"description": "Each national register's current list; a stale one does not make the service unready."},
    )


def _register_out(state: status.RegisterState) -> dict[str, Any]:
    imported = state.list_id is not None
    return {
        "register": state.register,
        "channel": state.channel,
        "list_date": state.list_date,
        "age_days": state.age_days,
        "stale_after_days": state.stale_after_days,
        "stale": state.stale,
        "entries": state.entries if imported else None,
    }


blp = Blueprint("health", __name__, url_prefix="/", description="Liveness and readiness for load balancers and orchestrators.")


@blp.route("healthz")
class Health(MethodView):
    @reads
    @blp.doc(security=[])
    @blp.response(200, HealthOut)
    def get(self):
        """The process is up."""
        return {"status": "ok"}


@blp.route("readyz")
class Ready(MethodView):
    @reads
    @blp.doc(security=[])
    @blp.response(200, ReadyOut, description="The database and the broker answer.")
    @blp.alt_response(503, schema=ReadyOut, description="Not ready: `database` or `broker` says what went wrong.")
    def get(self):
        """The database and the broker answer; 503 names what does not. Also
        each national register's list date, age and staleness."""
        checks = {}
        registers = None
        try:
            db.session.execute(sa.text("SELECT 1"))
            checks["database"] = "ok"
            registers = [_register_out(state) for state in status.states()]
        except Exception as exc:  # noqa: BLE001 - readiness reports whatever went wrong
            checks["database"] = describe_error(exc)
        finally:
            db.session.rollback()
        try:
            jobs().ping()
            checks["broker"] = "ok"
        except Exception as exc:  # noqa: BLE001 - readiness reports whatever went wrong
            checks["broker"] = describe_error(exc)
        ready = all(v == "ok" for v in checks.values())
        body: dict[str, Any] = {"status": "ready" if ready else "unavailable", **checks}
        if registers is not None:
            body["registers"] = registers
        return body, (200 if ready else 503)
