"""Bearer API keys and scopes for the JSON API."""

from __future__ import annotations

from functools import wraps
from typing import Any, NoReturn

from flask import g, request
from flask_smorest import abort

from ..access import service as access


def require(scope: str):
    """Let the view run only for a key holding `scope` (or `admin`): 401 without
    a valid key, 403 without the scope. Runs before body parsing."""

    def decorate(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            presented = bearer_key(request.headers.get("Authorization", ""))
            principal = access.authenticate(presented) if presented else None
            if principal is None:
                _refuse(401, "Send a valid API key as 'Authorization: Bearer <key>'.")
            if not principal.allows(scope):
                _refuse(403, f"This API key lacks the {scope!r} scope.")
            g.principal = principal
            return view(*args, **kwargs)

        # Describe the requirement in the OpenAPI document (flask-smorest reads _apidoc).
        doc = dict(getattr(guarded, "_apidoc", {}))
        manual = dict(doc.get("manual_doc", {}))
        manual["security"] = [{"bearerAuth": []}]
        manual["description"] = (manual.get("description", "") + f"\n\nRequires an API key with the `{scope}` scope.").strip()
        doc["manual_doc"] = manual
        marked: Any = guarded
        marked._apidoc = doc
        marked.required_scope = scope
        return marked

    return decorate


def bearer_key(authorization: str) -> str | None:
    """The key an Authorization header presents as `Bearer <key>`; None for any other scheme or none."""
    scheme, _, presented = authorization.partition(" ")
    return presented.strip() if scheme.lower() == "bearer" and presented else None


def _refuse(status: int, message: str) -> NoReturn:
    abort(status, message=message)
    raise AssertionError("abort() raises")


def actor() -> str:
    return g.principal.actor
