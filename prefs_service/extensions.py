"""Extension objects shared by every package, bound to an app in create_app()."""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import time
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, registry

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.types.TypeDecorator):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no time zones, so values are stored as naive UTC and handed back
    aware; a naive value from Python is a bug and is refused rather than guessed.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC-aware one is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class HashBytes(sa.types.TypeDecorator):
    """A 32-byte keyed hash. Bytes go to both drivers as they are: bulk checks
    bind ten thousand at a time, and the generic binary wrapping per value cost
    more than the lookup itself."""

    impl = sa.LargeBinary(32)
    cache_ok = True

    def bind_processor(self, dialect):
        return None

    def result_processor(self, dialect, coltype):
        return None


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    registry = registry(
        metadata=sa.MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={datetime: UTCDateTime()},
    )


db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
csrf = CSRFProtect()


def client_key() -> str:
    """Rate-limit key for a client: a keyed hash of its address, so the limiter's
    storage (Redis in production) never holds a whole IP."""
    key = current_app.config["PREFS"].secret_keys[0].encode()
    return "client:" + hmac.new(key, (get_remote_address() or "").encode(), hashlib.sha256).hexdigest()[:32]


# Limits are declared on the views that need them (the public forms), not globally.
limiter = Limiter(key_func=client_key, default_limits=[], headers_enabled=True)


# --- Read intent ----------------------------------------------------------------
# A request or job declares whether it only reads. Two things follow from it:
# - SQLite: in WAL mode a transaction that reads and then writes fails at once
#   with SQLITE_BUSY if another writer committed in between (the busy timeout
#   does not apply to that upgrade), so every transaction begins IMMEDIATE,
#   taking the write lock up front, except where only reading was declared (GET
#   requests, bulk checks), which must run side by side.
# - Any backend: reads may run in autocommit, outside the ORM (see statements.read_rows).
_read_intent: ContextVar[bool] = ContextVar("prefs_read_intent", default=False)


@contextmanager
def reading_only():
    token = _read_intent.set(True)
    try:
        yield
    finally:
        _read_intent.reset(token)


def read_intent() -> bool:
    return _read_intent.get()


def declare_read_only(value: bool):
    """Set the intent for a request; returns the token that `end_declaration`
    takes at the request's end. Without that reset the intent outlived the
    request in its thread: a test's own writes after a GET began deferred
    transactions, which SQLite refuses at once ("database is locked") when
    another writer commits between their first read and their first write."""
    return _read_intent.set(value)


def end_declaration(token) -> None:
    _read_intent.reset(token)


def intent(kind: str):
    """Mark a view as "read" (a POST that only reads, like bulk checks) or
    "write" (a GET that may write, like honouring a privacy signal); by default
    GET reads and every other method writes."""
    assert kind in ("read", "write")

    def mark(view):
        view.prefs_intent = kind
        return view

    return mark


@sa.event.listens_for(Engine, "connect")
def _configure_sqlite(dbapi_connection, _record):
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # We issue BEGIN ourselves (see _begin_sqlite); pysqlite's own handling would
    # start transactions late and never IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


@sa.event.listens_for(Engine, "begin")
def _begin_sqlite(conn):
    if conn.dialect.name == "sqlite" and conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        if _read_intent.get():
            conn.exec_driver_sql("BEGIN")
        else:
            _begin_immediate(conn.connection.driver_connection, conn.dialect)


def _begin_immediate(driver: sqlite3.Connection, dialect) -> None:
    """Take the write lock, polling every fraction of a millisecond. SQLite's
    own busy handler sleeps 1, 2, 5, 10 ms and more between tries, while our
    write transactions hold the lock for well under a millisecond: under many
    concurrent unsubscribes, writers slept while the lock stood free."""
    driver.execute("PRAGMA busy_timeout=0")
    try:
        deadline = time.monotonic() + 30
        delay = 0.0001
        while True:
            try:
                driver.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    # The exception classes SQLAlchemy would have raised.
                    raise sa.exc.DBAPIError.instance("BEGIN IMMEDIATE", None, error, sqlite3.Error, dialect=dialect) from error
            time.sleep(delay)
            delay = min(delay * 1.5, 0.002)
    finally:
        driver.execute("PRAGMA busy_timeout=30000")


def chunks(items: list, size: int = 5000):
    """`items` in slices of `size`: IN lists stay within what both backends bind."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def dialect_insert(table, dialect: str | None = None):
    """INSERT … ON CONFLICT for the session's backend (both dialects spell it alike)."""
    if (dialect or db.session.get_bind().dialect.name) == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)
