"""Yearly request metrics benchmark: `rights.report.request_report` over a table of
rights requests across two years, beside a floor measured in the same run (one grouped
count of the year's rows: the least any per-type report must read) and beside the naive
way (every answered row of the year loaded into Python, medians taken there).

    .venv/bin/python -m bench.request_report [--backend sqlite|postgresql|both] [--requests 200000]

Each figure is the median of five runs, in one process, after one warm-up run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from bench import common

YEAR = 2025
STATUSES = ("completed", "completed", "completed", "rejected", "expired", "processing", "failed", "awaiting_verification")
TYPES = ("access", "erasure", "correction")


def seed(url: str, count: int) -> None:
    """`count` requests spread over 2024 and 2025, of every outcome, answered in 0 to 60 days."""
    engine = sa.create_engine(url)
    table = sa.Table("rights_requests", sa.MetaData(), autoload_with=engine)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = []
    naive = url.startswith("sqlite")
    for i in range(count):
        created = start + timedelta(seconds=(i * 7919) % (2 * 365 * 86400))
        status = STATUSES[i % len(STATUSES)]
        finished = created + timedelta(seconds=(i * 104729) % (60 * 86400)) if status in ("completed", "rejected", "expired") else None
        if naive:
            created, finished = created.replace(tzinfo=None), finished and finished.replace(tzinfo=None)
        rows.append(
            {
                "reference": f"PR-{i:09d}",
                "type": TYPES[i % 3],
                "status": status,
                "email_hash": i.to_bytes(32, "big"),
                "created_at": created,
                "created_by": "bench",
                "finished_at": finished,
                "updated_at": created,
            }
        )
    with engine.begin() as conn:
        for chunk in range(0, len(rows), 10_000):
            conn.execute(table.insert(), rows[chunk : chunk + 10_000])
        if not naive:
            conn.execute(sa.text("ANALYZE rights_requests"))
    engine.dispose()


def timed(work) -> float:
    work()
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        work()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def run(backend: str, count: int) -> dict:
    url = common.database_url(backend, "prefs_bench_report")
    common.recreate_database(backend, url)
    common.prefs(url, "db", "upgrade")
    seed(url, count)
    os.environ.update(common.env_for(url))
    from prefs_service import create_app
    from prefs_service.db.scopes import read_only
    from prefs_service.extensions import db
    from prefs_service.rights import report
    from prefs_service.rights.models import RightsRequest as R

    app = create_app()
    starts, ends = report.year_bounds(YEAR)
    in_year = sa.and_(R.created_at >= starts, R.created_at < ends)

    def service():
        with read_only():
            report.request_report(year=YEAR)
            db.session.rollback()

    def floor():
        with read_only():
            db.session.execute(sa.select(R.type, sa.func.count()).where(in_year).group_by(R.type)).all()
            db.session.rollback()

    def in_python():
        with read_only():
            spans = defaultdict(list)
            rows = db.session.execute(sa.select(R.type, R.created_at, R.finished_at).where(in_year, R.status.in_(report.ANSWERED)))
            for type_, created, finished in rows:
                if finished is not None and finished < ends:
                    spans[type_].append((finished - created).total_seconds())
            {t: (statistics.median(s), statistics.fmean(s)) for t, s in spans.items()}
            db.session.rollback()

    with app.app_context():
        received = db.session.scalar(sa.select(sa.func.count()).where(in_year))
        db.session.rollback()
        service_s, floor_s, python_s = timed(service), timed(floor), timed(in_python)
        db.engine.dispose()
    common.report(
        f"yearly request metrics, {backend}, {count:,} requests ({received:,} received in {YEAR})",
        [
            ("figure", "service", "floor (grouped count)", "answered rows loaded into Python"),
            ("milliseconds", f"{service_s * 1000:.1f}", f"{floor_s * 1000:.1f}", f"{python_s * 1000:.1f}"),
        ],
    )
    return {"requests": count, "received_in_year": received, "service_s": service_s, "floor_s": floor_s, "python_s": python_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--requests", type=int, default=200_000)
    args = parser.parse_args()
    results = {b: run(b, args.requests) for b in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend])}
    common.save("request_report", results)


if __name__ == "__main__":
    main()
