"""Prepared statements for the paths that run by the thousand a second: consent
checks, link minting, one-click withdrawals.

SQLAlchemy's execution layer (and the ORM session around it) costs several
times a one-row statement on SQLite or a nearby PostgreSQL. Here a Core
statement is compiled once per backend and run on a driver cursor, with the
same type conversions, the same exception classes (parameters hidden) and the
same handling of lost connections as SQLAlchemy's own path.
"""

from __future__ import annotations

import sqlalchemy as sa

from .extensions import db, read_intent


def read_rows(stmt, params: dict) -> list[tuple]:
    """Rows of a SELECT that needs no common snapshot with other statements.

    Where only reading was declared and no transaction is open, the statement
    runs on a pooled connection in autocommit: mailers make checks by the
    million, and the ORM session's set-up and tear-down cost several times the
    lookup itself. Anywhere else (a job, a request that writes) it runs in the
    session's transaction, so what follows sees the same data."""
    if read_intent() and not (db.session.registry.has() and db.session().in_transaction()):
        return _pooled_rows(stmt, params)
    return execute_prepared(stmt, params)


def execute_prepared(stmt, params: dict) -> list[tuple]:
    """Run one statement (its RETURNING rows, if any) on the session's own
    connection, inside its transaction, compiled once per backend. For the
    one-row statements of the paths people click (checks, unsubscribes), where
    SQLAlchemy's per-execution work costs more than the statement itself."""
    session = db.session()
    if session.autoflush:
        session.flush()  # as session.execute() would: pending ORM changes go first
    transaction = session.get_transaction()
    cached = session.info.get("prefs.prepared_connection")
    if transaction is None or cached is None or cached[0] is not transaction or not transaction.is_active:
        conn = session.connection()  # begins the transaction, or raises for one that must be rolled back
        # Asking the session again for each statement cost more than a one-row
        # statement; the connection stays the same until the transaction ends.
        cached = session.info["prefs.prepared_connection"] = (session.get_transaction(), conn)
    conn = cached[1]
    prepared = _Prepared.of(stmt, conn.dialect)
    try:
        return _run(conn.connection, prepared, prepared.arguments(params))
    except sa.exc.DBAPIError as error:
        if error.connection_invalidated:
            conn.invalidate(error.orig)  # as SQLAlchemy does: the pool replaces it
        raise


class _Prepared:
    """A Core statement compiled once for one dialect, with the bind and result
    conversions its column types declare. Every value it needs must be a bind
    parameter or a literal in the statement (an INSERT names its columns)."""

    _cache: dict = {}

    @classmethod
    def of(cls, stmt, dialect) -> _Prepared:
        # Statements are built once and kept by their modules, so this stays small.
        key = (id(stmt), dialect.name, dialect.driver)
        found = cls._cache.get(key)
        if found is None or found[0] is not stmt:
            found = cls._cache[key] = (stmt, cls(stmt, dialect))
        return found[1]

    def __init__(self, stmt, dialect):
        compiled = stmt.compile(dialect=dialect)
        self.dialect = dialect
        self.sql = compiled.string
        self.positional = compiled.positiontup  # None for named paramstyles
        self.binders = {
            name: processor
            for name, bind in compiled.binds.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        # Values written into the statement itself (a literal compared with a column).
        constants = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
        self.constants = {name: (self.binders[name](v) if name in self.binders else v) for name, v in constants.items()}
        results = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in stmt.exported_columns]
        self.returns_rows = bool(results)  # a SELECT, or DML with RETURNING
        self.processors = results
        self.converters = [(index, convert) for index, convert in enumerate(results) if convert is not None]

    def arguments(self, params: dict):
        if self.binders:
            params = {name: (self.binders[name](value) if name in self.binders else value) for name, value in params.items()}
        if self.constants:
            params = {**self.constants, **params}
        return [params[name] for name in self.positional] if self.positional is not None else params

    def convert(self, rows: list) -> list[tuple]:
        if not self.converters:
            return rows
        # Bulk checks read thousands of rows whose one converted column (when
        # a suppression began) is mostly NULL: touch only the rows that need it.
        if len(self.converters) == 1:
            ((i, convert),) = self.converters
            return [row if row[i] is None else (*row[:i], convert(row[i]), *row[i + 1 :]) for row in rows]
        return [tuple(value if value is None or f is None else f(value) for f, value in zip(self.processors, row)) for row in rows]


def _run(dbapi_connection, prepared: _Prepared, arguments) -> list[tuple]:
    cursor = None
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute(prepared.sql, arguments)
        rows = cursor.fetchall() if prepared.returns_rows else []
    except prepared.dialect.loaded_dbapi.Error as error:
        raise _wrapped(prepared, error, dbapi_connection, cursor) from error
    finally:
        if cursor is not None:
            cursor.close()
    return prepared.convert(rows)


def _wrapped(prepared: _Prepared, error: Exception, dbapi_connection, cursor) -> sa.exc.DBAPIError:
    """The exception class SQLAlchemy would raise, parameters hidden, marked
    when the connection is lost."""
    return sa.exc.DBAPIError.instance(
        prepared.sql,
        None,
        error,
        prepared.dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=prepared.dialect.is_disconnect(error, dbapi_connection, cursor),
        dialect=prepared.dialect,
    )


def _pooled_rows(stmt, params: dict) -> list[tuple]:
    engine = db.engine
    prepared = _Prepared.of(stmt, engine.dialect)
    arguments = prepared.arguments(params)
    conn = engine.raw_connection()
    try:
        autocommit_toggle = engine.dialect.name == "postgresql"  # SQLite connections are in autocommit already
        try:
            if autocommit_toggle:  # no BEGIN and ROLLBACK round trips around one SELECT
                conn.driver_connection.autocommit = True
            rows = _run(conn, prepared, arguments)
            if autocommit_toggle:
                conn.driver_connection.autocommit = False
        except engine.dialect.loaded_dbapi.Error as error:  # from the toggles: a closed connection refuses them
            raise _wrapped(prepared, error, conn, None) from error
    except BaseException as error:
        # Whatever went wrong, this connection may be left in autocommit or
        # broken: it is never handed out again.
        conn.invalidate(error if isinstance(error, Exception) else None)
        if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
            # As SQLAlchemy does when a connection is lost (a database restart,
            # most likely): every other pooled connection is suspect too.
            engine.dispose(close=False)
        raise
    finally:
        conn.close()
    return rows
