"""The single consent check's own lane through the WSGI app.

A single check is the call every send makes, by the million, and Flask's
request machinery (request and session objects, routing, hooks, the response
object) cost it more than the check itself: 0.90 M instructions a check the
whole way, 0.43 M through this lane (callgrind, bench/check_instructions.py's
harness, 2026-12-07). This lane answers the common case
directly: a GET of /v1/consent/check whose query has the common shape
(channel, purpose and one identifier, as check_query() reads it), with a
bearer key that holds the scope. It runs the same code the view runs (the
key check, the check itself, the answer's body, its metrics and security
headers) in an app context, and answers exactly what the view answers.

Anything else goes the whole way through Flask, untouched: another path or
method, a query the schema must read or refuse, a missing, wrong or
insufficient key, and any error at all (the view runs again, reads only, and
answers the problem as it always does). tests/api/test_check_lane.py holds
the two paths equal, answer for answer, headers included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from time import perf_counter
from typing import Any, cast

from flask import Flask

from .. import metrics, security_headers
from ..access import service as access
from ..db import scopes
from .auth import bearer_key
from .consents import check_answer, common_check_query

PATH = "/v1/consent/check"
SCOPE = "consent:read"
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def install(app: Flask) -> None:
    """Put the lane in front of the app's WSGI callable (inside any proxy middleware added later)."""
    endpoint = next(rule.endpoint for rule in app.url_map.iter_rules() if rule.rule == PATH)
    if _required_scope(app, endpoint) != SCOPE:
        raise RuntimeError(f"{PATH} is no longer the view this lane answers for")
    app.wsgi_app = _Lane(app, app.wsgi_app, endpoint)  # type: ignore[method-assign]  # Flask's documented way to add WSGI middleware


def _required_scope(app: Flask, endpoint: str) -> str | None:
    """The scope the view's GET requires (api/auth.py marks it)."""
    view_class = getattr(cast(Any, app.view_functions[endpoint]), "view_class", None)
    return getattr(getattr(view_class, "get", None), "required_scope", None)


class _Lane:
    def __init__(self, app: Flask, whole_way: WsgiApp, endpoint: str):
        self.app, self.whole_way, self.endpoint = app, whole_way, endpoint

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == PATH and environ.get("REQUEST_METHOD") == "GET":
            started = perf_counter()
            body = self._answer(environ)
            if body is not None:
                headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
                headers += security_headers.for_api(self.app, environ.get("wsgi.url_scheme", "http"))
                start_response("200 OK", headers)
                metrics.observe_request(self.endpoint, 200, perf_counter() - started)
                return [body]
        return self.whole_way(environ, start_response)

    def _answer(self, environ: dict[str, Any]) -> bytes | None:
        """The answer's body, or None to go the whole way."""
        presented = bearer_key(environ.get("HTTP_AUTHORIZATION", ""))
        if not presented or "HTTP_COOKIE" in environ:
            return None
        try:
            query = common_check_query(environ.get("QUERY_STRING", "").encode("latin-1"))
        except UnicodeError:  # as werkzeug reads it, the schema then says what is wrong
            return None
        if query is None:
            return None
        with self.app.app_context():
            try:
                principal = access.authenticate(presented)
                if principal is None or not principal.allows(SCOPE):
                    return None
                with scopes.read_only():
                    return check_answer(query)
            except Exception:  # noqa: BLE001 - the whole way answers it, as it answers every error
                return None
