"""HTML pages: what a person sees after clicking a link in a mail."""

from __future__ import annotations

from flask import Blueprint, Flask, render_template
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

FRIENDLY = {
    400: "We could not understand that request.",
    404: "There is nothing at this address.",
    405: "That action is not available here.",
    413: "That was more than we can accept in one go.",
    429: "Too many attempts. Please wait a few minutes and try again.",
    500: "Something went wrong on our side and nothing was changed. Please try again later.",
}


def error_page(error: HTTPException):
    status = error.code or 500
    message = getattr(error, "page_message", None) or FRIENDLY.get(status, error.description)
    return render_template("error.html", status=status, title=HTTP_STATUS_CODES.get(status, "Error"), message=message), status


# Shared templates (base layout, error page) for every page blueprint.
pages = Blueprint("pages", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    app.register_blueprint(pages)
