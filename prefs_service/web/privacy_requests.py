"""Public pages for rights requests: make one, confirm it, download an export."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request, send_file
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, EmailField, StringField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Length, Optional

from .. import links
from ..db.scopes import writes
from ..errors import Conflict, DomainError, Erased, Invalid, NotFound
from ..extensions import csrf, db
from ..rights import agents, work
from ..rights import service as rights
from ..rights.clocks import NO_VERIFICATION
from ..rights.models import CORRECTABLE_FIELDS
from ..subjects import jurisdictions
from . import LinkNotValid, an_email_address, honour_gpc, no_store, public_form_limits

bp = Blueprint("privacy_requests", __name__, url_prefix="/privacy-requests")

NOT_VALID = "This link is not valid or has expired."
ASK_AGAIN = ("You can make your request again: it takes a minute.", "Make a new request", "privacy_requests.new")
TYPE_CHOICES = [
    ("access", "Send me a copy of the data you hold about me"),
    ("correction", "Correct the data you hold about me"),
    ("erasure", "Erase the data you hold about me"),
    ("opt_out_sale_sharing", "Do not sell or share my personal information"),
    ("limit_sensitive", "Limit the use of my sensitive personal information"),
]
JURISDICTION_CHOICES = [("", "Not sure, or as you have it already"), *jurisdictions.LABELS.items()]


CHOOSE = "Choose what you would like us to do."
TOO_LONG = "That is longer than we can take: at most {max} characters."


class RequestForm(FlaskForm):
    type = StringField("What would you like?", validators=[DataRequired(CHOOSE), AnyOf([value for value, _ in TYPE_CHOICES], CHOOSE)])
    email = EmailField(
        "Your email address", validators=[DataRequired("Enter your email address."), Length(max=320, message=TOO_LONG), an_email_address]
    )
    name = StringField("Correct name", validators=[Optional(), Length(max=255, message=TOO_LONG)])
    new_email = EmailField("Correct email address", validators=[Optional(), Length(max=320, message=TOO_LONG), an_email_address])
    phone = StringField("Correct telephone number", validators=[Optional(), Length(max=64, message=TOO_LONG)])
    fax = StringField("Correct fax number", validators=[Optional(), Length(max=64, message=TOO_LONG)])
    postal_address = TextAreaField("Correct postal address", validators=[Optional(), Length(max=500, message=TOO_LONG)])
    explanation = TextAreaField("Why (for a correction)", validators=[Optional(), Length(max=2000, message=TOO_LONG)])
    jurisdiction = StringField(
        "Where you live", validators=[Optional(), AnyOf([value for value, _ in JURISDICTION_CHOICES], "Choose one of the places listed.")]
    )
    # An authorised agent making the request for someone else (rights/agents.py checks these).
    on_behalf = BooleanField("I am an authorised agent, making this request for someone else")
    agent_name = StringField("Your name", validators=[Optional(), Length(max=255, message=TOO_LONG)])
    agent_email = EmailField(
        "Your email address, as the agent", validators=[Optional(), Length(max=320, message=TOO_LONG), an_email_address]
    )
    agent_organisation = StringField("Your business's name (if a business)", validators=[Optional(), Length(max=255, message=TOO_LONG)])
    agent_registration = StringField("Its registration number (if a business)", validators=[Optional(), Length(max=100, message=TOO_LONG)])
    permission = FileField("Their signed permission")

    def agent(self) -> agents.AgentInput | None:
        if not self.on_behalf.data:
            return None
        upload = self.permission.data
        # One byte more than allowed is enough to say it is too large.
        document = upload.read(agents.MAX_PERMISSION_BYTES + 1) if upload is not None and hasattr(upload, "read") else b""
        return agents.AgentInput(
            name=self.agent_name.data or "",
            email=self.agent_email.data or "",
            permission=document,
            organisation=self.agent_organisation.data,
            registration=self.agent_registration.data,
        )

    def changes(self) -> dict:
        values = {"name": self.name.data, "email": self.new_email.data, "phone": self.phone.data,
                  "fax": self.fax.data, "postal_address": self.postal_address.data}  # fmt: skip
        return {field: value.strip() for field, value in values.items() if field in CORRECTABLE_FIELDS and value and value.strip()}


# The form field for each key the rights service names in its errors.
FIELD_OF = {"type": "type", "email": "email", "explanation": "explanation", "jurisdiction": "jurisdiction", "changes": "name", "changes.name": "name",
            "changes.email": "new_email", "changes.phone": "phone", "changes.fax": "fax", "changes.postal_address": "postal_address",
            "agent.name": "agent_name", "agent.email": "agent_email", "agent.organisation": "agent_organisation",
            "agent.registration": "agent_registration", "agent.permission": "permission"}  # fmt: skip
SAY_WHAT_TO_CORRECT = (
    "For a correction, fill in at least one correct value: your name, email address, telephone number, fax number or postal address."
)
ERASED_VALUE = "We erased the data of the person this belongs to, at their request, so we cannot use it."


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "?", "!")) else ".")


def _problems(form: RequestForm, found: dict[str, list[str]], *, erased: bool = False) -> dict[str, str]:
    """One sentence for each field with a problem, keyed by the field's id, in the page's order."""
    problems = {name: field.errors[0] for name, field in form._fields.items() if field.errors and name != "csrf_token"}
    for key, messages in found.items():
        if erased:  # Erased names the identifier kinds of the new values
            key = f"changes.{key}"
        field = FIELD_OF.get(key, "name" if key.startswith("changes") else "email")
        text = SAY_WHAT_TO_CORRECT if key == "changes" else ERASED_VALUE if erased else _sentence(messages[0])
        problems.setdefault(field, text)
    return {name: problems[name] for name in form._fields if name in problems}


@bp.route("/new", methods=["GET", "POST"])
@writes
@public_form_limits
@no_store
def new():
    form = RequestForm()
    found: dict[str, list[str]] = {}
    erased = False
    if form.validate_on_submit():
        try:
            made = rights.submit(
                type=form.type.data,
                email=form.email.data,
                changes=form.changes() if form.type.data == "correction" else None,
                explanation=form.explanation.data or None,
                jurisdiction=form.jurisdiction.data or None,
                agent=form.agent(),
                actor="agent" if form.on_behalf.data else "requester",
            )
            db.session.commit()
            return render_template(
                "privacy_requests/received.html",
                reference=made.reference,
                to_confirm=made.type not in NO_VERIFICATION,
                by_agent=made.agent is not None,
            )
        except Invalid as exc:
            db.session.rollback()
            found = exc.errors
        except Erased as exc:
            db.session.rollback()
            found, erased = exc.errors, True
    problems = _problems(form, found, erased=erased)
    page = render_template("privacy_requests/new.html", form=form, problems=problems, choices=TYPE_CHOICES, places=JURISDICTION_CHOICES)
    return page, (400 if request.method == "POST" else 200)


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
        _honour_gpc(item)
        db.session.commit()
    except NotFound:
        raise LinkNotValid(NOT_VALID + " Nothing was confirmed.", next_step=ASK_AGAIN) from None
    except Conflict as exc:
        abort(409, description=exc.message)
    return render_template("privacy_requests/verify.html", item=item)


def _honour_gpc(item) -> None:
    """The person a request is about, when we hold them, honours their GPC signal here too."""
    honour_gpc(item.subject_id)


@bp.get(links.DOWNLOAD_ROUTE.removeprefix("/privacy-requests"))
@writes  # a Global Privacy Control signal is recorded
@no_store
def download(token: str):
    try:
        item = rights.request_from_token("download", token)
    except DomainError:
        raise LinkNotValid(NOT_VALID, next_step=ASK_AGAIN) from None
    _honour_gpc(item)
    db.session.commit()
    path = work.export_path(item)
    if path is None:
        raise LinkNotValid(
            "This download has expired and the file is deleted. You can ask for a new copy at any time.", next_step=ASK_AGAIN
        )
    return send_file(path, mimetype="application/zip", as_attachment=True, download_name=f"my-data-{item.reference}.zip")
