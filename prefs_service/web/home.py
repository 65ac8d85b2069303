"""The front door: who we are, and the two things a person can do here."""

from __future__ import annotations

from flask import Blueprint, render_template

from ..db.scopes import reads

bp = Blueprint("home", __name__)


@bp.get("/")
@reads
def index():
    return render_template("home.html")
