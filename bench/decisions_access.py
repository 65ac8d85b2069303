"""Which access path PostgreSQL should take to probe the decisions read model
for a large key set (consent/decisions.py, db/backend.py PostgreSQL.probe).

A short measurement, not a timed test: it fills a scratch database with a
decisions table of PEOPLE rows for each of two purposes, then looks up
BATCH keys (half held, half not) ROUNDS times by each path and prints the
median, with the plan each path gets:

- `= ANY(%s)`: one array parameter;
- `unnest(%s) JOIN`: the array as a relation, joined on the primary key;
- a temporary table filled by COPY, joined on the primary key.

Run: .venv/bin/python bench/decisions_access.py [--people 1000000] [--batch 10000]
(needs PostgreSQL on 127.0.0.1:5432 with trust auth; drops its database after).
Keys are sorted before each lookup, as the service sends them.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import time
from collections.abc import Callable

import psycopg

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SCRATCH = "prefs_decisions_access"


def key(i: int) -> bytes:
    return hashlib.sha256(b"key:%d" % i).digest()


def fill(conn: psycopg.Connection, people: int) -> None:
    conn.execute(
        "CREATE TABLE decisions (key_hash bytea, channel varchar(16), purpose varchar(40), status varchar(10),"
        " since timestamptz, silenced_since timestamptz, erased boolean NOT NULL, subject_id uuid,"
        " PRIMARY KEY (key_hash, channel, purpose))"
    )
    with conn.cursor() as cursor, cursor.copy("COPY decisions (key_hash, channel, purpose, status, since, erased) FROM STDIN") as copy:
        for i in range(people):
            k = key(i)
            copy.write_row((k, "email", "newsletter", "granted", "2026-01-01T00:00:00Z", False))
            copy.write_row((k, "email", "offers", "withdrawn", "2026-01-01T00:00:00Z", False))
    conn.execute("ANALYZE decisions")


def any_path(cursor: psycopg.Cursor, keys: list[bytes]) -> list[tuple]:
    cursor.execute(
        "SELECT key_hash, status, since, silenced_since, erased FROM decisions WHERE channel = %s AND purpose = %s AND key_hash = ANY(%s)",
        ("email", "newsletter", keys),
    )
    return cursor.fetchall()


def unnest_path(cursor: psycopg.Cursor, keys: list[bytes]) -> list[tuple]:
    cursor.execute(
        "SELECT d.key_hash, d.status, d.since, d.silenced_since, d.erased FROM unnest(%s::bytea[]) AS k(key_hash)"
        " JOIN decisions AS d ON d.key_hash = k.key_hash AND d.channel = %s AND d.purpose = %s",
        (keys, "email", "newsletter"),
    )
    return cursor.fetchall()


def unnest_binary_path(cursor: psycopg.Cursor, keys: list[bytes]) -> list[tuple]:
    """As unnest_path, the array sent in binary (no hex text for the server to parse)."""
    cursor.execute(
        "SELECT d.key_hash, d.status, d.since, d.silenced_since, d.erased FROM unnest(%b::bytea[]) AS k(key_hash)"
        " JOIN decisions AS d ON d.key_hash = k.key_hash AND d.channel = %s AND d.purpose = %s",
        (keys, "email", "newsletter"),
    )
    return cursor.fetchall()


def temp_table_path(cursor: psycopg.Cursor, keys: list[bytes]) -> list[tuple]:
    cursor.execute("CREATE TEMPORARY TABLE IF NOT EXISTS probe (key_hash bytea) ON COMMIT DELETE ROWS")
    with cursor.copy("COPY probe (key_hash) FROM STDIN") as copy:
        for k in keys:
            copy.write_row((k,))
    cursor.execute(
        "SELECT d.key_hash, d.status, d.since, d.silenced_since, d.erased FROM probe AS k"
        " JOIN decisions AS d ON d.key_hash = k.key_hash AND d.channel = %s AND d.purpose = %s",
        ("email", "newsletter"),
    )
    return cursor.fetchall()


PATHS: dict[str, Callable[[psycopg.Cursor, list[bytes]], list[tuple]]] = {
    "= ANY(%s)": any_path,
    "unnest(%s) JOIN": unnest_path,
    "unnest(%b binary) JOIN": unnest_binary_path,
    "temp table (COPY) JOIN": temp_table_path,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH}")
        admin.execute(f"CREATE DATABASE {SCRATCH}")
    try:
        with psycopg.connect(ADMIN.rsplit("/", 1)[0] + "/" + SCRATCH) as conn:
            started = time.perf_counter()
            fill(conn, args.people)
            conn.commit()
            conn.autocommit = True
            conn.execute("VACUUM (ANALYZE) decisions")  # as autovacuum would: index-only scans skip the heap
            conn.autocommit = False
            print(f"filled {2 * args.people} rows in {time.perf_counter() - started:.1f} s (load average {os.getloadavg()[0]:.1f})")
            rng = random.Random(14)
            timings: dict[str, list[float]] = {name: [] for name in PATHS}
            held: dict[str, int] = {}
            for _ in range(args.rounds):
                # About half held; sorted, as consent/decisions.py read() sends them.
                keys = sorted({key(rng.randrange(2 * args.people)) for _ in range(args.batch)})
                for name, path in PATHS.items():  # the paths take turns with the same keys: none gets a warmer cache
                    with conn.cursor() as cursor:
                        started = time.perf_counter()
                        held[name] = len(path(cursor, keys))
                        timings[name].append(time.perf_counter() - started)
                    conn.commit()
            for name in PATHS:
                with conn.cursor() as cursor:
                    cursor.execute("EXPLAIN (COSTS OFF) " + _sql_of(name), _params_of(name, keys))
                    plan = " / ".join(line if len(line) < 120 else line[:100] + " …" for (line,) in cursor.fetchall())
                conn.rollback()
                median = statistics.median(timings[name])
                print(
                    f"{name:24} median {median * 1000:7.1f} ms for {len(keys)} keys ({held[name]} held), {median / len(keys) * 1e6:.2f} µs a key"
                )
                print(f"{'':24} plan: {plan}")
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")


def _sql_of(name: str) -> str:
    if name == "= ANY(%s)":
        return "SELECT key_hash FROM decisions WHERE channel = %s AND purpose = %s AND key_hash = ANY(%s)"
    if name.startswith("unnest"):
        return (
            "SELECT d.key_hash FROM unnest(%s::bytea[]) AS k(key_hash)"
            " JOIN decisions AS d ON d.key_hash = k.key_hash AND d.channel = %s AND d.purpose = %s"
        )
    return "SELECT d.key_hash FROM probe AS k JOIN decisions AS d ON d.key_hash = k.key_hash AND d.channel = %s AND d.purpose = %s"


def _params_of(name: str, keys: list[bytes]) -> tuple:
    if name == "= ANY(%s)":
        return ("email", "newsletter", keys)
    if name.startswith("unnest"):
        return (keys, "email", "newsletter")
    return ("email", "newsletter")


if __name__ == "__main__":
    main()
