"""The JSON API: blueprints, OpenAPI document, problem+json errors."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from . import admin, consents, health, links, partners, requests, subjects, webhooks

API_BLUEPRINTS = (health.blp, subjects.blp, consents.blp, links.blp, requests.blp, partners.blp, admin.blp, webhooks.blp)


class PrefsApi(Api):
    def _register_error_handlers(self):
        """Errors are rendered app-wide (problem+json here, pages for the web); see create_app."""


def init_app(app: Flask) -> Api:
    app.config.update(
        API_TITLE="prefs_service",
        API_VERSION="v1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/",
    )
    api = PrefsApi(
        app,
        spec_kwargs={
            "info": {
                "description": "May we contact this person, on this channel, for this purpose? "
                "Errors are application/problem+json (RFC 9457)."
            },
        },
    )
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "description": "An API key from `prefs api-key create`."})
    for blueprint in API_BLUEPRINTS:
        api.register_blueprint(blueprint)
    return api


def is_api_request(request) -> bool:
    return request.blueprint in {b.name for b in API_BLUEPRINTS} or request.path.startswith(("/v1/", "/openapi", "/webhooks/"))
