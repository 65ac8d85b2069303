"""/metrics in Prometheus text format, for an API key with the `admin` scope.

The families are defined in metrics/families.py, read from the database in
metrics/database.py. One process (`make run`, tests) counts in memory. Under
gunicorn with several workers (`prefs serve --workers N`) each worker writes
its counts to files in PROMETHEUS_MULTIPROC_DIR and whichever worker is
scraped sums them all (prometheus_client's multiprocess mode); nothing here
imports prometheus_client before that variable is settled.

What the hot paths pay: a dictionary look-up of a label's child (made once)
and its increment or observation, and a clock read each side of a request.
bench/check_instructions.py (callgrind, 2026-12-06): a single check took
1.070 M instructions before the metrics and 1.097 M with them (+2.5%); a
before- and an after-request hook with a separate request counter took 1.111 M.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from operator import attrgetter
from pathlib import Path
from time import perf_counter
from typing import Any

from flask import Blueprint, Flask, Response, request
from sqlalchemy import event
from sqlalchemy.orm import Session

from ..api.auth import require
from ..db.scopes import reads
from ..extensions import db

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # what generate_latest() writes for plain names like ours
_LEDGER_KEY = "prefs.metrics.ledger_sources"  # session.info: events by source, counted once committed


class _Children(dict[Any, Any]):
    """Label values -> the family's child, made on first sight: labels() would
    validate, stringify and lock on every call. Concurrent first sights make
    the same child (labels() returns the one it holds)."""

    def __init__(self, family: str):
        super().__init__()
        self.family = family

    def __missing__(self, key: Any) -> Any:
        from . import families

        values = key if isinstance(key, tuple) else (key,)
        child = self[key] = getattr(families, self.family).labels(*values)
        return child


CHECKS = _Children("CHECKS")
LEDGER_EVENTS = _Children("LEDGER_EVENTS")
_HTTP_REQUESTS = _Children("HTTP_REQUESTS")
_reason = attrgetter("reason")


def count_checks(results: Iterable[Any]) -> None:
    """A bulk check's answers, by reason (a single check does CHECKS[reason].inc())."""
    for reason, count in Counter(map(_reason, results)).items():
        CHECKS[reason].inc(count)


def ledger_recorded(*, sources: Mapping[str, int]) -> None:
    """hooks.LEDGER_RECORDED: counted when the transaction commits, forgotten if it rolls back."""
    db.session.info.setdefault(_LEDGER_KEY, Counter()).update(sources)


def _count_committed_events(session: Session) -> None:
    pending = session.info.pop(_LEDGER_KEY, None)
    for source, count in (pending or {}).items():
        LEDGER_EVENTS[source].inc(count)


def _forget_events(session: Session) -> None:
    session.info.pop(_LEDGER_KEY, None)


def multiprocess_mode() -> bool:
    """As prometheus_client decides it (it also reads the older lower-case name)."""
    return bool(os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower()))


def prepare_multiprocess_directory(path: Path) -> None:
    """Create it, or empty it of a previous run's files (which would be summed in)."""
    path.mkdir(parents=True, exist_ok=True)
    for leftover in path.glob("*.db"):
        leftover.unlink()
    os.environ[MULTIPROC_ENV] = str(path)


def remove_multiprocess_directory(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def mark_process_dead(pid: int) -> None:
    """gunicorn's worker_exit: a gone worker's live-gauge files go (its counters stay summed)."""
    if multiprocess_mode():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def exposition() -> bytes:
    """Every family, in Prometheus text format (call in an app context)."""
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess

    from . import database, families

    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_mode():
        # Every worker's files, this one's included: its own registry is not added again.
        multiprocess.MultiProcessCollector(registry)
    else:
        for family in families.IN_PROCESS:
            registry.register(family)
    registry.register(database.DatabaseCollector())
    return generate_latest(registry)


bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
@reads
@require("admin")  # 401 / 403 as problem+json, as the API answers (/metrics is among api.API_PATHS)
def metrics() -> Response:
    return Response(exposition(), content_type=CONTENT_TYPE)


def observe_request(endpoint: str, status: int, seconds: float) -> None:
    """One answered request, as full_dispatch_request below counts it (for api/check_lane.py)."""
    _HTTP_REQUESTS[endpoint, status].observe(seconds)


def _timed(dispatch: Callable[[], Response]) -> Callable[[], Response]:
    """Flask's full_dispatch_request (the hooks, the view, its error handlers),
    timed and counted. One wrapper costs a check less than a before- and an
    after-request hook, and it sees the answer an error handler gave."""

    def full_dispatch_request() -> Response:
        started = perf_counter()
        response = dispatch()
        endpoint = request.endpoint or "unmatched"  # no route: never the raw path
        _HTTP_REQUESTS[endpoint, response.status_code].observe(perf_counter() - started)
        return response

    return full_dispatch_request


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.full_dispatch_request = _timed(app.full_dispatch_request)  # type: ignore[method-assign]
    # Sessions are shared by every app: listen once.
    for name, listener in (("after_commit", _count_committed_events), ("after_rollback", _forget_events)):
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)
