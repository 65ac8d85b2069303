"""Register screening benchmark (issue 12): bulk checks of 10,000 phone numbers
with TPS loaded, beside bulk checks of 10,000 email addresses (the floor), in
the same run and the same process.

    .venv/bin/python -m bench.register_checks [--backend sqlite|postgresql|both] [--subjects 100000] [--entries 1000000] [--rounds 5]

Seeds `subjects` people, each with an email (seed_consent: a third granted the
newsletter, a third withdrew) and a UK phone number, half of which TPS lists;
TPS holds `entries` numbers in all. Each round POSTs /v1/consent/check through
the app in-process (the Flask test client, so no network or server noise):
8 batches of 10k emails (the floor), 8 batches of 10k phone numbers (half
held, about half listed) with TPS current, and the same phone batches with
TPS not current (as if never imported), in rotating order. The last two
separate the registers' own cost from the cost of parsing phone numbers.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import time
from datetime import UTC, datetime

import orjson
import sqlalchemy as sa

from bench import common
from prefs_service.registers import partitions

BATCH = 10_000
BATCHES = 8


def phone_of(j: int) -> str:
    """Distinct valid UK (London) numbers: +44 20 7xxx xxxx."""
    return f"+44207{j:07d}"


def seed(backend: str, subjects: int, entries: int, reuse: bool) -> tuple[str, list[bytes]]:
    url = database(backend, subjects, reuse)
    os.environ.update(common.env_for(url))
    from prefs_service import create_app
    from prefs_service.subjects.identifiers import identifier_hashes

    app = create_app()
    with app.app_context():
        # Subject i holds phone_of(2*i + i % 2): even j are listed, so half of them are.
        held = [phone_of(2 * i + i % 2) for i in range(subjects)]
        held_hashes = identifier_hashes("phone", held)
        listed_hashes = identifier_hashes("phone", [phone_of(2 * j) for j in range(entries)])
    now = datetime.now(UTC)
    ids = [f"{i + 1:032x}" for i in range(subjects)]
    if backend == "sqlite":
        import sqlite3

        conn = sqlite3.connect(url.split(":///", 1)[1], isolation_level=None)
        conn.execute("BEGIN")
        conn.execute("DELETE FROM identifiers WHERE kind = 'phone'")
        conn.execute("DELETE FROM register_entries")
        conn.execute("DELETE FROM register_lists")
        stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
        conn.executemany(
            "INSERT INTO identifiers (subject_id, kind, value, value_hash, created_at) VALUES (?, 'phone', ?, ?, ?)",
            zip(ids, held, held_hashes, [stamp] * subjects, strict=True),
        )
        conn.commit()
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM identifiers WHERE kind = 'phone'")
            for table in partitions.tables(cur):  # every list's entries
                cur.execute(f"DROP TABLE {table}")
            cur.execute("DELETE FROM register_lists")
            with cur.copy("COPY identifiers (subject_id, kind, value, value_hash, created_at) FROM STDIN") as copy:
                for sid, number, h in zip(ids, held, held_hashes, strict=True):
                    copy.write_row((sid, "phone", number, h, now))
    return url, listed_hashes


def database(backend: str, subjects: int, reuse: bool) -> str:
    """Its own database (seed_consent's people), not the consent-check benches' one."""
    name = f"prefs_bench_registers_{subjects}"
    url = common.database_url(backend, name)
    marker = common.WORK / f"{backend}-{name}.seeded-with-decisions"  # one seeded before the read model lacks its rows
    if not (reuse and marker.exists()):
        marker.unlink(missing_ok=True)
        common.recreate_database(backend, url)
        common.prefs(url, "db", "upgrade")
        common.seed_consent(backend, url, subjects)
        common.WORK.mkdir(parents=True, exist_ok=True)
        marker.touch()
    return url


def load_tps(backend: str, url: str, hashes: list[bytes]) -> None:
    today = datetime.now(UTC).date()
    now = datetime.now(UTC)
    if backend == "sqlite":
        import sqlite3

        conn = sqlite3.connect(url.split(":///", 1)[1], isolation_level=None)
        conn.execute("BEGIN")
        list_id = conn.execute(
            "INSERT INTO register_lists (register, kind, list_date, status, started_at, finished_at, accepted, rejected, removed, imported_by) "
            "VALUES ('tps', 'full', ?, 'current', ?, ?, ?, 0, 0, 'bench') RETURNING id",
            (today.isoformat(), now.strftime("%Y-%m-%d %H:%M:%S.%f"), now.strftime("%Y-%m-%d %H:%M:%S.%f"), len(hashes)),
        ).fetchone()[0]
        conn.executemany("INSERT INTO register_entries (list_id, key_hash) VALUES (?, ?)", ((list_id, h) for h in sorted(hashes)))
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.close()
        return
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO register_lists (register, kind, list_date, status, started_at, finished_at, accepted, rejected, removed, "
                "imported_by) VALUES ('tps', 'full', %s, 'current', %s, %s, %s, 0, 0, 'bench') RETURNING id",
                (today, now, now, len(hashes)),
            )
            (list_id,) = cur.fetchone()
            partitions.add_empty(cur, list_id)
            with cur.copy("COPY register_entries (list_id, key_hash) FROM STDIN") as copy:
                for h in hashes:
                    copy.write_row((list_id, h))
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE register_entries")


def timed(client, headers: dict, bodies: list[bytes]) -> dict[str, float]:
    """Checks per second over `bodies` (each a 10k bulk check), by the wall
    clock and by this process's CPU time. On a shared machine the wall clock
    mostly measures the other processes; on SQLite the CPU time is the whole
    cost (the database runs in the process), on PostgreSQL it leaves out the server's."""
    wall, cpu = time.perf_counter(), time.process_time()
    for body in bodies:
        response = client.post("/v1/consent/check", data=body, headers=headers, content_type="application/json")
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
    checks = len(bodies) * BATCH
    return {"wall": checks / (time.perf_counter() - wall), "cpu": checks / (time.process_time() - cpu)}


def run(backend: str, subjects: int, entries: int, rounds_wanted: int, reuse: bool) -> dict:
    url, listed_hashes = seed(backend, subjects, entries, reuse)
    key = common.api_key(url, "consent:read")
    os.environ.update(common.env_for(url))
    from prefs_service import create_app
    from prefs_service.registers import screening

    rng = random.Random(12)
    emails = [
        orjson.dumps(
            {"channel": "email", "purpose": "newsletter", "recipients": [common.email_of(rng.randrange(subjects)) for _ in range(BATCH)]}
        )
        for _ in range(BATCHES)
    ]
    # Half the numbers a subject holds, half nobody does; about half of each are listed.
    phones = [
        orjson.dumps(
            {
                "channel": "phone",
                "purpose": "marketing",
                "recipients": [
                    phone_of(2 * rng.randrange(subjects) + rng.randrange(2))
                    if rng.random() < 0.5
                    else phone_of(2 * subjects + rng.randrange(2 * (entries - subjects)))
                    for _ in range(BATCH)
                ],
            }
        )
        for _ in range(BATCHES)
    ]
    headers = {"Authorization": f"Bearer {key}"}
    load_tps(backend, url, listed_hashes)
    app = create_app()
    gc.freeze()  # as wsgi.py does once the app is built
    client = app.test_client()

    def tps(status: str) -> None:
        """Make the loaded TPS list current, or not (as if never imported)."""
        with app.app_context():
            from prefs_service.extensions import db

            db.session.execute(sa.text("UPDATE register_lists SET status = :status WHERE register = 'tps'"), {"status": status})
            db.session.commit()
            screening.forget_current_lists()

    figures = {"email": (emails, "replaced"), "phone": (phones, "replaced"), "phone_tps": (phones, "current")}
    for bodies, status in figures.values():  # warm caches
        tps(status)
        timed(client, headers, bodies[:2])
    # The three take turns, round after round, each round in a rotated order:
    # this machine's speed drifts, and figures measured far apart would mostly measure the drift.
    rounds: list[dict[str, dict[str, float]]] = []
    for number in range(rounds_wanted):
        labels = list(figures)
        labels = labels[number % 3 :] + labels[: number % 3]
        figure = {}
        for label in labels:
            bodies, status = figures[label]
            tps(status)
            figure[label] = timed(client, headers, bodies)
        rounds.append(figure)
    tps("current")
    sample = orjson.loads(client.post("/v1/consent/check", data=phones[0], headers=headers, content_type="application/json").data)
    reasons: dict[str, int] = {}
    for result in sample["results"]:
        reasons[result["reason"]] = reasons.get(result["reason"], 0) + 1
    rows = [("figure (checks/s)", "service", "floor", "ratio / target")]
    results = {}
    for clock in ("wall", "cpu"):
        med = {label: common.median([r[label][clock] for r in rounds]) for label in figures}
        ratio = {
            (a, b): common.median([r[a][clock] / r[b][clock] for r in rounds])
            for a, b in (("phone_tps", "email"), ("phone_tps", "phone"), ("phone", "email"))
        }
        results[clock] = {"medians": med, "ratios": {f"{a}/{b}": v for (a, b), v in ratio.items()}}
        rows += [
            (f"[{clock}] 10k phones, TPS loaded vs 10k emails", f"{med['phone_tps']:,.0f}", f"{med['email']:,.0f}",
             f"{ratio['phone_tps', 'email']:.2f}x  (~1x)"),
            (f"[{clock}] 10k phones, TPS loaded vs no register", f"{med['phone_tps']:,.0f}", f"{med['phone']:,.0f}",
             f"{ratio['phone_tps', 'phone']:.2f}x  (the registers' own cost)"),
            (f"[{clock}] 10k phones, no register vs 10k emails", f"{med['phone']:,.0f}", f"{med['email']:,.0f}",
             f"{ratio['phone', 'email']:.2f}x  (number parsing)"),
        ]  # fmt: skip
    rows.append(("answers of one phone batch", ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())), "", ""))
    common.report(
        f"register screening, {backend}, {subjects:,} subjects, TPS {entries:,} entries, in-process POST /v1/consent/check, "
        f"{BATCHES} x 10k per figure, median of {rounds_wanted} rotating rounds",
        rows,
    )
    return {**results, "reasons": reasons}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="reuse the seeded consent database of an earlier run")
    args = parser.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    results = {b: run(b, args.subjects, args.entries, args.rounds, args.reuse) for b in backends}
    common.save("register_checks", results)


if __name__ == "__main__":
    main()
