"""PostgreSQL: each full list's entries in a partition of their own.

`register_entries` is partitioned by list (migration 0016). A full import
loads its list into a new table with no index, builds the primary key once all
rows are in, then attaches the table as the list's partition. Importing 17M
numbers took 382 s when each key went into the B-tree as it came, and takes
74 s this way; its load alone, COPY unindexed then one sorted key build, is
26 s (bench/register_import.py).
Dropping a list is dropping its table, not deleting its rows.

There is no default partition: attaching a list then locks nothing checks
read (ATTACH takes a lock on the entries table that readers do not conflict
with), where a default partition would be locked exclusively and scanned.
Every list's rows go to its own partition (a delta adds to its full list's);
`add_empty` gives one to a list whose entries are written some other way.
Dropping lists' partitions (one statement, before a full import loads and
again after its swap) does wait for the checks reading the entries table,
and holds back those that come after it meanwhile: at most DROP_LOCK_TIMEOUT
each time.

SQLite keeps one table: these functions are not called there.
"""

from __future__ import annotations

import re
from typing import Any

PARENT = "register_entries"
_PARTITION = re.compile(r"register_entries_l\d+")
# The primary key's sort (memory is released when the statement ends).
INDEX_BUILD_MEMORY = "256MB"
# How long dropping a list's partition waits for checks reading the parent
# before giving up; the list is then dropped by the next import.
DROP_LOCK_TIMEOUT = "2s"


def table_of(list_id: int) -> str:
    return f"register_entries_l{int(list_id)}"


def is_partition(table: str) -> bool:
    """Whether `table` is one of the entries table's partitions (which the models do not declare)."""
    return _PARTITION.fullmatch(table) is not None


def partitioned(cursor: Any) -> bool:
    """Whether this database's entries table is partitioned (migration 0016 ran on PostgreSQL)."""
    cursor.execute("SELECT relkind::text FROM pg_class WHERE oid = to_regclass(%s)", (PARENT,))
    row = cursor.fetchone()
    return row is not None and row[0] == "p"


def tables(cursor: Any) -> list[str]:
    """The lists' tables there are, attached or not."""
    cursor.execute(r"SELECT relname FROM pg_class WHERE relkind = 'r' AND relname LIKE 'register\_entries\_l%' ORDER BY relname")
    return [name for (name,) in cursor.fetchall() if is_partition(name)]


def add_empty(cursor: Any, list_id: int) -> None:
    """An empty partition for `list_id`, for entries written outside an import."""
    cursor.execute(f"CREATE TABLE {table_of(list_id)} PARTITION OF {PARENT} FOR VALUES IN ({int(list_id)})")


def create(cursor: Any, list_id: int) -> str:
    """A new, empty, unindexed table for `list_id`'s entries; its name.

    Its CHECK lets ATTACH skip scanning the rows for ones outside the partition."""
    table = table_of(list_id)
    cursor.execute(f"CREATE TABLE {table} (LIKE {PARENT} INCLUDING DEFAULTS)")
    cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_list CHECK (list_id = {int(list_id)})")
    return table


def attach(cursor: Any, list_id: int, loaded: int) -> int:
    """Index `list_id`'s table, `loaded` rows, and attach it as its partition,
    in the cursor's transaction; how many entries it holds.

    A number listed twice is one entry: when the key cannot be built, the
    repeats go first (the first flag in sort order stays, as an
    INSERT … ORDER BY … ON CONFLICT DO NOTHING kept it)."""
    table = table_of(list_id)
    entries = loaded
    cursor.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
    cursor.execute("SAVEPOINT register_index")
    try:
        cursor.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (list_id, key_hash)")
    except _unique_violation():
        cursor.execute("ROLLBACK TO SAVEPOINT register_index")
        cursor.execute(
            f"DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM (SELECT ctid, row_number() OVER "  # noqa: S608
            f"(PARTITION BY key_hash ORDER BY flag) AS n FROM {table}) AS repeated WHERE n > 1)"
        )
        entries -= cursor.rowcount
        cursor.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (list_id, key_hash)")
    cursor.execute(f"ALTER TABLE {PARENT} ATTACH PARTITION {table} FOR VALUES IN ({int(list_id)})")
    return entries


def analyze(cursor: Any, list_id: int) -> None:
    """Statistics for the new partition at once, not at autovacuum's turn: probes plan from them.
    Outside the attaching transaction, which holds a lock on the lists table."""
    cursor.execute(f"ANALYZE {table_of(list_id)}")


def drop(cursor: Any, list_ids: list[int]) -> list[int]:
    """Drop the partitions (or loose tables) of `list_ids`, in one statement
    so that checks wait for one lock at most; the ids left (all of them, when
    checks held the entries table past DROP_LOCK_TIMEOUT) for the next import."""
    if not list_ids:
        return []
    try:
        cursor.execute(f"SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'")
        cursor.execute("DROP TABLE IF EXISTS " + ", ".join(table_of(list_id) for list_id in list_ids))
        cursor.connection.commit()
    except _lock_timeout():
        cursor.connection.rollback()
        return list(list_ids)
    return []


def _unique_violation() -> type[Exception]:
    import psycopg.errors

    return psycopg.errors.UniqueViolation


def _lock_timeout() -> type[Exception]:
    import psycopg.errors

    return psycopg.errors.LockNotAvailable
