"""The national do-not-contact registers: their state, and uploading a file to import (admin keys)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import marshmallow as ma
from flask import current_app, request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import fields

from ..db.scopes import reads, writes
from ..extensions import db
from ..registers import REGISTERS, loader, status
from .auth import actor, require
from .blueprint import Blueprint
from .schemas import Strict

blp = Blueprint(
    "registers", __name__, url_prefix="/v1/registers", description="National do-not-contact registers (TPS, CTPS, FPS, MPS, DNC)."
)

# The body is the register's file as published: plain text or CSV.
UPLOAD_TYPES = ("text/plain", "text/csv", "application/octet-stream")
_COPY_BYTES = 1024 * 1024


class ImportQuery(Strict):
    list_date = fields.Date(required=True, metadata={"description": "The date the register published the file (YYYY-MM-DD)."})
    delta = fields.Boolean(
        load_default=False,
        truthy={"true"},
        falsy={"false"},
        metadata={"description": "true: add the file's lines to the current list and take away those marked as removals."},
    )


class RejectionOut(ma.Schema):
    line = fields.Integer(attribute="line_no", metadata={"description": "The line's number in the file, from 1."})
    reason = fields.String(metadata={"description": "Why it was refused; a number is shown masked."})


class ImportOut(ma.Schema):
    register = fields.String()
    kind = fields.String(metadata={"enum": ["full", "delta"]})
    list_id = fields.Integer()
    list_date = fields.Date()
    status = fields.String(metadata={"enum": ["current", "applied"]})
    accepted = fields.Integer(metadata={"description": "Lines taken."})
    rejected = fields.Integer(metadata={"description": "Lines refused; the import went on without them."})
    removed = fields.Integer(metadata={"description": "Entries a delta took away."})
    entries = fields.Integer(
        metadata={
            "description": "Entries a full list holds (a number listed twice is one); for a delta, entries it added that were not listed."
        }
    )
    seconds = fields.Float()
    rejections = fields.List(fields.Nested(RejectionOut), metadata={"description": f"The first {loader.FIRST_REJECTIONS} rejected lines."})


class RegisterOut(ma.Schema):
    register = fields.String(metadata={"enum": sorted(REGISTERS)})
    label = fields.String()
    channel = fields.String()
    stale_after_days = fields.Integer(allow_none=True, metadata={"description": "How old a list may be before checks stop trusting it."})
    list_id = fields.Integer(allow_none=True)
    list_date = fields.Date(allow_none=True, metadata={"description": "The current full list's date; null before the first import."})
    imported_at = fields.DateTime(allow_none=True)
    entries = fields.Integer()
    age_days = fields.Integer(allow_none=True)
    last_import_status = fields.String(allow_none=True, metadata={"enum": ["loading", "current", "replaced", "failed", "applied", None]})
    last_import_at = fields.DateTime(allow_none=True)


REGISTER_PARAMETER = {
    "in": "path",
    "name": "register",
    "required": True,
    "schema": {"type": "string", "enum": sorted(REGISTERS)},
}


@blp.route("")
class Registers(MethodView):
    @reads
    @require("admin")
    @blp.response(200, RegisterOut(many=True))
    def get(self):
        """Each register's current list (date, entries, age) and its latest import."""
        return status.states()


@blp.route("/<register>/imports", parameters=[REGISTER_PARAMETER])
class Imports(MethodView):
    @blp.doc(
        requestBody={
            "required": True,
            "description": "The register's file as published (README, Registers). At most PREFS_MAX_REGISTER_UPLOAD_BYTES.",
            "content": {kind: {"schema": {"type": "string", "format": "binary"}} for kind in UPLOAD_TYPES},
        },
    )
    @writes
    @require("admin")
    @blp.arguments(ImportQuery(), location="query")
    @blp.response(201, ImportOut)
    @blp.problems(400, 404, 409, 413, 415)
    def post(self, query, register):
        """Import a register's file: a full list replaces the register's contents at once (checks see the old
        list or the new, never half); `delta=true` adds and removes. Rejected lines are counted and the first
        ones listed with their line numbers; they never stop the import. 409 for a delta with no full list
        yet, or while another import of the register runs; 422 when no line at all was accepted (the
        current list stays)."""
        if register not in REGISTERS:
            abort(404, message=f"No register {register!r}; the registers are {', '.join(sorted(REGISTERS))}.")
        if request.mimetype not in UPLOAD_TYPES:
            abort(415, message=f"Send the register's file as the body, as one of {', '.join(UPLOAD_TYPES)}.")
        request.max_content_length = current_app.config["PREFS"].max_register_upload_bytes
        with tempfile.TemporaryDirectory(prefix="prefs-register-") as folder:
            path = Path(folder) / "upload"
            if _save_body(path) == 0:
                abort(422, message="The request needs the register's file as its body.", errors={"body": ["Missing request body."]})
            db.session.commit()  # the key check's transaction ends before the import's own
            try:
                summary = loader.import_file(
                    register=register, path=path, list_date=query["list_date"], delta=query["delta"], imported_by=actor()
                )
            except loader.ImportFailed as exc:
                lines = [f"line {r.line_no}: {r.reason}" for r in exc.summary.rejections]
                abort(422, message=exc.message, errors={"body": lines or [exc.message]})
        return summary, 201


def _save_body(path: Path) -> int:
    """Stream the body to `path` (0600, as tempfile makes it); how many bytes."""
    written = 0
    with path.open("wb") as out:
        while chunk := request.stream.read(_COPY_BYTES):
            out.write(chunk)
            written += len(chunk)
    return written
