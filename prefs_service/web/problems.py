"""What each problem type the API answers with means (RFC 9457 asks that a
type URI, when dereferenced, explain the problem to people)."""

from __future__ import annotations

from flask import Blueprint, abort, render_template

from ..db.scopes import reads

bp = Blueprint("problems", __name__)

PROBLEM_TYPES = {
    "erased": (
        "The person was erased at their request",
        "We erased this person's data because they asked us to. Whichever key names them (subject id, "
        "CRM reference, email, phone, fax or postal address), every consent check answers erased, and "
        "nothing more is recorded about them: single writes answer 409 with this type, batches list them "
        "in skipped_erased. Remove them from your lists. They come back only by their own choice, through "
        "a link we mail to them.",
    ),
}


@bp.get("/problems/<name>")
@reads
def explain(name: str):
    if name not in PROBLEM_TYPES:
        abort(404)
    title, text = PROBLEM_TYPES[name]
    return render_template("problem.html", title=title, text=text)
