"""The one fast path: statements compiled once per backend and run on the
driver's cursor, for what runs by the thousand a second (consent checks, link
minting, one-click withdrawals). Only consent/queries.py, the decisions read model
(consent/decisions.py) and link minting call it.

SQLAlchemy's execution layer (and the ORM session around it) costs several
times a one-row statement on SQLite or a nearby PostgreSQL. bench/fast_path.py
measures both paths side by side; on 2026-12-06 (1M people, medians of three
rounds) plain Core reached 0.64x of this path's bulk checks and 0.67x of its
one-click withdrawals on SQLite, and 0.60x of its single checks on PostgreSQL
(p99 2.2x), so it stays. Here a Core statement is compiled once and
run with the same type conversions, the same cursor-execute events (so tracing
sees it), the same exception classes (parameters hidden) and the same handling
of lost connections as SQLAlchemy's own path. tests/test_fast_path.py runs
every statement it serves through both paths and compares the rows.

The caller says where a statement runs:
- `scopes.READ`: on a pooled connection in autocommit, outside the session,
  for a read that needs no common snapshot with other statements;
- `scopes.WRITE`: on the session's connection, inside its transaction, so that
  what follows sees it (every write, and reads that decide a write).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import ClauseElement

from ..extensions import db
from .backend import backend
from .scopes import READ, Scope

Row = tuple[Any, ...]


def rows(stmt: ClauseElement, params: dict[str, Any], *, scope: Scope) -> list[Row]:
    """Rows of `stmt` (a SELECT, or DML with RETURNING; [] for other DML)."""
    if scope is READ:
        return _autocommit_rows(stmt, params)
    return _session_rows(stmt, params)


def _session_rows(stmt: ClauseElement, params: dict[str, Any]) -> list[Row]:
    session = db.session()
    if session.autoflush:
        session.flush()  # as session.execute() would: pending ORM changes go first
    conn = session.connection()  # begins the transaction, or raises for one that must be rolled back
    prepared = _Prepared.of(stmt, conn.dialect)
    try:
        return _run(conn.connection, prepared, prepared.arguments(params), conn if _traced(conn.engine) else None)
    except sa.exc.DBAPIError as error:
        if error.connection_invalidated:
            conn.invalidate(error.orig)  # as SQLAlchemy does: the pool replaces it
        raise


def _autocommit_rows(stmt: ClauseElement, params: dict[str, Any]) -> list[Row]:
    engine = db.engine
    prepared = _Prepared.of(stmt, engine.dialect)
    arguments = prepared.arguments(params)
    # A Connection around the pooled one only where a listener wants one: it
    # costs more than a one-row statement's own work in Python.
    traced = engine.connect() if _traced(engine) else None
    pooled = traced.connection if traced is not None else engine.raw_connection()
    driver: Any = pooled.driver_connection
    # Where a pooled connection is not in autocommit already, putting it there
    # spares the BEGIN and ROLLBACK round trips around one SELECT.
    toggle = not backend().idle_in_autocommit
    try:
        try:
            if toggle:
                driver.autocommit = True
            found = _run(pooled, prepared, arguments, traced)
            if toggle:
                driver.autocommit = False
        except engine.dialect.loaded_dbapi.Error as error:  # from the toggles: a closed connection refuses them
            raise _wrapped(prepared, error, pooled, None) from error
    except BaseException as error:
        # Whatever went wrong, this connection may be left in autocommit or
        # broken: it is never handed out again.
        pooled.invalidate(error if isinstance(error, Exception) else None)
        if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
            # As SQLAlchemy does when a connection is lost (a database restart,
            # most likely): every other pooled connection is suspect too.
            engine.dispose(close=False)
        raise
    finally:
        (traced or pooled).close()
    return found


def _traced(engine: Engine) -> bool:
    """Whether a listener wants the cursor-execute events of `engine`."""
    return bool(engine.dispatch.before_cursor_execute or engine.dispatch.after_cursor_execute)


class _Prepared:
    """A Core statement compiled once for one dialect, with the bind and result
    conversions its column types declare. Every value it needs must be a bind
    parameter or a literal in the statement (an INSERT names its columns)."""

    _cache: ClassVar[dict[tuple[int, str, str], tuple[ClauseElement, _Prepared]]] = {}

    @classmethod
    def of(cls, stmt: ClauseElement, dialect: Dialect) -> _Prepared:
        # Statements are built once and kept by their modules, so this stays small.
        key = (id(stmt), dialect.name, dialect.driver)
        found = cls._cache.get(key)
        if found is None or found[0] is not stmt:
            found = cls._cache[key] = (stmt, cls(stmt, dialect))
        return found[1]

    def __init__(self, stmt: ClauseElement, dialect: Dialect):
        compiled = stmt.compile(dialect=dialect)
        self.dialect = dialect
        self.sql: str = compiled.string
        self.positional: Sequence[str] | None = compiled.positiontup  # type: ignore[attr-defined]  # None for named paramstyles
        if dialect.driver == "psycopg":
            self.sql = _binary_byte_arrays(self.sql, compiled.binds)  # type: ignore[attr-defined]
        self.binders: dict[str, Callable[[Any], Any]] = {
            name: processor
            for name, bind in compiled.binds.items()  # type: ignore[attr-defined]
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        # Values written into the statement itself (a literal compared with a column).
        constants = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}  # type: ignore[attr-defined]
        self.constants = {name: (self.binders[name](v) if name in self.binders else v) for name, v in constants.items()}
        exported = getattr(stmt, "exported_columns", ())
        results = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in exported]
        self.returns_rows = bool(results)  # a SELECT, or DML with RETURNING
        self.processors = results
        self.converters = [(index, convert) for index, convert in enumerate(results) if convert is not None]

    def arguments(self, params: dict[str, Any]) -> Any:
        if self.binders:
            params = {name: (self.binders[name](value) if name in self.binders else value) for name, value in params.items()}
        if self.constants:
            params = {**self.constants, **params}
        return [params[name] for name in self.positional] if self.positional is not None else params

    def convert(self, rows: Sequence[Any]) -> list[Row]:
        if not self.converters:
            return list(rows)
        # Bulk checks read thousands of rows whose one converted column (when
        # a suppression began) is mostly NULL: touch only the rows that need it.
        if len(self.converters) == 1:
            ((i, convert),) = self.converters
            return [row if row[i] is None else (*row[:i], convert(row[i]), *row[i + 1 :]) for row in rows]
        return [
            tuple(value if value is None or f is None else f(value) for f, value in zip(self.processors, row, strict=True)) for row in rows
        ]


def _binary_byte_arrays(sql: str, binds: dict[str, Any]) -> str:
    """`sql` with each bytea array parameter sent in binary (psycopg's `%(name)b`).
    psycopg writes a list in text by default, escaping every element with a
    regular expression: 83 ms for the 10,000 keys of a bulk check, against 8 ms
    in binary (2026-12-07)."""
    for name, bind in binds.items():
        item = getattr(bind.type, "item_type", None)
        if isinstance(bind.type, sa.ARRAY) and isinstance(getattr(item, "impl", item), sa.LargeBinary):  # impl: a TypeDecorator's own
            sql = sql.replace(f"%({name})s", f"%({name})b")
    return sql


class _EventContext:
    """Stands in for SQLAlchemy's execution context in the cursor events, so
    that listeners which keep state on it between the two (tracing) work."""

    executemany = False

    def __init__(self, conn: Connection, cursor: Any, statement: str, parameters: Any):
        self.connection, self.cursor, self.statement, self.parameters = conn, cursor, statement, parameters


def _run(pooled: PoolProxiedConnection, prepared: _Prepared, arguments: Any, traced: Connection | None) -> list[Row]:
    """Execute on the pooled connection's driver cursor; the cursor events fire
    (with `traced` as their connection) when a listener wants them."""
    cursor = None
    sql = prepared.sql
    try:
        cursor = pooled.cursor()
        context = None
        if traced is not None:
            dispatch = traced.dispatch
            context = _EventContext(traced, cursor, sql, arguments)
            for before in dispatch.before_cursor_execute:
                sql, arguments = before(traced, cursor, sql, arguments, context, False)
        cursor.execute(sql, arguments)
        if traced is not None:
            for after in dispatch.after_cursor_execute:
                after(traced, cursor, sql, arguments, context, False)
        found = cursor.fetchall() if prepared.returns_rows else []
    except prepared.dialect.loaded_dbapi.Error as error:
        raise _wrapped(prepared, error, pooled, cursor) from error
    finally:
        if cursor is not None:
            cursor.close()
    return prepared.convert(found)


def _wrapped(prepared: _Prepared, error: Any, pooled: PoolProxiedConnection, cursor: Any) -> sa.exc.StatementError:
    """The exception class SQLAlchemy would raise (a DBAPIError for a driver's
    error), parameters hidden, marked when the connection is lost."""
    wrapped: sa.exc.StatementError = sa.exc.DBAPIError.instance(
        prepared.sql,
        None,
        error,
        prepared.dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=prepared.dialect.is_disconnect(error, pooled.dbapi_connection, cursor),
        dialect=prepared.dialect,
    )
    return wrapped
