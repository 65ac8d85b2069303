"""Browser security headers on every response: a Content-Security-Policy that
forbids framing and inline script, nosniff, a referrer policy, and HSTS in
production over HTTPS.

Every header list is built and validated once; a request picks one by its
endpoint and appends it, so the API's hot path pays a dictionary look-up and
one list extend."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any, cast

from flask import Flask, Response, request
from werkzeug.datastructures import Headers

from . import api

# Pages have no script at all and one same-origin stylesheet (web/static/prefs.css).
PAGE_POLICY = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
# JSON is never meant to be rendered as a document: nothing may load from it.
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"

COMMON = (("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"))
# Every page form is CSRF-protected, and over HTTPS Flask-WTF refuses a POST whose
# Referer is missing or from another origin (staff Approve and Retry included), so
# pages send the referrer to their own origin only, never to another site.
PAGE_REFERRER = ("Referrer-Policy", "same-origin")
API_REFERRER = ("Referrer-Policy", "no-referrer")
HSTS = ("Strict-Transport-Security", "max-age=63072000; includeSubDomains")

SWAGGER_UI_ENDPOINT = "openapi_swagger_ui"  # flask-smorest's name for the /docs view
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def init_app(app: Flask) -> None:
    """Add the headers to every response of `app` (call after all blueprints are registered)."""
    hsts = app.config["PREFS"].production
    page_headers = _by_scheme((("Content-Security-Policy", PAGE_POLICY), *COMMON, PAGE_REFERRER), hsts)
    api_headers = _by_scheme((("Content-Security-Policy", API_POLICY), *COMMON, API_REFERRER), hsts)
    swagger_endpoint = next((rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.endswith("." + SWAGGER_UI_ENDPOINT)), None)
    api_blueprints = {blueprint.name for blueprint in api.API_BLUEPRINTS}
    if swagger_endpoint is not None:
        api_blueprints.add(swagger_endpoint.rpartition(".")[0])  # its /openapi.json is API too
    docs = _SwaggerUiHeaders(hsts)
    by_endpoint = {}  # endpoint -> its headers, learnt on first sight (endpoints are few)

    def headers_for(current, endpoint: str | None, response: Response) -> tuple[list, list]:
        if endpoint == swagger_endpoint:
            return docs.for_page(response)
        if endpoint is None:  # no route: an error answer, problem+json under the API's addresses
            return api_headers if api.is_api_request(current) else page_headers
        by_endpoint[endpoint] = api_headers if endpoint.rpartition(".")[0] in api_blueprints else page_headers
        return by_endpoint[endpoint]

    def add_security_headers(response: Response) -> Response:
        current = cast(Any, request)._get_current_object()  # one proxy look-up instead of three
        endpoint = current.endpoint
        over_http, over_https = by_endpoint.get(endpoint) or headers_for(current, endpoint, response)
        # Headers.add would validate each constant value again on every response.
        response.headers._list.extend(over_https if hsts and current.is_secure else over_http)
        return response

    app.after_request(add_security_headers)
    app.extensions[API_HEADERS] = (api_headers, hsts)


API_HEADERS = "prefs.api_security_headers"


def for_api(app: Flask, scheme: str) -> list[tuple[str, str]]:
    """The headers add_security_headers gives an API answer over `scheme` (for api/check_lane.py)."""
    (over_http, over_https), hsts = app.extensions[API_HEADERS]
    return over_https if hsts and scheme in ("https", "wss") else over_http


def _by_scheme(headers: tuple, hsts: bool) -> tuple[list, list]:
    """(headers over HTTP, headers over HTTPS), validated once by werkzeug. HSTS is
    only meaningful over HTTPS (browsers ignore it over HTTP), so only sent there."""
    return list(Headers(headers).items()), list(Headers((*headers, HSTS) if hsts else headers).items())


class _SwaggerUiHeaders:
    """/docs is flask-smorest's Swagger UI: its script and stylesheet are served
    by this app (api/docs.py), nothing comes from elsewhere, and one inline
    script starts it. That script is allowed by its hash, taken from the first
    page served (the page is built from configuration alone, never from request
    data); any other inline script stays blocked."""

    def __init__(self, hsts: bool):
        self.hsts = hsts
        self.headers: tuple[list[Any], list[Any]] | None = None

    def for_page(self, response: Response) -> tuple[list, list]:
        if self.headers is None and response.status_code == 200:
            policy = ("Content-Security-Policy", self.policy(response.get_data(as_text=True)))
            self.headers = _by_scheme((policy, *COMMON, API_REFERRER), self.hsts)
        return self.headers or _by_scheme((("Content-Security-Policy", API_POLICY), *COMMON, API_REFERRER), self.hsts)

    def policy(self, page: str) -> str:
        hashes = " ".join(
            f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'" for script in _INLINE_SCRIPT.findall(page)
        )
        return (
            f"default-src 'none'; script-src 'self' {hashes}; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
