"""Search (by email, phone, fax, request or order reference, CRM reference)
and a person's page, with what staff may do for them: suppress an identifier,
start a request. The search term travels in a POST body only, so it never
reaches an access log, and is looked up by keyed hash."""

from __future__ import annotations

import uuid

from flask import flash, redirect, render_template, request, url_for

from ...access import service as access
from ...clock import utcnow
from ...console import profile, search
from ...console.dashboard import DUE_SOON
from ...db.scopes import reads, writes
from ...errors import DomainError
from ...extensions import db
from ...orders.service import money
from ...rights.models import CORRECTABLE_FIELDS, TYPES
from .. import no_store
from . import actor, bp, commit, flash_error, number_arg, staff_required


@bp.get("/search")
@reads
@staff_required
@no_store
def search_page():
    return render_template("staff/search.html", kinds=search.KINDS, kind=search.ANY, term="", hits=None, message=None)


@bp.post("/search")
@reads
@staff_required
@no_store
def find():
    term, kind = request.form.get("term", ""), request.form.get("kind", search.ANY)
    try:
        hits = search.search(term=term, kind=kind)
    except DomainError as exc:
        message = f"{exc.message} {' '.join(m for ms in exc.errors.values() for m in ms)}".strip()
        return _results(term, kind, None, message, status=422)
    if len(hits) == 1 and (hits[0].request_id is not None or not hits[0].erased):  # a request stays worth opening
        return redirect(_target(hits[0]), code=303)
    if not hits:
        return _results(term, kind, hits, f"Nothing matches that {search.KINDS[kind].lower() if kind != search.ANY else 'search'}.")
    return _results(term, kind, hits, None)


def _target(hit: search.Hit) -> str:
    if hit.request_id is not None:
        return url_for("staff.detail", request_id=hit.request_id)
    assert hit.subject_id is not None
    return url_for("staff.person", subject_id=hit.subject_id) + ("#orders" if hit.kind == "order" else "")


def _results(term: str, kind: str, hits, message, status: int = 200):
    kind = kind if kind in search.KINDS else search.ANY
    targets = [(hit, _target(hit) if (hit.request_id or hit.subject_id) else None) for hit in hits or []]
    page = render_template("staff/search.html", kinds=search.KINDS, kind=kind, term=term, hits=targets, message=message)
    return page, status


@bp.get("/people/<uuid:subject_id>")
@reads
@staff_required
@no_store
def person(subject_id: uuid.UUID):
    before = number_arg("before")
    record = profile.load(subject_id, before=before)
    now = utcnow()
    return render_template(
        "staff/person.html",
        record=record,
        names=access.actor_names(record.actors()),
        kind_labels=profile.KIND_LABELS,
        disclosure_purposes=profile.DISCLOSURE_PURPOSES,
        reasons=profile.STAFF_SUPPRESSION_REASONS,
        request_types=TYPES,
        correctable=CORRECTABLE_FIELDS,
        money=money,
        before=before,
        now=now,
        soon=now + DUE_SOON,
    )


@bp.post("/people/<uuid:subject_id>/suppress")
@writes
@staff_required
def suppress(subject_id: uuid.UUID):
    commit(
        lambda: profile.suppress(
            subject_id=subject_id,
            kind=request.form.get("kind", ""),
            reason=request.form.get("reason", ""),
            note=request.form.get("note"),
            actor=actor(),
        ),
        lambda created: "Suppressed: we will not contact them on it." if created else "It was suppressed already.",
    )
    return redirect(url_for("staff.person", subject_id=subject_id) + "#suppressions", code=303)


@bp.post("/people/<uuid:subject_id>/requests")
@writes
@staff_required
def start_request(subject_id: uuid.UUID):
    kind = request.form.get("type", "")
    changes = {field: value for field in CORRECTABLE_FIELDS if (value := request.form.get(f"new_{field}", "").strip())}
    try:
        made = profile.start_request(
            subject_id=subject_id,
            type=kind,
            email=request.form.get("email"),
            changes=changes,
            explanation=request.form.get("explanation", "").strip() or None,
            actor=actor(),
        )
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        flash_error(exc)
        return redirect(url_for("staff.person", subject_id=subject_id) + "#new-request", code=303)
    flash(f"Request {made.reference} started; you vouched for who they are.", "ok")
    return redirect(url_for("staff.detail", request_id=made.id), code=303)
