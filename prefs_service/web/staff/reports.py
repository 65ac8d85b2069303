"""The yearly rights-request metrics (CCPA §7102), as a page and as CSV."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for

from ...clock import utcnow
from ...db.scopes import reads
from ...rights import report as request_metrics
from .. import no_store
from . import admin_required, bp, number_arg


@bp.get("/reports/requests")
@reads
@admin_required
@no_store
def request_report():
    """Admins only, as GET /v1/reports/requests (its `admin` scope): a reviewer gets 403."""
    now = utcnow()
    year = number_arg("year") if "year" in request.args else now.year - 1  # the last whole year, which §7102 publishes
    if year is None or not request_metrics.MIN_YEAR <= year <= request_metrics.MAX_YEAR:
        flash(f"Choose a year from {request_metrics.MIN_YEAR} to {request_metrics.MAX_YEAR}; here is last year.", "error")
        return redirect(url_for("staff.request_report"), code=303)
    figures = request_metrics.request_report(year=year, now=now)
    if request.args.get("format") == "csv":
        response = current_app.response_class(figures.as_csv(), mimetype="text/csv")
        response.headers["Content-Disposition"] = f'attachment; filename="requests-{year}.csv"'
        return response
    years = sorted({*request_metrics.years_with_requests(now=now), now.year - 1, year}, reverse=True)
    return render_template("staff/request_report.html", report=figures, years=years)
