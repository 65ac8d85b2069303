"""prefs_service: one organisation's source of truth for consent and data-subject rights."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import orjson
import sqlalchemy as sa
from flask import Flask, make_response, request
from flask.json.provider import JSONProvider
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, InternalServerError

from . import api, framework_patches, hooks, logs, metrics, security_headers, web
from .access.service import KeyCache
from .api import check_lane, problems
from .config import Settings, load_settings
from .consent import decisions
from .db import engine as database
from .db import outage, scopes
from .errors import DomainError
from .extensions import csrf, db, limiter
from .jobs import dispatch
from .notices import service as notices
from .orders import service as orders
from .rights import opt_outs
from .rights import service as rights
from .subjects import identifiers

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    """Build the app from PREFS_* settings (or the `settings` given); keyword
    overrides replace single settings, as tests do."""
    settings = settings or load_settings(**overrides)
    logs.configure(settings.log_level)

    app = framework_patches.PrefsFlask(__name__)
    app.config.update(
        PREFS=settings,
        SECRET_KEY=settings.secret_keys[0],
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings.database_url),
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.production,
        JSON_SORT_KEYS=False,
        RATELIMIT_STORAGE_URI=settings.ratelimit_storage_url,
        RATELIMIT_HEADERS_ENABLED=True,
        # The signed token in the URL is the capability; the CSRF token only has
        # to outlive a person reading the page, so it lasts as long as the session.
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=settings.production,
    )
    app.config.update(settings.flask_overrides)
    app.json = _OrjsonProvider(app)

    db.init_app(app)
    database.init_app(app)
    identifiers.init_app(app)
    app.extensions["prefs.key_cache"] = KeyCache(settings.api_key_cache_seconds)
    _wire_hooks(app)
    dispatch.init_app(app)
    decisions.listen()  # the read model a check probes, kept in every commit's transaction
    csrf.init_app(app)
    limiter.init_app(app)
    api.init_app(app)
    for blueprint in api.API_BLUEPRINTS:
        csrf.exempt(blueprint)  # bearer keys, not cookies: nothing to forge
    web.init_app(app)
    metrics.init_app(app)
    security_headers.init_app(app)
    framework_patches.apply(app)

    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DomainError, _domain_error)
    app.register_error_handler(sa.exc.DBAPIError, _database_error)
    framework_patches.one_session_teardown(app, outage.end_session)  # in place of Flask-SQLAlchemy's own
    app.register_error_handler(Exception, _unexpected_error)
    framework_patches.refuse_async_views(app)
    scopes.refuse_views_without_scope(app, exempt=_UNSCOPED_ENDPOINTS)
    check_lane.install(app)
    if settings.trusted_proxies:  # outermost: the lane, like every view, sees the client's scheme and address
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]  # Flask's documented way to add WSGI middleware
            app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies, x_host=settings.trusted_proxies
        )
    return app


# Endpoints that touch no database: files and the API's own document.
_UNSCOPED_ENDPOINTS = frozenset(
    {"static", "pages.static", "api-docs.openapi_json", "api-docs.openapi_swagger_ui", api.docs.ASSETS_ENDPOINT}
)


def _wire_hooks(app: Flask) -> None:
    """Which domain reacts to which other's change: all of it, here."""
    hooks.init_app(app)
    hooks.subscribe(app, hooks.CONSENT_WITHDRAWN, orders.consent_withdrawn)
    hooks.subscribe(app, hooks.CONSENT_WITHDRAWN, opt_outs.sale_sharing_withdrawn)
    hooks.subscribe(app, hooks.NOTICE_SENT, orders.notice_sent)
    hooks.subscribe(app, hooks.NOTICE_SENT, rights.notice_sent)
    hooks.subscribe(app, hooks.JOB_RETRIED, rights.job_retried)
    hooks.subscribe(app, hooks.JOB_CANCELLED, rights.job_cancelled)
    hooks.subscribe(app, hooks.JOB_CANCELLED, notices.job_cancelled)
    hooks.subscribe(app, hooks.LEDGER_RECORDED, metrics.ledger_recorded)


def _engine_options(url: str) -> dict[str, Any]:
    # Parameters are personal data: keep them out of logs and error messages.
    if url.startswith("sqlite"):
        return {"hide_parameters": True, "connect_args": {"timeout": 30, "check_same_thread": False}}
    # No pre-ping: it costs a round trip on every request. After a database
    # restart the first statement on a stale connection fails once, and
    # SQLAlchemy then discards the whole pool.
    return {"hide_parameters": True, "pool_size": 10, "max_overflow": 20, "pool_recycle": 3600}


def _http_error(error: HTTPException) -> ResponseReturnValue:
    if api.is_api_request(request):
        return problems.from_http(error)
    return web.error_page(error)


def _domain_error(error: DomainError) -> ResponseReturnValue:
    db.session.rollback()
    if api.is_api_request(request):
        return problems.from_domain(error)
    status = next((code for cls, code in problems.STATUS_FOR.items() if isinstance(error, cls)), 400)
    http_error = HTTPException(description=error.message)
    http_error.code = status
    return web.error_page(http_error)


def _unexpected_error(error: Exception) -> ResponseReturnValue:
    if outage.database_unavailable(error):  # a driver's own error, or a pool with no connection to give
        return _database_unavailable(error)
    db.session.rollback()
    log.exception("unhandled error on %s %s", request.method, request.url_rule.rule if request.url_rule else "?")
    return _http_error(InternalServerError())


def _database_error(error: sa.exc.DBAPIError) -> ResponseReturnValue:
    if outage.database_unavailable(error):
        return _database_unavailable(error)
    return _unexpected_error(error)  # a bad statement or a broken constraint is a bug


def _database_unavailable(error: Exception) -> ResponseReturnValue:
    """503 with Retry-After: the connection is gone (a restart, a failover, our
    sessions ended) or the database cannot take us now. Whatever this request
    wrote was rolled back with its connection, unless its COMMIT was under way."""
    unknown = outage.commit_outcome_unknown()
    with contextlib.suppress(Exception):  # the connection is gone already; the pool replaces it
        db.session.rollback()
    log.warning(
        "database unavailable on %s %s: %s",
        request.method,
        request.url_rule.rule if request.url_rule else "?",
        dispatch.describe_error(error),
    )
    headers = {"Retry-After": str(outage.RETRY_AFTER_SECONDS)}
    if api.is_api_request(request):
        return problems.problem(503, outage.OUTCOME_UNKNOWN_DETAIL if unknown else outage.UNAVAILABLE_DETAIL, headers=headers)
    http_error = HTTPException()
    http_error.code = 503
    response = make_response(web.error_page(http_error))
    response.headers.update(headers)
    return response


class _OrjsonProvider(JSONProvider):
    """orjson: many times faster than json at the large answers of bulk checks."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj, default=str, option=orjson.OPT_NON_STR_KEYS).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return orjson.loads(s)
