"""What differs between SQLite and PostgreSQL, in one object per app.

Domain code asks `backend()` instead of comparing dialect names: how to insert
on conflict, how to lock a person or a purchase, how to bind many keys at once,
how far the change feed may read, and what every connection needs.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import orm
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, CursorResult, Engine
from sqlalchemy.engine.interfaces import DBAPIConnection, Dialect
from sqlalchemy.pool import ConnectionPoolEntry

from ..private_files import private_sqlite_database
from . import scopes

# One batch of keys: (how many placeholders the statement has, None for one
# array parameter; the parameters).
KeyBatch = tuple[int | None, dict[str, Any]]
Column = sa.ColumnElement[Any] | orm.InstrumentedAttribute[Any]


class Backend:
    name: str
    # Whether one statement may insert into one table from what it changed in
    # another (data-modifying WITH): the paths people click then take one round trip.
    data_modifying_ctes: bool
    # Whether write transactions already run one at a time, so that what one
    # reads still holds when it writes, without locks.
    serialises_writers: bool
    # Whether a pooled connection outside a transaction is in autocommit
    # already (SQLite, as bind() sets it up), or must be put in it for one statement.
    idle_in_autocommit: bool

    def insert(self, table: sa.Table) -> Any:
        """INSERT … ON CONFLICT for this backend (both spell it alike)."""
        raise NotImplementedError

    def lock(self, statement: sa.Select[Any], params: dict[str, Any]) -> None:
        """Run a SELECT … FOR UPDATE that orders this transaction after others
        touching the same rows, where writers are not serialised already."""
        if not self.serialises_writers:
            from ..extensions import db

            db.session.execute(statement, params)

    def lock_key(self, key: str) -> None:
        """Serialise transactions about one thing that has no row yet (a purchase)."""

    def key_batches(self, keys: Sequence[Any]) -> Iterator[KeyBatch]:
        """Parameters for looking up `keys` in as few statements as the backend
        allows; a single key is a plain comparison, cheaper to run."""
        if len(keys) == 1:
            yield 1, {"k0": keys[0]}
        elif keys:
            yield from self._batches(keys)

    def _batches(self, keys: Sequence[Any]) -> Iterator[KeyBatch]:
        raise NotImplementedError

    def matching(self, column: sa.ColumnElement[Any], size: int | None) -> sa.ColumnElement[bool]:
        """`column` IN the keys of one batch from key_batches() of `size`."""
        if size == 1:
            return column == sa.bindparam("k0", type_=column.type)
        return self._matching_many(column, size)

    def _matching_many(self, column: sa.ColumnElement[Any], size: int | None) -> sa.ColumnElement[bool]:
        raise NotImplementedError

    def probing(self, table: sa.Table, column: sa.Column[Any], size: int | None) -> tuple[sa.FromClause, sa.ColumnElement[bool]]:
        """FROM and WHERE that look up one batch of keys from key_batches() of
        `size` in `column`, the first of `table`'s primary key, by its index."""
        return table, self.matching(column, size)

    def feed_horizon(self, txid: sa.ColumnElement[int] | orm.InstrumentedAttribute[int]) -> sa.ColumnElement[bool] | None:
        """A condition on the writing transaction's id that keeps out events a
        still-running transaction could yet commit behind a cursor; None where
        transactions commit in the order of their ids."""
        return None

    def bind(self, engine: Engine) -> None:
        """Attach what every connection of `engine` needs."""

    def bulk_insert(self, driver: Any, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> int:
        """Insert a stream of rows through the driver connection `driver`, in its
        open transaction, in constant memory, skipping rows whose key is present
        already; how many were inserted. The fastest loading each backend has."""
        raise NotImplementedError

    def seconds_between(self, start: Column, end: Column) -> sa.ColumnElement[float]:
        """The seconds from one datetime column to another, computed in the database."""
        raise NotImplementedError


class SQLite(Backend):
    name = "sqlite"
    data_modifying_ctes = False
    serialises_writers = True
    idle_in_autocommit = True
    # SQLite caps bound parameters per statement.
    BATCH = 4096
    BULK_BATCH = 50_000
    _NAMES = tuple(f"k{i}" for i in range(BATCH))  # matching()'s parameter names

    def insert(self, table: sa.Table) -> Any:
        return sqlite.insert(table)

    def _batches(self, keys: Sequence[Any]) -> Iterator[KeyBatch]:
        # Padded, by repeating the last key, to a power of two: a handful of
        # statements (compiled once each) serve every batch size.
        for start in range(0, len(keys), self.BATCH):
            batch = list(keys[start : start + self.BATCH])
            size = 1 << (len(batch) - 1).bit_length()
            batch += [batch[-1]] * (size - len(batch))
            yield size, dict(zip(self._NAMES[:size], batch, strict=True))

    def _matching_many(self, column: sa.ColumnElement[Any], size: int | None) -> sa.ColumnElement[bool]:
        assert size is not None
        return column.in_([sa.bindparam(f"k{i}", type_=column.type) for i in range(size)])

    def bulk_insert(self, driver: Any, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> int:
        # executemany in large batches: one prepared statement, no per-row round trip.
        # Table and column names are the caller's constants, never input.
        statement = f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608
        before = driver.total_changes
        iterator = iter(rows)
        while batch := list(itertools.islice(iterator, self.BULK_BATCH)):
            driver.executemany(statement, batch)
        changed: int = driver.total_changes - before
        return changed

    def seconds_between(self, start: Column, end: Column) -> sa.ColumnElement[float]:
        # Datetimes are stored as naive UTC text, which julianday() reads.
        return (sa.func.julianday(end) - sa.func.julianday(start)) * sa.literal(86400.0)

    def bind(self, engine: Engine) -> None:
        sa.event.listen(engine, "do_connect", _private_database_file)
        sa.event.listen(engine, "connect", _configure_connection)
        sa.event.listen(engine, "begin", _begin)


class PostgreSQL(Backend):
    name = "postgresql"
    data_modifying_ctes = True
    serialises_writers = False
    idle_in_autocommit = False

    def insert(self, table: sa.Table) -> Any:
        return postgresql.insert(table)

    def lock_key(self, key: str) -> None:
        from ..extensions import db

        db.session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})

    def _batches(self, keys: Sequence[Any]) -> Iterator[KeyBatch]:
        yield None, {"keys": list(keys)}  # one array, however long

    def bulk_insert(self, driver: Any, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> int:
        # COPY (binary: bench/register_import.py measured it faster than text)
        # straight into the table, streamed, so the server inserts while we
        # still parse. COPY cannot skip a key present already: then the rows,
        # kept as they went by, go again through an unindexed temporary table
        # and one INSERT … SELECT … ON CONFLICT DO NOTHING.
        names = ", ".join(columns)
        sent: list[tuple[Any, ...]] = []
        with driver.cursor() as cursor:
            cursor.execute(
                "SELECT a.attname, a.atttypid::int FROM pg_attribute a "
                "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped",
                (table,),
            )
            types = dict(cursor.fetchall())
            oids = [types[c] for c in columns]
            cursor.execute("SAVEPOINT bulk_insert")
            try:
                with cursor.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(oids)
                    for row in rows:
                        sent.append(row)
                        copy.write_row(row)
                cursor.execute("RELEASE SAVEPOINT bulk_insert")
                return len(sent)
            except psycopg_errors().UniqueViolation:
                cursor.execute("ROLLBACK TO SAVEPOINT bulk_insert")
            sent.extend(rows)  # what the failed COPY had not read yet
            cursor.execute(f"CREATE TEMPORARY TABLE bulk_{table} (LIKE {table}) ON COMMIT DROP")
            with cursor.copy(f"COPY bulk_{table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(oids)
                for row in sent:
                    copy.write_row(row)
            cursor.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM bulk_{table} ORDER BY {names} ON CONFLICT DO NOTHING")  # noqa: S608
            inserted: int = cursor.rowcount
            cursor.execute(f"DROP TABLE bulk_{table}")
        return inserted

    def _matching_many(self, column: sa.ColumnElement[Any], size: int | None) -> sa.ColumnElement[bool]:
        return column == sa.any_(sa.bindparam("keys", type_=postgresql.ARRAY(column.type)))

    def probing(self, table: sa.Table, column: sa.Column[Any], size: int | None) -> tuple[sa.FromClause, sa.ColumnElement[bool]]:
        if size == 1:
            return table, self.matching(column, size)
        # The array as a relation, joined on the index: a nested loop of index
        # probes however many keys. `= ANY(array)` of 10,000 keys over a table of
        # millions chose a parallel sequential scan (bench/decisions_access.py).
        keys = sa.func.unnest(sa.bindparam("keys", type_=postgresql.ARRAY(column.type))).table_valued("key").render_derived(name="probe")
        return keys.join(table, column == keys.c.key), sa.true()

    def seconds_between(self, start: Column, end: Column) -> sa.ColumnElement[float]:
        return sa.cast(sa.extract("epoch", end - start), sa.Float)

    def feed_horizon(self, txid: sa.ColumnElement[int] | orm.InstrumentedAttribute[int]) -> sa.ColumnElement[bool]:
        # Only transactions older than every running one: none of those can commit anything now.
        return txid < sa.text("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


def psycopg_errors() -> Any:
    import psycopg.errors

    return psycopg.errors


# Backends hold no state: one of each serves every app (and keys the statements built for it).
BACKENDS: dict[str, Backend] = {"sqlite": SQLite(), "postgresql": PostgreSQL()}


def for_dialect(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise RuntimeError(f"prefs_service runs on SQLite or PostgreSQL, not {name}") from None


def backend() -> Backend:
    """The current app's backend."""
    found: Backend = current_app.extensions["prefs.backend"]
    return found


# --- SQLite connections ------------------------------------------------------------


def _private_database_file(dialect: Dialect, _record: ConnectionPoolEntry, cargs: list[Any], cparams: dict[str, Any]) -> None:
    """Create the database file 0600 before SQLite opens it (see private_files)."""
    if cparams.get("uri") or not cargs:
        return
    filename = cargs[0]
    if isinstance(filename, str) and filename and filename != ":memory:":
        private_sqlite_database(Path(filename))


# Each connection keeps its own page cache, and a worker holds one per thread,
# while the operating system's page cache holds the database file for all of
# them: SQLite's default 2 MiB each. 64 MiB each grew a worker's memory by
# 150-250 MB while screening a list, for no speed a bench could see
# (2026-12-07, 1M people: a 10k bulk check took 157-163 ms in one process with
# 64 MiB, 158-164 ms with 2 MB; 1M as 10k calls under gunicorn took 9.3-9.5 s
# with 8 MiB and 8.9-9.1 s with 2 MB, peaking at 295 and 259 MB; one-click
# withdrawals ran at 552/s with 8 MiB and 561/s with 2 MiB).
CACHE_SIZE = "PRAGMA cache_size=-2048"


def _configure_connection(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    assert isinstance(dbapi_connection, sqlite3.Connection)
    # We issue BEGIN ourselves (see _begin); pysqlite's own handling would
    # start transactions late and never IMMEDIATE. Outside a transaction the
    # connection is in autocommit, which db/fast.py's pooled reads rely on.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute(CACHE_SIZE)
    cursor.close()


def _begin(conn: Connection) -> None:
    if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        return
    if scopes.current() is scopes.READ:
        conn.exec_driver_sql("BEGIN")
    else:
        _begin_immediate(conn.connection.driver_connection, conn.dialect)


def _begin_immediate(driver: Any, dialect: Dialect) -> None:
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


def chunks(items: Sequence[Any], size: int = 5000) -> Iterator[Sequence[Any]]:
    """`items` in slices of `size`: IN lists stay within what both backends bind."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def affected_rows(statement: sa.Executable, *, synchronize_session: bool = True) -> int:
    """Run an UPDATE or DELETE in the session's transaction; how many rows it touched."""
    from ..extensions import db

    options = {} if synchronize_session else {"synchronize_session": False}
    result = db.session.execute(statement, execution_options=options)
    return cast("CursorResult[Any]", result).rowcount
