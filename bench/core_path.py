"""The service with its fast path (prefs_service/db/fast.py) replaced by plain
SQLAlchemy Core, for bench/fast_path.py to measure the two side by side.

What "plain Core" means here, as the service would be written without db/fast.py:
- a read in a read-only scope runs on a pooled Core `Connection` (in
  autocommit on PostgreSQL; on SQLite the connection is in autocommit outside a
  transaction already, so no BEGIN is sent), with SQLAlchemy's compiled cache;
- everything else runs with `db.session.execute()` in the session's transaction;
- many keys bind as one expanding IN (SQLite) or `= ANY(:keys)` (PostgreSQL),
  instead of padded power-of-two IN lists;
- psycopg prepares a statement server-side after its fifth run on a connection
  (prepare_threshold, psycopg's default), as it does for the fast path.

    gunicorn 'bench.core_path:create_app()'
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa


def create_app():
    from prefs_service import create_app as create_service
    from prefs_service.db import backend, fast, scopes
    from prefs_service.extensions import db

    def core_rows(stmt, params: dict, *, scope) -> list[tuple]:
        if scope is scopes.READ:
            engine = db.engine
            if engine.dialect.name == "postgresql":
                engine = engine.execution_options(isolation_level="AUTOCOMMIT")
            else:
                engine = engine.execution_options(prefs_no_begin=True)
            with engine.connect() as conn:
                return [tuple(row) for row in conn.execute(stmt, params)]
        return [tuple(row) for row in db.session.execute(stmt, params)]

    original_begin = backend._begin

    def begin(conn) -> None:
        if conn.get_execution_options().get("prefs_no_begin"):
            return
        original_begin(conn)

    def sqlite_batches(self, keys: Sequence[Any]) -> Iterator[tuple[int | None, dict]]:
        for start in range(0, len(keys), self.BATCH):
            yield None, {"keys": list(keys[start : start + self.BATCH])}

    def sqlite_matching(self, column, size):
        return column.in_(sa.bindparam("keys", expanding=True))

    fast.rows = core_rows
    backend._begin = begin  # bound to the engine by create_app below
    backend.SQLite._batches = sqlite_batches
    backend.SQLite._matching_many = sqlite_matching
    app = create_service()
    gc.freeze()  # as wsgi.py does for the service
    return app
