"""The JSON API: blueprints, OpenAPI document, problem+json errors."""

from __future__ import annotations

import http
from typing import Any

from apispec import BasePlugin
from flask import Flask
from flask_smorest import Api
from flask_smorest.spec.plugins import integerconverter2paramschema
from flask_smorest.utils import prepare_response
from werkzeug.routing import IntegerConverter

from . import admin, consents, docs, health, jobs, ledger, links, partners, receipts, registers, reports, rights, subjects, webhooks
from .blueprint import PATH_ID_MAX
from .fields import document_field
from .problems import PROBLEM_TYPE, Problem
from .schemas import CheckQuery, ScreenQuery

API_BLUEPRINTS = (
    health.blp,
    subjects.blp,
    consents.blp,
    links.blp,
    rights.blp,
    jobs.blp,
    partners.blp,
    admin.blp,
    webhooks.blp,
    registers.blp,
    reports.blp,
    ledger.blp,
    receipts.blp,
)
API_PATHS = ("/v1/", "/openapi", "/webhooks/", "/healthz", "/readyz", "/metrics")


class PathIdConverter(IntegerConverter):
    """`<id:name>`: digits, documented as a 32-bit id. A larger one is refused
    by the Blueprint naming the parameter (a 422), not by failing to route."""

    def __init__(self, map, *args, **kwargs):
        super().__init__(map, max=PATH_ID_MAX)

    def to_python(self, value: str) -> int:
        return int(value)


class CrossFieldRules(BasePlugin):
    """Adds a Strict schema's OPENAPI_EXTRA (anyOf/oneOf across fields) to its component."""

    def schema_helper(self, name, definition, **kwargs):
        schema = kwargs.get("schema")
        cls = schema if isinstance(schema, type) else type(schema)
        return dict(getattr(cls, "OPENAPI_EXTRA", None) or {})


class PrefsApi(Api):
    # Every operation lists the errors it can answer; no catch-all "default".
    DEFAULT_ERROR_RESPONSE_NAME = None
    ERROR_SCHEMA = Problem

    def _register_error_handlers(self):
        """Errors are rendered app-wide (problem+json here, pages for the web); see create_app."""

    def _register_responses(self):
        """One response component per status, errors as they are sent: problem+json."""
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
                prepare_response(response, self.spec, PROBLEM_TYPE)
            self.spec.components.response(status.name, response, lazy=True)


def init_app(app: Flask) -> Api:
    app.config.update(
        API_TITLE="prefs_service",
        API_VERSION="v1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
    )
    docs.init_app(app)
    app.url_map.converters["id"] = PathIdConverter
    api = PrefsApi(
        app,
        spec_kwargs={
            "info": {
                "description": "May we contact this person, on this channel, for this purpose? "
                "Errors are application/problem+json (RFC 9457)."
            },
            "extra_plugins": [CrossFieldRules()],
        },
    )
    api.register_converter(PathIdConverter, integerconverter2paramschema)
    api.ma_plugin.converter.add_attribute_function(document_field)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "An API key from `prefs api-key create`."}
    )
    api.spec.components.security_scheme(
        "stripeSignature",
        {
            "type": "apiKey",
            "in": "header",
            "name": "Stripe-Signature",
            "description": "Stripe's signature over the raw body (5-minute tolerance).",
        },
    )
    api.spec.components.schema("CheckQuery", schema=CheckQuery)
    api.spec.components.schema("ScreenQuery", schema=ScreenQuery)
    for blueprint in API_BLUEPRINTS:
        api.register_blueprint(blueprint)
    return api


def is_api_request(request) -> bool:
    return request.blueprint in {b.name for b in API_BLUEPRINTS} or request.path.startswith(API_PATHS)
