"""Access-export benchmark (issue 4): a subject with 100,000 consent events (and,
once orders exist, 10,000 orders), exported by the real job code in a child
process; time and peak memory beside a raw floor (the same rows streamed with
plain SQL into a ZIP of JSON and CSV) measured in the same run.

    .venv/bin/python -m bench.export [--backend sqlite|postgresql|both] [--events 100000] [--orders 10000]

Targets: under 5 s and under 200 MB peak.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from bench import common

SUBJECT = uuid.UUID(int=424242)

SERVICE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from prefs_service import create_app
    from prefs_service.extensions import db
    from prefs_service.db import scopes
    from prefs_service.rights import work
    from prefs_service.rights.models import RightsRequest
    app = create_app()
    with app.app_context():
        request_id = db.session.query(RightsRequest.id).filter_by(reference="PR-BENC-H001").scalar()
        started = time.perf_counter()
        with scopes.read_only():
            written = work.write_export_file(request_id=request_id)
        print(time.perf_counter() - started, written)
    print(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")))
    """
)

FLOOR = textwrap.dedent(
    """
    import csv, io, sys, time, zipfile, orjson
    import sqlalchemy as sa
    url, subject, out = sys.argv[1], sys.argv[2], sys.argv[3]
    engine = sa.create_engine(url)
    sections = {
        "consent_history": "SELECT id, channel, purpose, status, source, occurred_at, recorded_at, policy_version, evidence_ip, "
                           "evidence_user_agent, evidence_note FROM consent_events WHERE subject_id = :s ORDER BY id",
        "orders": "SELECT reference, status, plan, amount, currency, partner_code, created_at, paid_at, system_name, system_url, "
                  "billing_name, billing_address FROM orders WHERE subject_id = :s ORDER BY id",
    }
    started = time.perf_counter()
    with engine.connect() as conn, zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("data.json", "w", force_zip64=True) as handle:
            handle.write(b"{")
            for number, (name, query) in enumerate(sections.items()):
                handle.write((b"," if number else b"") + b'"' + name.encode() + b'":[')
                result = conn.execution_options(yield_per=2000).execute(sa.text(query), {"s": subject})
                names = list(result.keys())
                for index, row in enumerate(result):
                    handle.write((b"," if index else b"") + orjson.dumps(dict(zip(names, row)), default=str))
                handle.write(b"]")
            handle.write(b"}")
        for name, query in sections.items():
            with archive.open(f"{name}.csv", "w", force_zip64=True) as raw:
                text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
                writer = csv.writer(text)
                result = conn.execution_options(yield_per=2000).execute(sa.text(query), {"s": subject})
                writer.writerow(result.keys())
                for row in result:
                    writer.writerow(row)
                text.flush()
                text.detach()
    print(time.perf_counter() - started, out)
    print(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")))
    """
)


def seed(backend: str, url: str, events: int, orders: int) -> None:
    engine = sa.create_engine(url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        subject_id = SUBJECT.hex if backend == "sqlite" else SUBJECT
        conn.execute(sa.text("INSERT INTO subjects (id, name, created_at, updated_at) VALUES (:id, 'Bench Person', :now, :now)"),
                     {"id": subject_id, "now": now})  # fmt: skip
        rows = [
            {"s": subject_id, "st": ("granted", "withdrawn")[i % 2], "p": ("newsletter", "offers", "product_updates")[i % 3],
             "now": now, "ip": f"203.0.{i % 250}.0/24", "ua": "Mozilla/5.0 (X11; Linux x86_64) Bench", "note": f"event {i}"}
            for i in range(events)
        ]  # fmt: skip
        conn.execute(
            sa.text(
                "INSERT INTO consent_events (subject_id, channel, purpose, status, source, occurred_at, recorded_at, evidence_ip, "
                "evidence_user_agent, evidence_note, recorded_by) VALUES (:s, 'email', :p, :st, 'import', :now, :now, :ip, :ua, :note, 'bench')"
            ),
            rows,
        )
        conn.execute(
            sa.text(
                "INSERT INTO orders (reference, subject_id, status, plan, amount, currency, billing_name, billing_address, "
                "created_at, paid_at, updated_at) VALUES (:ref, :s, 'delivered', 'crm-standard', 4900, 'gbp', 'Bench Person', "
                "'1 High Street, Springfield, AB1 2CD, GB', :now, :now, :now)"
            ),
            [{"ref": f"ORD-{i:08d}", "s": subject_id, "now": now} for i in range(orders)],
        )
        conn.execute(
            sa.text(
                "INSERT INTO rights_requests (reference, type, status, subject_id, email, email_hash, created_at, created_by, updated_at) "
                "VALUES ('PR-BENC-H001', 'access', 'processing', :s, 'bench@example.com', :h, :now, 'bench', :now)"
            ),
            {"s": subject_id, "h": b"\0" * 32, "now": now},
        )
    engine.dispose()


def child(args: list[str], env: dict) -> tuple[float, float]:
    """Run a child; returns (seconds it reported, its peak RSS in MB). The child
    reads its own high-water mark (VmHWM), which starts afresh at exec."""
    result = subprocess.run([sys.executable, "-c", *args], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    words = result.stdout.split()
    return float(words[0]), int(words[-1]) / 1024


def run(backend: str, events: int, orders: int) -> dict:
    url = common.database_url(backend, "prefs_bench_export")
    common.recreate_database(backend, url)
    common.prefs(url, "db", "upgrade")
    seed(backend, url, events, orders)
    export_dir = common.WORK / "exports"
    env = {**common.env_for(url, PREFS_EXPORT_DIR=str(export_dir)), "PYTHONPATH": str(common.ROOT)}
    floor_s, floor_mb = child([FLOOR, url, SUBJECT.hex if backend == "sqlite" else str(SUBJECT), str(common.WORK / "floor.zip")], env)
    _, idle_mb = child(
        [
            "from prefs_service import create_app; create_app(); print(0); "
            "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))"
        ],
        env,
    )
    service_s, service_mb = child([SERVICE], env)
    archive = export_dir / "PR-BENC-H001.zip"
    size_mb = archive.stat().st_size / 1e6
    common.report(
        f"access export, {backend}, {events:,} consent events and {orders:,} orders",
        [
            ("figure", "service", "floor", "target"),
            ("seconds", f"{service_s:.2f}", f"{floor_s:.2f}", "< 5 s"),
            ("peak RSS of the process (MB)", f"{service_mb:.0f}", f"{floor_mb:.0f}", "< 200 MB"),
            ("RSS of the app doing nothing (MB)", f"{idle_mb:.0f}", "", ""),
            ("archive size (MB)", f"{size_mb:.1f}", f"{(common.WORK / 'floor.zip').stat().st_size / 1e6:.1f}", ""),
        ],
    )
    return {"service_s": service_s, "service_peak_mb": service_mb, "floor_s": floor_s, "floor_peak_mb": floor_mb, "idle_mb": idle_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=10_000)
    args = parser.parse_args()
    results = {b: run(b, args.events, args.orders) for b in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend])}
    common.save("export", results)


if __name__ == "__main__":
    main()
