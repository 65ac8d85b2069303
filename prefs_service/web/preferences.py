"""The preference center: every channel and purpose on one page, and a way to
get a fresh link without an old mail."""

from __future__ import annotations

import io
from urllib.parse import urlsplit

from flask import Blueprint, flash, get_flashed_messages, redirect, render_template, request, send_file
from flask_wtf import FlaskForm
from wtforms import EmailField
from wtforms.validators import DataRequired, Length

from .. import channels, consent, links, tokens
from ..db.scopes import reads, writes
from ..errors import Conflict, Invalid
from ..extensions import db
from ..ledger import receipts
from . import LinkNotValid, an_email_address, evidence, gpc_signal, honour_gpc, no_store, public_form_limits, subject_from_token

bp = Blueprint("preferences", __name__)

NOT_VALID = "This link to your preferences is not valid or has expired. Ask for a new one below."


def _chosen() -> set[tuple[str, str]]:
    """The (channel, purpose) pairs ticked on the form ("channel.purpose" values)."""
    pairs = (value.partition(".") for value in request.form.getlist("granted"))
    return {(channel, purpose) for channel, dot, purpose in pairs if dot}


def _mask(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}{'•' * max(len(local) - 1, 2)}@{domain}"


@bp.route(links.PREFERENCES_ROUTE, methods=["GET", "POST"])
@writes  # a GET may record a Global Privacy Control opt-out
@no_store
def page(token: str):
    subject = subject_from_token("preferences", token, NOT_VALID)
    honour_gpc(subject)
    gpc = gpc_signal()
    if request.method == "POST":  # the CSRF token was checked before we got here
        shown_before = _ticked(consent.preference_view(subject))
        if request.form.get("action") == "stop_all":
            consent.stop_all_marketing(subject=subject, evidence=evidence())
        else:
            consent.save_preferences(subject=subject, granted=_chosen(), evidence=evidence())
        # Count what the person sees change on the page: stopping all marketing also
        # withdraws what was never granted or not shown, and that is no change to them.
        _flash_saved(len(shown_before ^ _ticked(consent.preference_view(subject))))
        db.session.commit()
        return redirect(request.path, code=303)  # Post/Redirect/Get: a reload repeats nothing
    db.session.commit()
    email = subject.identifier("email")
    saved = get_flashed_messages(category_filter=[SAVED])
    return render_template(
        "preferences.html",
        channels=consent.preference_view(subject),
        policy=consent.current_policy(),
        gpc=gpc,
        saved=saved[-1] if saved else None,
        who=_mask(email.value) if email else None,
    )


SAVED = "preferences-saved"


@bp.route(links.PREFERENCES_ROUTE + "/receipts")
@reads
@no_store
def download_receipts(token: str):
    """The person's consent receipts (both standard formats) as one ZIP."""
    subject = subject_from_token("preferences", token, NOT_VALID)
    out = io.BytesIO()
    receipts.write_archive(subject_id=subject.id, withdraw_url=links.preferences_url(subject.id), out=out)
    out.seek(0)
    return send_file(out, mimetype="application/zip", as_attachment=True, download_name="consent-receipts.zip")


def _ticked(view: list[dict]) -> set[tuple[str, str]]:
    """The boxes the page shows ticked."""
    return {
        (channel["name"], purpose["name"])
        for channel in view
        for purpose in channel["purposes"]
        if purpose["choice"] and purpose["granted"] and not channel["suppressed"]
    }


def _flash_saved(changes: int) -> None:
    """A one-time message for the page the browser is redirected to."""
    if changes:
        flash(f"Your choices are saved ({changes} change{'s' if changes != 1 else ''}).", SAVED)
    else:
        flash("Your choices are saved; nothing needed changing.", SAVED)


class LinkRequestForm(FlaskForm):
    email = EmailField(
        "Your email address",
        validators=[DataRequired("Enter your email address."), Length(max=320, message="That address is too long."), an_email_address],
    )


@bp.route("/preferences", methods=["GET", "POST"])
@writes
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


RETURN_NOT_VALID = "This link is not valid or has expired. Ask for a new one below."
RETURN_USED = "This link was used already: your address is with us again. Ask for a link to your preferences below."


def _returning_hash(token: str) -> bytes:
    """The keyed hash of the erased address a come-back link was sent to."""
    try:
        return bytes.fromhex(str(tokens.verify("return", token).get("h")))
    except (tokens.InvalidToken, ValueError):
        raise LinkNotValid(RETURN_NOT_VALID) from None


@bp.route(links.RETURN_ROUTE, methods=["GET", "POST"])
@writes
@no_store
def come_back(token: str):
    """A person we erased, back through a link mailed to their old address."""
    email_hash = _returning_hash(token)
    if not consent.erased_address(email_hash):
        raise LinkNotValid(RETURN_USED)
    purposes = [p for p in channels.CHANNELS["email"].purposes if p.needs_consent]
    errors, message, email, chosen = {}, None, "", set()
    if request.method == "POST":  # the CSRF token was checked before we got here
        email = request.form.get("email", "")
        chosen = _chosen()
        try:
            subject, recorded = consent.come_back(email_hash=email_hash, typed_email=email, granted=chosen, evidence=evidence())
        except Invalid as exc:
            db.session.rollback()
            errors, message = exc.errors, exc.message
        except Conflict:
            db.session.rollback()
            raise LinkNotValid(RETURN_USED) from None
        else:
            _flash_saved(recorded)
            db.session.commit()
            return redirect(urlsplit(links.preferences_url(subject.id)).path, code=303)
    page = render_template("preferences_return.html", purposes=purposes, errors=errors, message=message, email=email, chosen=chosen)
    return page, (400 if errors else 200)
