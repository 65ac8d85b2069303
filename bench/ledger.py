"""Transparency-log benchmark (issue 13), each figure beside a floor measured in the same run.

    .venv/bin/python -m bench.ledger verify [--events 1000000]        # SQLite
    .venv/bin/python -m bench.ledger lag [--backend sqlite|postgresql] [--requests 10000] [--rounds 3] [--per-connection 50]

verify: `prefs ledger verify` (in process, the same function) over N consent
events with evidence, beside two floors: a bare cursor read of the same rows
(events, leaves, nodes), and SHA-256 alone over the same leaf bytes.
Target: 1M events in under 60 s.

lag: one-click withdrawals (bench/one_click.py's load: gunicorn, 16 clients)
with the sequencer running beside them as the worker runs it; the time from an
event's recorded_at to the signed checkpoint that first covers it (p50, p99;
target: p99 within 2 s), and withdrawals per second with the sequencer running
and without it, rounds alternating. Each client opens a new connection every
50 requests (--per-connection): with kept-alive connections one gunicorn worker
often accepted all 16 and the other stayed idle, and a round ran at about
half speed by that luck alone. Each round prints the busier worker's share of
the workers' CPU (50% when even). The extra columns themselves are not
switched off here: A/B them with farm-bench against the commit before the
ledger (`bench.one_click` on both).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import sys
import threading
import time
import uuid
from datetime import UTC, datetime

from bench import common, one_click


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


def bench_verify(events: int, reuse: bool) -> dict:
    url = common.database_url("sqlite", "prefs_bench_ledger")
    seeded = 0.0
    if not reuse:
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
        started, cpu = time.perf_counter(), time.process_time()
        outcome = verify.verify()
        verifying, verify_cpu = time.perf_counter() - started, time.process_time() - cpu
    cpu = time.process_time()
    read, hashing, _ = floors(url)
    read_cpu = time.process_time() - cpu
    common.report(
        f"prefs ledger verify, SQLite, {events:,} consent events with evidence (seeded in {seeded:.0f} s)",
        [
            ("figure", "seconds", "leaves/s", "floor / target"),
            ("verify (intact: " + ("yes" if outcome.intact else f"NO: {outcome.problem}") + ")", f"{verifying:.1f}",
             f"{outcome.leaves / verifying:,.0f}", "< 60 s for 1M (17k leaves/s)"),
            ("verify, CPU seconds of this process (the machine is shared)", f"{verify_cpu:.1f}", f"{outcome.leaves / verify_cpu:,.0f}", ""),
            ("floor: bare cursor read of events, leaves, nodes", f"{read:.1f}", f"{events / read:,.0f}", ""),
            ("floor: the same read and the SHA-256 sample, CPU seconds", f"{read_cpu:.1f}", "", ""),
            ("floor: SHA-256 alone over leaves and nodes", f"{hashing:.1f}", f"{events / hashing:,.0f}", ""),
            ("sequencer catching up from nothing", f"{sequencing:.1f}", f"{sequenced / sequencing:,.0f}", ""),
        ],
    )  # fmt: skip
    return {"events": events, "verify_s": verifying, "verify_cpu_s": verify_cpu, "read_floor_cpu_s": read_cpu, "intact": outcome.intact, "read_floor_s": read, "sha_floor_s": hashing,
            "sequence_s": sequencing}  # fmt: skip


def run_sequencer() -> None:
    """The worker's sequencer loop alone, until SIGTERM (the lag rounds run it as a process)."""
    import signal

    from prefs_service.jobs.ledger import sequence_forever
    from prefs_service.ledger import sequencer

    app = _app(os.environ["PREFS_DATABASE_URL"])
    held: list[float] = []  # seconds each write transaction of the sequencer took, lock wait included
    commit = sequencer._commit

    def timed_commit(batch):
        started = time.perf_counter()
        try:
            return commit(batch)
        finally:
            held.append(time.perf_counter() - started)

    sequencer._commit = timed_commit
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)  # booted: the load may start
    booted = time.process_time()
    sequence_forever(app, stop)
    held.sort()
    print(
        f"sequencer CPU while the load ran: {time.process_time() - booted:.2f} s; {len(held)} write transactions, "
        f"{sum(held):.2f} s in all, median {held[len(held) // 2] * 1000:.1f} ms, max {held[-1] * 1000:.1f} ms",
        flush=True,
    )


def lags(url: str) -> list[float]:
    """Seconds from each one-click event's recorded_at to the first signed checkpoint covering it."""
    import bisect

    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        events = conn.execute(
            sa.text(
                "SELECT l.idx, e.recorded_at FROM consent_events e JOIN ledger_leaves l ON l.kind = 1 AND l.source_id = e.id "
                "WHERE e.source = 'one_click'"
            )
        ).all()
        marks = conn.execute(sa.text("SELECT tree_size, timestamp_ms FROM ledger_checkpoints ORDER BY tree_size, id")).all()
    engine.dispose()
    sizes = [size for size, _ in marks]
    found = []
    for idx, recorded in events:
        at = datetime.fromisoformat(recorded) if isinstance(recorded, str) else recorded
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
        first = bisect.bisect_right(sizes, idx)  # the first checkpoint with tree_size > idx
        if first < len(marks):
            found.append(marks[first][1] / 1000 - at.timestamp())
    return found


def lag_round(backend: str, requests: int, with_sequencer: bool, interval: float, per_connection: int | None) -> dict:
    import subprocess

    from bench import open_loop

    url, paths = one_click.prepare(backend, requests)
    app = _app(url)
    from prefs_service.db import scopes
    from prefs_service.ledger import sequencer

    with app.app_context(), scopes.writing():
        sequencer.sequence_all()  # the seeded ledger: lag is measured on the clicks
    env = {**common.env_for(url), "PYTHONPATH": str(common.ROOT), "PREFS_LEDGER_SEQUENCE_INTERVAL_SECONDS": str(interval)}
    process = None
    if with_sequencer:
        # Booted before the load starts, as a deployed sequencer is: its start-up is not the load's cost.
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.ledger", "sequencer"], env=env, cwd=common.ROOT, stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError("the sequencer process did not start")
    try:
        with common.gunicorn(common.SERVICE, env) as base:
            workers = open_loop.workers_of(base.pid)
            before = open_loop.cpu_seconds(workers)
            seconds, responses = common.post_form(
                base, paths, one_click.BODY, concurrency=one_click.CONCURRENCY, per_connection=per_connection
            )
            used = [after - start for after, start in zip(open_loop.cpu_seconds(workers), before, strict=True)]
    finally:
        if process is not None:
            process.terminate()
            print(process.communicate(timeout=30)[0], end="")
    acknowledged = sum(1 for status, _ in responses if status == 200)
    # The busier worker's share of the workers' CPU: 0.5 when the load was spread evenly.
    busiest = max(used) / sum(used) if sum(used) else 0.0
    print(f"  {'with' if with_sequencer else 'without'} sequencer: {acknowledged / seconds:,.0f}/s, "
          f"busiest worker {busiest:.0%} of the workers' CPU ({', '.join(f'{u:.1f}' for u in used)} s)", flush=True)  # fmt: skip
    if not with_sequencer:
        return {"withdrawals_per_s": acknowledged / seconds, "busiest_worker": busiest}
    with app.app_context(), scopes.writing():
        sequencer.sequence_all()  # any click the last loop did not reach yet: its lag then counts from now
    found = sorted(lags(url))
    return {
        "withdrawals_per_s": acknowledged / seconds,
        "busiest_worker": busiest,
        "lag_p50_s": found[len(found) // 2],
        "lag_p99_s": found[int(len(found) * 0.99) - 1],
        "lag_max_s": found[-1],
        "within_2s": sum(1 for value in found if value <= 2) / len(found),
        "events": len(found),
    }


def bench_lag(backend: str, requests: int, rounds: int, interval: float, per_connection: int | None) -> dict:
    runs: dict[str, list[dict]] = {"with": [], "without": []}
    for number in range(rounds):
        order = [True, False] if number % 2 == 0 else [False, True]
        for with_sequencer in order:
            runs["with" if with_sequencer else "without"].append(lag_round(backend, requests, with_sequencer, interval, per_connection))
    w = common.medians(runs["with"])
    wo = common.medians(runs["without"])
    ratio = common.median([a["withdrawals_per_s"] / b["withdrawals_per_s"] for a, b in zip(runs["with"], runs["without"], strict=True)])
    common.report(
        f"sequencing lag under one-click load, {backend}, {requests:,} withdrawals, {rounds} alternating rounds, "
        f"sequencer every {interval} s, " + (f"a new connection every {per_connection} requests" if per_connection else "kept-alive connections"),
        [
            ("figure", "with sequencer", "without (floor)", "ratio / target"),
            ("withdrawals per second", f"{w['withdrawals_per_s']:,.0f}", f"{wo['withdrawals_per_s']:,.0f}", f"{ratio:.2f}x  (>= 0.90)"),
            ("lag p50 (s)", f"{w['lag_p50_s']:.2f}", "", ""),
            ("lag p99 (s)", f"{w['lag_p99_s']:.2f}", "", "(<= 2 s)"),
            ("lag max (s)", f"{w['lag_max_s']:.2f}", "", ""),
            ("events in a checkpoint within 2 s", f"{w['within_2s']:.1%}", "", "(>= 99%)"),
        ],
    )  # fmt: skip
    print("  withdrawals per second by round, with: " + ", ".join(f"{r['withdrawals_per_s']:,.0f}" for r in runs["with"])
          + "; without: " + ", ".join(f"{r['withdrawals_per_s']:,.0f}" for r in runs["without"]))  # fmt: skip
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    v = sub.add_parser("verify")
    v.add_argument("--events", type=int, default=1_000_000)
    v.add_argument("--reuse", action="store_true", help="verify the database a previous run built (same --events)")
    lag = sub.add_parser("lag")
    lag.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    lag.add_argument("--requests", type=int, default=10_000)
    lag.add_argument("--rounds", type=int, default=3)
    lag.add_argument("--interval", type=float, default=0.5, help="PREFS_LEDGER_SEQUENCE_INTERVAL_SECONDS for the sequencer")
    lag.add_argument(
        "--per-connection",
        type=int,
        default=one_click.PER_CONNECTION,
        help="requests per client connection, then a new one (0: keep each for the whole run)",
    )
    sub.add_parser("sequencer", help="(used by lag) run the worker's sequencer loop until SIGTERM")
    args = parser.parse_args()
    if args.what == "sequencer":
        run_sequencer()
    elif args.what == "verify":
        common.save("ledger_verify", bench_verify(args.events, args.reuse))
    else:
        common.save(
            f"ledger_lag_{args.backend}", bench_lag(args.backend, args.requests, args.rounds, args.interval, args.per_connection or None)
        )


if __name__ == "__main__":
    main()
