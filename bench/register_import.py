"""Register import benchmark (issue 12): N generated TPS numbers, as the TPS
publishes them (12-character records, CRLF, half with a space after the
dialling code), imported by the real loader in a child process, beside floors
measured in the same run:

- parse+hash: the same file read, parsed and hashed by the same parser, nothing stored;
- bare load: N precomputed 32-byte keys loaded into a table of the entries'
  shape, the fastest way each backend has (PostgreSQL: COPY straight into the
  indexed table, binary and text; SQLite: executemany in one transaction);
- COPY unindexed + key built (PostgreSQL): what the loader does with a list's
  own partition (registers/partitions.py), COPY into a table with no index,
  then its primary key built in one sort.

    .venv/bin/python -m bench.register_import [--backend sqlite|postgresql|both] [--numbers 1000000]

Targets: 17M in under 4 minutes on PostgreSQL; 1M in under 10 s on either backend.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from bench import common

CODES = ("0207", "0208", "0203", "0161", "0121", "0113", "0117", "0191")

IMPORT = textwrap.dedent(
    """
    import sys
    from datetime import date
    from pathlib import Path
    from prefs_service import create_app
    from prefs_service.registers import loader
    app = create_app()
    with app.app_context():
        summary = loader.import_file(register="tps", path=Path(sys.argv[1]), list_date=date.today(), delta=False, imported_by="bench")
    print(summary.seconds, summary.accepted, summary.rejected, summary.entries)
    """
)

PARSE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from prefs_service.registers import parsers
    digest = parsers.plain_hasher(sys.argv[2].encode(), "phone")
    started = time.perf_counter()
    with open(sys.argv[1], "rb") as stream:
        accepted = sum(1 for item in parsers.parse("tps", stream, delta=False, digest=digest) if type(item) is parsers.Entry)
    print(time.perf_counter() - started, accepted)
    """
)


def write_file(path: Path, count: int) -> None:
    with path.open("wb") as out:
        for i in range(count):
            code, rest = CODES[i % len(CODES)], f"{i // len(CODES) % 10_000_000:07d}"
            record = f"{code} {rest}" if i % 2 else f"{code}{rest}"
            out.write(record.ljust(12).encode() + b"\r\n")


def _keys(count: int) -> list[bytes]:
    return [os.urandom(32) for _ in range(count)]


def floor_sqlite(url: str, count: int) -> dict:
    import sqlite3

    keys = _keys(count)
    conn = sqlite3.connect(url.split(":///", 1)[1], isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-262144")
    conn.execute("DROP TABLE IF EXISTS floor_entries")
    conn.execute("CREATE TABLE floor_entries (list_id INTEGER, key_hash BLOB, flag TEXT, PRIMARY KEY (list_id, key_hash)) WITHOUT ROWID")
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    for start in range(0, count, 50_000):
        conn.executemany("INSERT INTO floor_entries VALUES (?, ?, ?)", [(1, k, None) for k in keys[start : start + 50_000]])
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.execute("DROP TABLE floor_entries")
    conn.close()
    return {"bare executemany": elapsed}


def floor_postgresql(url: str, count: int, bare: bool = True) -> dict:
    import psycopg

    keys = _keys(count)
    figures = {}
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        for label, fmt in (("bare COPY binary", "BINARY"), ("bare COPY text", "TEXT")) if bare else ():
            conn.execute("DROP TABLE IF EXISTS floor_entries")
            conn.execute("CREATE TABLE floor_entries (list_id bigint, key_hash bytea, flag varchar(1), PRIMARY KEY (list_id, key_hash))")
            conn.commit()
            started = time.perf_counter()
            with conn.cursor() as cursor, cursor.copy(f"COPY floor_entries FROM STDIN (FORMAT {fmt})") as copy:
                if fmt == "BINARY":
                    copy.set_types(["int8", "bytea", "varchar"])
                for key in keys:
                    copy.write_row((1, key, None))
            conn.commit()
            figures[label] = time.perf_counter() - started
        conn.execute("DROP TABLE IF EXISTS floor_entries")
        conn.execute("CREATE TABLE floor_entries (list_id bigint, key_hash bytea, flag varchar(1))")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cursor:
            with cursor.copy("COPY floor_entries FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "bytea", "varchar"])
                for key in keys:
                    copy.write_row((1, key, None))
            cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
            cursor.execute("ALTER TABLE floor_entries ADD PRIMARY KEY (list_id, key_hash)")
        conn.commit()
        figures["COPY unindexed + key built"] = time.perf_counter() - started
        conn.execute("DROP TABLE floor_entries")
        conn.commit()
    return figures


def run(backend: str, count: int, path: Path, bare: bool = True) -> None:
    url = common.database_url(backend, "bench_register_import")
    common.recreate_database(backend, url)
    common.prefs(url, "db", "upgrade")
    env = common.env_for(url)
    done = subprocess.run([sys.executable, "-c", IMPORT, str(path)], env=env, cwd=common.ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    seconds, accepted, rejected, entries = done.stdout.split()
    took = float(seconds)
    print(f"\n{backend}: {count:,} TPS numbers ({accepted} accepted, {rejected} rejected, {entries} entries)")
    print(f"  import (parse, hash, load, swap)   {took:8.2f} s   {count / took:>12,.0f} numbers/s", flush=True)
    parsed = subprocess.run(
        [sys.executable, "-c", PARSE, str(path), common.IDENTIFIER_KEY], env=env, cwd=common.ROOT, capture_output=True, text=True
    )
    if parsed.returncode != 0:
        raise RuntimeError(parsed.stderr[-3000:])
    parse_seconds, _ = parsed.stdout.split()
    print(f"  floor: parse+hash alone            {float(parse_seconds):8.2f} s", flush=True)
    floors = floor_sqlite(url, count) if backend == "sqlite" else floor_postgresql(url, count, bare)
    for label, value in floors.items():
        print(f"  floor: {label:<28}{value:8.2f} s")
    print(f"  floor: parse+hash + fastest load   {float(parse_seconds) + min(floors.values()):8.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--numbers", type=int, default=1_000_000)
    parser.add_argument(
        "--no-bare-floors",
        action="store_true",
        help="PostgreSQL: skip the bare COPY floors (into a table indexed on random keys: at 17M each takes longer than the import)",
    )
    args = parser.parse_args()
    common.WORK.mkdir(parents=True, exist_ok=True)
    path = common.WORK / f"tps-{args.numbers}.txt"
    if not path.exists():
        write_file(path, args.numbers)
    print(f"{path}: {path.stat().st_size:,} bytes; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for backend in ("sqlite", "postgresql") if args.backend == "both" else (args.backend,):
        run(backend, args.numbers, path, bare=not args.no_bare_floors)


if __name__ == "__main__":
    main()
