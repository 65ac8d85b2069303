"""Where this app departs from Flask's and its extensions' defaults for speed,
each beside what it buys. The figures are from bench/framework_patches.py
(single consent checks through the whole WSGI app in one process, the app as
shipped against the app with one patch undone; 245 µs a check as shipped, on
the project's 2-core machine, 2026-12-06), with the instructions callgrind
counted per check for the same comparison, the steadier figure on a shared
machine (1.09 M as shipped then; 0.972 M on 2026-12-07 before the last two
patches and the Flask-Limiter guard's read without an exception, 0.896 M after;
the common single check now takes its own lane, api/check_lane.py, and these
patches serve every other request).

Each is a supported extension point or a guarded shortcut; none changes what a
request gets back.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, cast

from flask import Flask, Request, Response, request
from flask.globals import request_ctx
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_limiter import Limiter

from .extensions import limiter


class PrefsFlask(Flask):
    """Skips the coroutine inspection Flask does on each of the ten or so
    hooks and views a request passes through. Without it a check took 280 µs
    (+14%) and 1.15 M instructions (+5.0%).
    Safe because `refuse_async_views` fails start-up on any async view or hook."""

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        return func


def refuse_async_views(app: Flask) -> None:
    hooks: list[Iterable[object]] = [
        *app.before_request_funcs.values(),
        *app.after_request_funcs.values(),
        *app.teardown_request_funcs.values(),
        app.teardown_appcontext_funcs,
        *[h.values() for codes in app.error_handler_spec.values() for h in codes.values()],
    ]
    functions = [f for group in hooks for f in group]
    for view in app.view_functions.values():
        view_class = getattr(view, "view_class", None)
        functions += [getattr(view_class, m.lower(), None) for m in (view_class.methods or ())] if view_class else [view]
    for function in functions:
        if inspect.iscoroutinefunction(function):
            raise RuntimeError(f"{function.__qualname__} is async; this app runs synchronous views and hooks only")


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, without building the signer for requests
    that carry no session cookie: API calls never do, and they come by the
    million. Without it a check took 270 µs (+10%) and 1.13 M instructions (+3.7%)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        # No Cookie header at all (an API call): not even the header is parsed
        # (a check in process: 145 µs parsing it, 140 µs not; 2026-12-07, best of seven).
        if "HTTP_COOKIE" not in request.environ or self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def skip_app_wide_limit_check(app: Flask) -> None:
    """Our rate limits sit on a few public forms, whose decorators check them;
    the app-wide before-request hook Flask-Limiter also adds would cost every
    API call for nothing. Without it a check took 317 µs (+29%) and 1.48 M
    instructions (+35%)."""
    app.before_request_funcs[None].remove(limiter._check_request_limit)


def limiter_hooks_only_where_limited(app: Flask) -> None:
    """Flask-Limiter's after-request hook (rate-limit headers, conditional
    deductions) and teardown hook (resetting its per-request state) run on
    every request, and each creates that state first. A request that met no
    limit has none: where it was never created, both are skipped. A limited
    view's decorator creates it, so its requests still get both. Without it a
    check took 539 µs (+4.8%) against 515 µs as shipped (2026-12-07, median of
    five rounds; the machine ran at half the speed of the figures above)."""
    hook = Limiter._Limiter__inject_headers  # type: ignore[attr-defined]  # name-mangled: private to Flask-Limiter
    inject: Any = next(f for f in app.after_request_funcs[None] if getattr(f, "func", None) is hook)
    release: Any = limiter._Limiter__release_context  # type: ignore[attr-defined]

    def limited() -> bool:
        # The context's own attributes, read without the proxy's __getattr__
        # raising AttributeError for the common request that met no limit.
        return _LIMITER_STATE in vars(cast(Any, request_ctx)._get_current_object())

    def inject_where_limited(response: Response) -> Response:
        return inject(response) if limited() else response

    def release_where_limited(error: BaseException | None = None) -> None:
        if limited():
            release(error)

    after = app.after_request_funcs[None]
    after[after.index(inject)] = inject_where_limited
    teardown = app.teardown_request_funcs[None]
    teardown[teardown.index(release)] = release_where_limited


_LIMITER_STATE = "_limiter_request_context"  # where Flask-Limiter keeps a request's state (Limiter.context)


def csrf_check_only_unsafe_methods(app: Flask) -> None:
    """Flask-WTF's before-request hook looks up the view and its exemptions on
    every request, and only then finds that a GET, HEAD or OPTIONS has nothing
    to check (protect() returns for methods outside WTF_CSRF_METHODS). Asking
    the method first skips that for every API read. Without it a check cost
    32.5 k more instructions (3.3%; bench/check_instructions.py's harness,
    2026-12-07)."""
    funcs = app.before_request_funcs[None]
    protect = next(f for f in funcs if f.__qualname__ == "CSRFProtect.init_app.<locals>.csrf_protect")
    config = app.config

    def csrf_protect_unsafe_methods() -> None:
        if request.method in config["WTF_CSRF_METHODS"]:
            protect()

    csrf_protect_unsafe_methods.__wrapped__ = protect  # type: ignore[attr-defined]  # for bench/framework_patches.py to undo
    funcs[funcs.index(protect)] = csrf_protect_unsafe_methods


def one_session_teardown(app: Flask, end_session: Callable[[BaseException | None], None]) -> None:
    """`end_session` (db/outage.py) removes the request's session as
    Flask-SQLAlchemy's own teardown does, and also survives a lost connection;
    the second removal found nothing to do and cost a check 9.2 k instructions
    (0.9%). So ours takes the place of Flask-SQLAlchemy's."""
    from .extensions import db

    funcs = app.teardown_appcontext_funcs
    funcs[funcs.index(db._teardown_session)] = end_session


def apply(app: Flask) -> None:
    """The patches that are set after the extensions are bound (PrefsFlask is
    the app's class from the start)."""
    app.session_interface = CookieSessions()
    skip_app_wide_limit_check(app)
    limiter_hooks_only_where_limited(app)
    csrf_check_only_unsafe_methods(app)
