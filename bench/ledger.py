"""Transparency-log benchmark (issue 13), each figure beside a floor measured in the same run.

    .venv/bin/python -m bench.ledger verify [--events 1000000]        # SQLite
    .venv/bin/python -m bench.ledger lag [--backend sqlite|postgresql] [--requests 10000] [--rounds 3]

verify: `prefs ledger verify` (in process, the same function) over N consent
events with evidence, beside two floors: a bare cursor read of the same rows
(events, leaves, nodes), and SHA-256 alone over the same leaf bytes.
Target: 1M events in under 60 s.

lag: one-click withdrawals (bench/one_click.py's load: gunicorn, 16 clients)
with the sequencer running beside them as the worker runs it; the time from an
event's recorded_at to the signed checkpoint that first covers it (p50, p99;
target: p99 within 2 s), and withdrawals per second with the sequencer running
and without it, rounds alternating. The extra columns themselves are not
switched off here: A/B them with farm-bench against the commit before the
ledger (`bench.one_click` on both).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import time
import uuid
from datetime import UTC, datetime

from bench import common


def _app(url: str):
    os.environ.update(common.env_for(url))
    from prefs_service import create_app

    return create_app()


def seed_events(url: str, count: int) -> None:
    """`count` consent events of 10,000 people, with evidence, salted and committed as the service writes them."""
    from prefs_service.ledger import leaves

    path = url.split(":///", 1)[1]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    people = [uuid.UUID(int=i + 1).hex for i in range(10_000)]
    conn.executemany("INSERT INTO subjects (id, created_at, updated_at) VALUES (?, ?, ?)", ((s, stamp, stamp) for s in people))

    def rows():
        for n in range(count):
            ip, agent, note = "203.0.113.0/24", "Mozilla/5.0 (X11; Linux x86_64)", None if n % 2 else f"form {n % 97}"
            columns = leaves.evidence_columns(ip, agent, note)
            yield (n + 1, people[n % len(people)], "granted" if n % 3 else "withdrawn", stamp, stamp, ip, agent, note,
                   columns["evidence_salt"], columns["evidence_commitment"])  # fmt: skip

    conn.executemany(
        "INSERT INTO consent_events (id, txid, subject_id, channel, purpose, status, source, occurred_at, recorded_at, "
        "evidence_ip, evidence_user_agent, evidence_note, evidence_salt, evidence_commitment, recorded_by, policy_version) "
        "VALUES (?, 0, ?, 'email', 'newsletter', ?, 'api', ?, ?, ?, ?, ?, ?, ?, 'api_key:1', 'initial')",
        rows(),
    )
    conn.execute("COMMIT")
    conn.close()


def floors(url: str) -> tuple[float, float, int]:
    """(seconds to read every row the verify reads, seconds to SHA-256 the leaf bytes, leaves)."""
    from prefs_service.ledger import leaves

    conn = sqlite3.connect(url.split(":///", 1)[1])
    started = time.perf_counter()
    rows = 0
    for sql in (
        leaves.CONSENT_SQL + " ORDER BY txid, id",
        "SELECT idx, kind, source_id FROM ledger_leaves ORDER BY idx",
        "SELECT key, hash FROM ledger_nodes ORDER BY key",
    ):
        cursor = conn.execute(sql)
        while batch := cursor.fetchmany(20000):
            rows += len(batch)
    read = time.perf_counter() - started
    encoded = [leaves.consent_leaf(row) for row in conn.execute(leaves.CONSENT_SQL + " ORDER BY id LIMIT 200000")]
    sha256 = hashlib.sha256
    started = time.perf_counter()
    for leaf in encoded:
        sha256(b"\x00" + leaf).digest()
    hashing = (time.perf_counter() - started) * (rows / 2) / len(encoded)  # the leaves, and as many nodes
    conn.close()
    return read, hashing, len(encoded)


def bench_verify(events: int) -> dict:
    url = common.database_url("sqlite", "prefs_bench_ledger")
    common.recreate_database("sqlite", url)
    common.prefs(url, "db", "upgrade")
    started = time.perf_counter()
    seed_events(url, events)
    seeded = time.perf_counter() - started
    app = _app(url)
    from prefs_service.db import scopes
    from prefs_service.ledger import sequencer, verify

    started = time.perf_counter()
    with app.app_context(), scopes.writing():
        sequenced = sequencer.sequence_all()
    sequencing = time.perf_counter() - started
    with app.app_context():
        started = time.perf_counter()
        outcome = verify.verify()
        verifying = time.perf_counter() - started
    read, hashing, _ = floors(url)
    common.report(
        f"prefs ledger verify, SQLite, {events:,} consent events with evidence (seeded in {seeded:.0f} s)",
        [
            ("figure", "seconds", "leaves/s", "floor / target"),
            ("verify (intact: " + ("yes" if outcome.intact else f"NO: {outcome.problem}") + ")", f"{verifying:.1f}",
             f"{outcome.leaves / verifying:,.0f}", "< 60 s for 1M (17k leaves/s)"),
            ("floor: bare cursor read of events, leaves, nodes", f"{read:.1f}", f"{events / read:,.0f}", ""),
            ("floor: SHA-256 alone over leaves and nodes", f"{hashing:.1f}", f"{events / hashing:,.0f}", ""),
            ("sequencer catching up from nothing", f"{sequencing:.1f}", f"{sequenced / sequencing:,.0f}", ""),
        ],
    )  # fmt: skip
    return {"events": events, "verify_s": verifying, "intact": outcome.intact, "read_floor_s": read, "sha_floor_s": hashing,
            "sequence_s": sequencing}  # fmt: skip


def bench_lag(backend: str, requests: int, rounds: int) -> dict:
    raise NotImplementedError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    v = sub.add_parser("verify")
    v.add_argument("--events", type=int, default=1_000_000)
    lag = sub.add_parser("lag")
    lag.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    lag.add_argument("--requests", type=int, default=10_000)
    lag.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.what == "verify":
        common.save("ledger_verify", bench_verify(args.events))
    else:
        common.save(f"ledger_lag_{args.backend}", bench_lag(args.backend, args.requests, args.rounds))


if __name__ == "__main__":
    main()
