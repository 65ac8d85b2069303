"""What each of prefs_service/framework_patches.py's departures from Flask's
defaults buys: single consent checks the whole way through Flask, in this
process, with the app as it ships and with one patch undone, round after round;
and, beside them, the same checks through the check's own lane
(prefs_service/api/check_lane.py), as they are served.

    .venv/bin/python -m bench.framework_patches [--requests 20000] [--rounds 5]

No server and no load generator: the figure is the app's own time per request
(µs), so a difference of a few µs is visible. The floor is the shipped app.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from bench import common


def _undo_ensure_sync(app: Flask) -> None:
    app.ensure_sync = Flask.ensure_sync.__get__(app)  # type: ignore[method-assign]


def _undo_cookie_sessions(app: Flask) -> None:
    app.session_interface = SecureCookieSessionInterface()


def _undo_limiter_hook(app: Flask) -> None:
    from prefs_service.extensions import limiter

    app.before_request_funcs[None].insert(0, limiter._check_request_limit)


def _undo_limiter_guards(app: Flask) -> None:
    from functools import partial

    from flask_limiter import Limiter

    from prefs_service.extensions import limiter

    after, teardown = app.after_request_funcs[None], app.teardown_request_funcs[None]
    after[[f.__name__ for f in after].index("inject_where_limited")] = partial(Limiter._Limiter__inject_headers, limiter)  # type: ignore[attr-defined]
    teardown[[f.__name__ for f in teardown].index("release_where_limited")] = limiter._Limiter__release_context  # type: ignore[attr-defined]


def _undo_csrf_method_first(app: Flask) -> None:
    funcs = app.before_request_funcs[None]
    index = [f.__name__ for f in funcs].index("csrf_protect_unsafe_methods")
    funcs[index] = funcs[index].__wrapped__  # type: ignore[attr-defined]  # Flask-WTF's own hook


def _undo_one_session_teardown(app: Flask) -> None:
    from prefs_service.extensions import db

    app.teardown_appcontext_funcs.insert(0, db._teardown_session)  # runs last, as when both were registered


VARIANTS: dict[str, Callable[[Flask], None] | None] = {
    "as shipped": None,
    "Flask's ensure_sync": _undo_ensure_sync,
    "Flask's cookie sessions": _undo_cookie_sessions,
    "Flask-Limiter's app-wide hook": _undo_limiter_hook,
    "Flask-Limiter's hooks on every request": _undo_limiter_guards,
    "Flask-WTF's hook on every request": _undo_csrf_method_first,
    "Flask-SQLAlchemy's teardown as well": _undo_one_session_teardown,
}


LANE = "through the check's lane, as served"


def run(requests: int, rounds: int) -> dict:
    work = tempfile.mkdtemp(prefix="prefs-bench-patches-")
    url = f"sqlite:///{work}/patches.db"
    common.prefs(url, "db", "upgrade")
    common.seed_consent("sqlite", url, 3000)
    key = common.api_key(url, "consent:read")
    os.environ.update(common.env_for(url, PREFS_API_KEY_CACHE_SECONDS="3600"))
    from prefs_service import create_app

    apps = {}
    for name, undo in VARIANTS.items():
        app = create_app()
        if undo is not None:
            undo(app)
        apps[name] = app
    emails = [common.email_of(i) for i in range(0, 3000, 7)]
    environs = [common.wsgi_environ("/v1/consent/check", f"channel=email&purpose=newsletter&email={e}", key) for e in emails]

    def timed(app: Flask, *, lane: bool = False) -> float:
        # The lane answers these checks before Flask sees them; the patches are measured the whole way.
        wsgi = app.wsgi_app if lane else app.wsgi_app.whole_way  # type: ignore[attr-defined]
        started = time.perf_counter()
        for n in range(requests):
            environ = dict(environs[n % len(environs)])
            body = wsgi(environ, lambda status, headers: None)
            b"".join(body)
            getattr(body, "close", lambda: None)()
        return (time.perf_counter() - started) / requests * 1e6

    for app in apps.values():  # warm: compiled statements, the key cache, imports
        timed(app)
    timed(apps["as shipped"], lane=True)
    per_request: dict[str, list[float]] = {name: [] for name in [*apps, LANE]}
    for number in range(rounds):
        order = list(apps.items()) if number % 2 == 0 else list(reversed(apps.items()))
        for name, app in order:
            per_request[name].append(timed(app))
        per_request[LANE].append(timed(apps["as shipped"], lane=True))
    shipped = statistics.median(per_request["as shipped"])
    rows = [("variant", "µs per check", "vs shipped", "")]
    for name, figures in per_request.items():
        median = statistics.median(figures)
        rows.append((name, f"{median:.1f}", f"{(median - shipped) / shipped * 100:+.1f}%" if name != "as shipped" else "floor", ""))
    common.report(
        f"framework patches: single checks through the WSGI app in one process, {requests:,} requests, median of {rounds} rounds", rows
    )
    return {name: statistics.median(figures) for name, figures in per_request.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    common.save("framework_patches", run(args.requests, args.rounds))


if __name__ == "__main__":
    main()
