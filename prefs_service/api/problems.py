"""RFC 9457 problem details for every error the JSON API returns."""

from __future__ import annotations

import marshmallow as ma
from flask import Response, current_app
from marshmallow import fields, validate
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from ..errors import Conflict, DomainError, Invalid, NotFound
from ..orders.stripe_events import BadSignature, NotConfigured

PROBLEM_TYPE = "application/problem+json"
STATUS_FOR = {NotFound: 404, Conflict: 409, Invalid: 422, BadSignature: 400, NotConfigured: 503}


class Problem(ma.Schema):
    """An error, as RFC 9457 problem details (application/problem+json)."""

    type = fields.String(
        required=True, metadata={"description": "`about:blank`, or the page explaining this problem type (e.g. …/problems/erased)."}
    )
    title = fields.String(required=True)
    status = fields.Integer(required=True, validate=validate.Range(min=400, max=599))
    detail = fields.String(metadata={"description": "What went wrong and what to do about it."})
    errors = fields.Dict(
        keys=fields.String(),
        metadata={
            "description": "Each bad field (or item index) with its messages; nested for nested input.",
            "additionalProperties": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "object"}]},
        },
    )


def problem_type_uri(name: str) -> str:
    """Where a problem type is explained: one page per type under /problems/."""
    return f"{current_app.config['PREFS'].base_url}/problems/{name}"


def problem(
    status: int, detail: str | None = None, *, errors: dict | None = None, headers: dict | None = None, type_: str | None = None
) -> Response:
    body = {"type": problem_type_uri(type_) if type_ else "about:blank", "title": HTTP_STATUS_CODES.get(status, "Error"), "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = _encodable(errors)
    response = current_app.response_class(current_app.json.dumps(body), status=status, mimetype=PROBLEM_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _encodable(value):
    """Error keys echo field names the client sent, which may hold lone
    surrogates that no JSON encoder writes: they are shown escaped."""
    if isinstance(value, dict):
        return {_encodable(key): _encodable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encodable(item) for item in value]
    if isinstance(value, str) and not value.isascii():
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def from_domain(error: DomainError) -> Response:
    status = next((code for cls, code in STATUS_FOR.items() if isinstance(error, cls)), 400)
    return problem(status, error.message, errors=error.errors or None, type_=error.problem_type)


DEFAULT_DETAIL = {
    400: "The request could not be understood.",
    401: "Send a valid API key as 'Authorization: Bearer <key>'.",
    404: "Nothing here.",
    405: "That method is not allowed here.",
    413: "The request body is too large.",
    415: "Send the body as application/json.",
    429: "Too many requests; slow down and retry later.",
    500: "Something went wrong on our side; nothing was changed. Try again later.",
}


def from_http(error: HTTPException) -> Response:
    """Werkzeug and webargs errors; webargs puts field messages in error.data."""
    data = getattr(error, "data", None) or {}
    errors = data.get("errors") or data.get("messages")
    if isinstance(errors, dict) and len(errors) == 1 and next(iter(errors)) in ("json", "query", "form", "path"):
        errors = next(iter(errors.values()))  # drop webargs' location level
    status = error.code or 500
    detail = data.get("message") or _detail_for(status, errors) or error.description
    headers = dict(data.get("headers") or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="prefs_service"')
    if status == 405 and hasattr(error, "valid_methods") and error.valid_methods:
        headers.setdefault("Allow", ", ".join(error.valid_methods))
    return problem(status, detail, errors=errors if isinstance(errors, dict) else ({"body": errors} if errors else None), headers=headers)


def _detail_for(status: int, errors) -> str | None:
    if status == 422 and errors:
        return "The request has invalid fields; see `errors`."
    if status == 400 and errors:
        return (
            "The request body is not valid JSON." if "Invalid JSON" in str(errors) else "The request could not be understood; see `errors`."
        )
    return DEFAULT_DETAIL.get(status)
