"""The preference center: every channel and purpose on one page, and a way to
get a fresh link without an old mail."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request
from flask_wtf import FlaskForm
from wtforms import EmailField
from wtforms.validators import DataRequired, Length

from .. import links
from ..consent import service as consent
from ..extensions import db, intent
from . import evidence, no_store, public_form_limits, subject_from_token

bp = Blueprint("preferences", __name__)

NOT_VALID = "This link to your preferences is not valid or has expired. Ask for a new one below."


def _mask(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}{'•' * max(len(local) - 1, 2)}@{domain}"


@bp.route(links.PREFERENCES_ROUTE, methods=["GET", "POST"])
@intent("write")  # a GET may record a Global Privacy Control opt-out
@no_store
def page(token: str):
    subject = subject_from_token("preferences", token, NOT_VALID)
    gpc = request.headers.get("Sec-GPC", "").strip() == "1"
    if gpc:
        consent.honour_gpc(subject=subject, evidence=evidence())
    if request.method == "POST":  # the CSRF token was checked before we got here
        if request.form.get("action") == "stop_all":
            changed = consent.stop_all_marketing(subject=subject, evidence=evidence())
        else:
            granted = {tuple(value.split(".", 1)) for value in request.form.getlist("granted") if "." in value}
            changed = consent.save_preferences(subject=subject, granted=granted, evidence=evidence())
        db.session.commit()
        return redirect(f"{request.path}?saved={len(changed)}", code=303)
    db.session.commit()
    email = subject.identifier("email")
    return render_template(
        "preferences.html",
        channels=consent.preference_view(subject),
        policy=consent.current_policy(),
        gpc=gpc,
        saved=request.args.get("saved", type=int),
        who=_mask(email.value) if email else None,
    )


class LinkRequestForm(FlaskForm):
    email = EmailField("Your email address", validators=[DataRequired(), Length(max=320)])


@bp.route("/preferences", methods=["GET", "POST"])
@public_form_limits
@no_store
def request_link():
    form = LinkRequestForm()
    if form.validate_on_submit():
        consent.request_preferences_link(email=form.email.data)
        db.session.commit()
        return render_template("preferences_requested.html")
    status = 400 if request.method == "POST" else 200
    return render_template("preferences_request.html", form=form), status
