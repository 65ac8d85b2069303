"""Telling a lost or unavailable database apart from a bug.

A database that restarts, fails over, or ends our sessions (pg_terminate_backend)
is a moment's outage: the request is answered 503 with Retry-After. Every
other database error (a bad statement, a broken constraint) stays a 500.
"""

from __future__ import annotations

import logging
import sqlite3

import sqlalchemy as sa
from flask import g, has_app_context
from flask_sqlalchemy.session import Session
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
UNAVAILABLE_DETAIL = "The database is unavailable for a moment; nothing was changed. Try again in a few seconds."
OUTCOME_UNKNOWN_DETAIL = (
    "The database became unavailable while saving: the change may or may not have been saved. Look before you repeat it."
)

# PostgreSQL SQLSTATEs of a server that is going away or not taking us:
# class 08 (connection exception), admin/crash shutdown, starting up, too many connections.
_UNAVAILABLE_SQLSTATES = ("57P01", "57P02", "57P03", "53300")
_SQLITE_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def database_unavailable(error: BaseException) -> bool:
    """True when `error` (or what caused it) says the database connection is
    gone or the database cannot take us now."""
    seen = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, sa.exc.DBAPIError):
            if cause.connection_invalidated or (cause.orig is not None and _driver_error_unavailable(cause.orig)):
                return True
        elif isinstance(cause, sa.exc.TimeoutError) or _driver_error_unavailable(cause):  # no pooled connection came free in time
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _driver_error_unavailable(error: BaseException) -> bool:
    if isinstance(error, sqlite3.Error):
        # Our own BEGIN IMMEDIATE runs on the driver: its errors may come unwrapped.
        closed = isinstance(error, sqlite3.ProgrammingError) and "Cannot operate on a closed database." in str(error)
        return closed or getattr(error, "sqlite_errorcode", None) in _SQLITE_BUSY_CODES
    try:
        import psycopg
    except ImportError:  # pragma: no cover (installed with the package)
        return False
    if not isinstance(error, psycopg.Error):
        return False
    sqlstate = error.sqlstate
    if sqlstate is None:
        # Raised by the client library, not the server: only the connection
        # itself failing (refused, closed, lost) is an OperationalError.
        return isinstance(error, psycopg.OperationalError)
    return sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES


def end_session(_exc: BaseException | None = None) -> None:
    """End the request's session, as Flask-SQLAlchemy's teardown would (this
    takes its place: framework_patches.one_session_teardown). Ending it rolls
    back a transaction still open (every read opens one); if the connection was
    lost meanwhile, the answer already made stands: the lost connection is
    dropped instead of failing the request after the fact."""
    from ..extensions import db

    try:
        db.session.remove()
    except Exception as error:
        if not database_unavailable(error):
            raise
        log.warning("connection lost before the request's session ended; dropped")
        db.session().invalidate()  # the session is still registered: its close failed
        db.session.remove()


# --- Was a COMMIT under way? ---------------------------------------------------------
# A connection lost while COMMIT was sent leaves the outcome unknown: the server
# may have committed before it went. Only then may the answer not promise that
# nothing changed. Kept on flask.g: each request (and job) starts without it.
_COMMIT_SENT = "prefs_commit_sent"


def commit_outcome_unknown() -> bool:
    return has_app_context() and g.get(_COMMIT_SENT, False)


def _mark(sent: bool) -> None:
    if has_app_context():
        setattr(g, _COMMIT_SENT, sent)


def listen(engine: Engine) -> None:
    """Keep track, per request or job, of whether a COMMIT went out on `engine`."""
    sa.event.listen(engine, "commit", _commit_sent)
    for name, handler in (("after_begin", _transaction_began), ("after_commit", _commit_done)):
        if not sa.event.contains(Session, name, handler):  # sessions are shared by every app
            sa.event.listen(Session, name, handler)


def _commit_sent(conn: Connection) -> None:
    _mark(True)


def _transaction_began(session: Session, transaction: object, connection: Connection) -> None:
    _mark(False)


def _commit_done(session: Session) -> None:
    _mark(False)
