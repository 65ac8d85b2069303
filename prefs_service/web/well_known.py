"""/.well-known/gpc.json: that this site honours Global Privacy Control
(https://privacycg.github.io/gpc-spec/, "the GPC support resource")."""

from __future__ import annotations

from flask import Blueprint, jsonify

from ..db.scopes import reads

bp = Blueprint("well_known", __name__)

# The day what we do on a GPC signal last changed (consent.self_service.honour_gpc).
GPC_LAST_UPDATE = "2026-12-06"


@bp.get("/.well-known/gpc.json")
@reads  # it reads nothing; every view declares a scope
def gpc():
    response = jsonify({"gpc": True, "lastUpdate": GPC_LAST_UPDATE})
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
