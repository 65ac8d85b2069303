"""Public pages for rights requests: make one, confirm it, download an export."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request, send_file
from flask_wtf import FlaskForm
from wtforms import EmailField, StringField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Length, Optional

from .. import links
from ..db.scopes import reads, writes
from ..errors import Conflict, DomainError, Invalid, NotFound
from ..extensions import csrf, db
from ..rights import service as rights
from ..rights import work
from ..rights.models import CORRECTABLE_FIELDS
from . import no_store, public_form_limits

bp = Blueprint("privacy_requests", __name__, url_prefix="/privacy-requests")

NOT_VALID = "This link is not valid or has expired."
TYPE_CHOICES = [
    ("access", "Send me a copy of the data you hold about me"),
    ("correction", "Correct the data you hold about me"),
    ("erasure", "Erase the data you hold about me"),
]


class RequestForm(FlaskForm):
    type = StringField("What would you like?", validators=[DataRequired(), AnyOf([value for value, _ in TYPE_CHOICES])])
    email = EmailField("Your email address", validators=[DataRequired(), Length(max=320)])
    name = StringField("Correct name", validators=[Optional(), Length(max=255)])
    new_email = EmailField("Correct email address", validators=[Optional(), Length(max=320)])
    phone = StringField("Correct telephone number", validators=[Optional(), Length(max=64)])
    fax = StringField("Correct fax number", validators=[Optional(), Length(max=64)])
    postal_address = TextAreaField("Correct postal address", validators=[Optional(), Length(max=500)])
    explanation = TextAreaField("Why (for a correction)", validators=[Optional(), Length(max=2000)])

    def changes(self) -> dict:
        values = {"name": self.name.data, "email": self.new_email.data, "phone": self.phone.data,
                  "fax": self.fax.data, "postal_address": self.postal_address.data}  # fmt: skip
        return {field: value.strip() for field, value in values.items() if field in CORRECTABLE_FIELDS and value and value.strip()}


@bp.route("/new", methods=["GET", "POST"])
@writes
@public_form_limits
@no_store
def new():
    form = RequestForm()
    errors = {}
    if form.validate_on_submit():
        try:
            made = rights.submit(
                type=form.type.data,
                email=form.email.data,
                changes=form.changes() if form.type.data == "correction" else None,
                explanation=form.explanation.data or None,
                actor="requester",
            )
            db.session.commit()
            return render_template("privacy_requests/received.html", reference=made.reference)
        except Invalid as exc:
            db.session.rollback()
            errors = exc.errors
    status = 400 if request.method == "POST" else 200
    return render_template("privacy_requests/new.html", form=form, errors=errors, choices=TYPE_CHOICES), status


@bp.route(links.VERIFY_ROUTE.removeprefix("/privacy-requests"), methods=["GET", "POST"])
@writes
@csrf.exempt  # the signed token in the URL is the authority, as for unsubscribe links
@no_store
def verify(token: str):
    """GET shows a button; only the POST confirms, so link scanners confirm nothing."""
    try:
        item = rights.request_from_token("verify", token)
        if request.method == "POST":
            item = rights.confirm(token=token)
            db.session.commit()
    except NotFound:
        abort(404, description=NOT_VALID + " Please make your request again.")
    except Conflict as exc:
        abort(409, description=exc.message)
    return render_template("privacy_requests/verify.html", item=item)


@bp.get(links.DOWNLOAD_ROUTE.removeprefix("/privacy-requests"))
@reads
@no_store
def download(token: str):
    try:
        item = rights.request_from_token("download", token)
    except DomainError:
        abort(404, description=NOT_VALID)
    path = work.export_path(item)
    if path is None:
        abort(404, description="This download has expired and the file is deleted. You can ask for a new copy at any time.")
    return send_file(path, mimetype="application/zip", as_attachment=True, download_name=f"my-data-{item.reference}.zip")
