"""The page staff land on: what needs attention now."""

from __future__ import annotations

from flask import render_template

from ...clock import utcnow
from ...console import dashboard as figures
from ...db.scopes import reads
from .. import no_store
from . import bp, staff_required


@bp.get("/dashboard")
@reads
@staff_required
@no_store
def dashboard():
    return render_template("staff/dashboard.html", figures=figures.figures(now=utcnow()))
