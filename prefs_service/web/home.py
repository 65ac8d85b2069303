"""The front door: who we are, and the two things a person can do here."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from .. import consent
from ..db.scopes import reads

bp = Blueprint("home", __name__)


@bp.get("/")
@reads
def index():
    # PREFS_PRIVACY_POLICY_URL first; else the address of the policy version in force, if it has one.
    policy = consent.current_policy()
    policy_url = current_app.config["PREFS"].privacy_policy_url or (policy.url if policy is not None else None)
    return render_template("home.html", policy_url=policy_url)
