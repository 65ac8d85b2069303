"""prefs_service: one organisation's source of truth for consent and data-subject rights."""

from __future__ import annotations

import inspect
import logging

import orjson
import sqlalchemy as sa
from flask import Flask, current_app, g, make_response, request
from flask.json.provider import JSONProvider
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import HTTPException, InternalServerError

from . import api, db_outage, logs, security_headers, web
from .access.service import KeyCache
from .api import problems
from .config import Settings, load_settings
from .db_outage import OUTCOME_UNKNOWN_DETAIL, RETRY_AFTER_SECONDS, UNAVAILABLE_DETAIL, commit_outcome_unknown, database_unavailable
from .errors import DomainError
from .extensions import csrf, db, declare_read_only, end_declaration, limiter, migrate
from .jobs import dispatch
from .subjects import service as subjects

log = logging.getLogger(__name__)

READ_METHODS = {"GET", "HEAD", "OPTIONS"}


def create_app(settings: Settings | None = None, **overrides) -> Flask:
    """Build the app from PREFS_* settings (or the `settings` given); keyword
    overrides replace single settings, as tests do."""
    settings = settings or load_settings(**overrides)
    logs.configure(settings.log_level)

    app = _Flask(__name__)
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
    app.session_interface = _CookieSessions()
    if settings.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies, x_host=settings.trusted_proxies)

    db.init_app(app)
    migrate.init_app(app, db, directory=migrations_directory(), render_as_batch=True, compare_type=True)
    subjects.init_app(app)
    app.extensions["prefs.key_cache"] = KeyCache(settings.api_key_cache_seconds)
    dispatch.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    # Our limits sit on a few public forms and their decorators check them; the
    # app-wide hook Flask-Limiter also adds would cost every API call for nothing.
    app.before_request_funcs[None].remove(limiter._check_request_limit)
    api.init_app(app)
    for blueprint in api.API_BLUEPRINTS:
        csrf.exempt(blueprint)  # bearer keys, not cookies: nothing to forge
    web.init_app(app)
    security_headers.init_app(app)

    app.before_request(_declare_transaction_intent)
    app.teardown_request(_end_transaction_intent)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DomainError, _domain_error)
    app.register_error_handler(sa.exc.DBAPIError, _database_error)
    app.teardown_appcontext(db_outage.end_session)  # runs before Flask-SQLAlchemy's own
    app.register_error_handler(Exception, _unexpected_error)
    _refuse_async_views(app)
    return app


class _Flask(Flask):
    def ensure_sync(self, func):
        # Every view is synchronous (create_app refuses others), so the
        # coroutine inspection Flask does on each of the ten or so calls per
        # API request is skipped.
        return func


def _refuse_async_views(app: Flask) -> None:
    hooks = [
        *app.before_request_funcs.values(), *app.after_request_funcs.values(), *app.teardown_request_funcs.values(),
        app.teardown_appcontext_funcs, *[h.values() for codes in app.error_handler_spec.values() for h in codes.values()],
    ]  # fmt: skip
    functions = [f for group in hooks for f in group]
    for view in app.view_functions.values():
        view_class = getattr(view, "view_class", None)
        functions += [getattr(view_class, m.lower(), None) for m in (view_class.methods or ())] if view_class else [view]
    for function in functions:
        if inspect.iscoroutinefunction(function):
            raise RuntimeError(f"{function.__qualname__} is async; this app runs synchronous views and hooks only")


def migrations_directory() -> str:
    """The Alembic folder shipped inside the installed package."""
    from importlib.util import find_spec

    spec = find_spec("prefs_service.migrations")
    return list(spec.submodule_search_locations)[0]


def _engine_options(url: str) -> dict:
    # Parameters are personal data: keep them out of logs and error messages.
    if url.startswith("sqlite"):
        return {"hide_parameters": True, "connect_args": {"timeout": 30, "check_same_thread": False}}
    # No pre-ping: it costs a round trip on every request. After a database
    # restart the first statement on a stale connection fails once, and
    # SQLAlchemy then discards the whole pool.
    return {"hide_parameters": True, "pool_size": 10, "max_overflow": 20, "pool_recycle": 3600}


def _declare_transaction_intent():
    view = request.endpoint and _view_function()
    declared = getattr(view, "prefs_intent", None)
    g.prefs_intent_token = declare_read_only(declared == "read" if declared else request.method in READ_METHODS)


def _end_transaction_intent(_error=None):
    token = g.pop("prefs_intent_token", None)
    if token is not None:
        end_declaration(token)


def _view_function():
    view = current_app.view_functions.get(request.endpoint)
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        return getattr(view_class, request.method.lower(), None)
    return view


def _http_error(error: HTTPException):
    if api.is_api_request(request):
        return problems.from_http(error)
    return web.error_page(error)


def _domain_error(error: DomainError):
    db.session.rollback()
    if api.is_api_request(request):
        return problems.from_domain(error)
    status = next((code for cls, code in problems.STATUS_FOR.items() if isinstance(error, cls)), 400)
    http_error = HTTPException(description=error.message)
    http_error.code = status
    return web.error_page(http_error)


def _unexpected_error(error: Exception):
    if database_unavailable(error):  # a driver's own error, or a pool with no connection to give
        return _database_unavailable(error)
    db.session.rollback()
    log.exception("unhandled error on %s %s", request.method, request.url_rule.rule if request.url_rule else "?")
    return _http_error(InternalServerError())


def _database_error(error: sa.exc.DBAPIError):
    if database_unavailable(error):
        return _database_unavailable(error)
    return _unexpected_error(error)  # a bad statement or a broken constraint is a bug


def _database_unavailable(error: Exception):
    """503 with Retry-After: the connection is gone (a restart, a failover, our
    sessions ended) or the database cannot take us now. Whatever this request
    wrote was rolled back with its connection, unless its COMMIT was under way."""
    unknown = commit_outcome_unknown()
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 (the connection is gone already; the pool replaces it)
        pass
    log.warning(
        "database unavailable on %s %s: %s",
        request.method,
        request.url_rule.rule if request.url_rule else "?",
        dispatch.describe_error(error),
    )
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if api.is_api_request(request):
        return problems.problem(503, OUTCOME_UNKNOWN_DETAIL if unknown else UNAVAILABLE_DETAIL, headers=headers)
    http_error = HTTPException()
    http_error.code = 503
    response = make_response(web.error_page(http_error))
    response.headers.update(headers)
    return response


class _CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, without building the signer for requests
    that carry no session cookie: API calls never do, and they come by the million."""

    def open_session(self, app, request):
        if self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


class _OrjsonProvider(JSONProvider):
    """orjson: many times faster than json at the large answers of bulk checks."""

    def dumps(self, obj, **kwargs) -> str:
        return orjson.dumps(obj, default=str, option=orjson.OPT_NON_STR_KEYS).decode()

    def loads(self, s, **kwargs):
        return orjson.loads(s)
