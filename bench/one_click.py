"""One-click unsubscribe benchmark (issue 3): RFC 8058 POSTs, each a durable
withdrawal, beside a raw floor (verify the token, write the event and the state
with plain SQL) measured in the same run.

    .venv/bin/python -m bench.one_click [--backend sqlite|postgresql|both] [--requests 10000] [--rounds 3]

Target: at least 1,000 withdrawals per second on each backend, and exactly one
ledger withdrawal per acknowledged state change.
"""

from __future__ import annotations

import argparse
import os
import uuid
from urllib.parse import urlsplit

import sqlalchemy as sa

from bench import common

CONCURRENCY = 16
# Each client opens a new connection every 50 requests, so that both gunicorn
# workers serve the load: kept-alive connections were often all accepted by
# one worker (bench/ledger.py measured it from the workers' CPU).
PER_CONNECTION = common.PER_CONNECTION
BODY = b"List-Unsubscribe=One-Click"


def prepare(backend: str, count: int) -> tuple[str, list[str]]:
    """A fresh database with `count` subscribers and one unsubscribe path each."""
    url = common.database_url(backend, "prefs_bench_one_click")
    common.recreate_database(backend, url)
    common.prefs(url, "db", "upgrade")
    common.seed_consent(backend, url, count * 3)  # i % 3 == 0 are granted: `count` subscribers
    os.environ.update(common.env_for(url))
    from prefs_service import create_app, links

    app = create_app()
    with app.app_context():
        paths = [urlsplit(links.unsubscribe_url(uuid.UUID(int=i + 1), "email", "newsletter")).path for i in range(0, count * 3, 3)]
    return url, paths


def ledger_counts(url: str) -> tuple[int, int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        events = conn.execute(sa.text("SELECT count(*) FROM consent_events WHERE source = 'one_click' AND status = 'withdrawn'")).scalar()
        states = conn.execute(sa.text("SELECT count(*) FROM consent_state WHERE source = 'one_click' AND status = 'withdrawn'")).scalar()
    engine.dispose()
    return events, states


def run(backend: str, requests: int, rounds_wanted: int) -> dict:
    # Floor and service take turns, each on a fresh database, round after round
    # (this machine's speed drifts within minutes); medians are reported.
    rounds: dict[str, list[dict]] = {"floor": [], "service": []}
    targets = [("floor", "bench.floor_app:create_app()"), ("service", common.SERVICE)]
    for number in range(rounds_wanted):
        for label, target in targets if number % 2 == 0 else reversed(targets):  # neither always goes first
            rounds[label].append(one_round(backend, requests, label, target))
    figures = {label: common.medians(runs) for label, runs in rounds.items()}
    s, f = figures["service"], figures["floor"]
    withdrawal_ratios = common.ratios(rounds, "withdrawals_per_s")
    common.report(
        f"one-click unsubscribe, {backend}, {requests:,} distinct links, {CONCURRENCY} concurrent clients, gunicorn 2 workers, "
        f"median of {rounds_wanted} alternating rounds",
        [
            ("figure", "service", "floor", "ratio / target"),
            ("withdrawals per second", f"{s['withdrawals_per_s']:,.0f}", f"{f['withdrawals_per_s']:,.0f}",
             f"{common.median(withdrawal_ratios):.2f}x  (>= 1,000/s)"),
            ("acknowledged (200)", f"{s['acknowledged']:,.0f}", f"{f['acknowledged']:,.0f}", ""),
            ("ledger withdrawals", f"{s['ledger_withdrawals']:,.0f}", f"{f['ledger_withdrawals']:,.0f}", "(= acknowledged)"),
            ("states withdrawn", f"{s['withdrawn_states']:,.0f}", f"{f['withdrawn_states']:,.0f}", "(= acknowledged)"),
            ("repeat clicks per second (no change)", f"{s['repeats_per_s']:,.0f}", f"{f['repeats_per_s']:,.0f}", ""),
            ("links minted per second (16 conns)", f"{s['mint_per_s']:,.0f}", f"{f['mint_per_s']:,.0f}",
             f"{common.median(common.ratios(rounds, 'mint_per_s')):.2f}x"),
            ("mint p99 (ms)", f"{s['mint_p99_ms']:.1f}", f"{f['mint_p99_ms']:.1f}", ""),
        ],
    )  # fmt: skip
    by_round = {label: ", ".join(f"{r['withdrawals_per_s']:,.0f}" for r in runs) for label, runs in rounds.items()}
    print(f"  withdrawals per second by round, service: {by_round['service']}; floor: {by_round['floor']}")
    exact = all(r["acknowledged"] == r["ledger_withdrawals"] == r["withdrawn_states"] == requests for r in rounds["service"])
    print(f"  exactly one ledger withdrawal per acknowledged change, every round: {'yes' if exact else 'NO'}")
    if any(r["mint_errors"] for runs in rounds.values() for r in runs):
        print("  note: wrk saw errors or non-2xx answers while minting")
    return {"median": figures, "rounds": rounds}


def one_round(backend: str, requests: int, label: str, target: str) -> dict:
    url, paths = prepare(backend, requests)
    env = {
        **common.env_for(url),
        "BENCH_DATABASE_URL": url,
        "BENCH_IDENTIFIER_KEY": common.IDENTIFIER_KEY,
        "BENCH_SECRET_KEY": common.SECRET_KEY,
    }
    key = common.api_key(url, "consent:write") if label == "service" else ""
    with common.gunicorn(target, env) as base:
        mint_path = "/v1/unsubscribe-links" if key else "/unsubscribe-links"
        minted = common.wrk_mint(base, mint_path, requests, auth=f"Bearer {key}" if key else "")
        seconds, responses = common.post_form(base, paths, BODY, concurrency=CONCURRENCY, per_connection=PER_CONNECTION)
        acknowledged = sum(1 for status, _ in responses if status == 200)
        repeat_seconds, repeats = common.post_form(
            base, paths[: requests // 4], BODY, concurrency=CONCURRENCY, per_connection=PER_CONNECTION
        )
    events, states = ledger_counts(url)
    return {
        "withdrawals_per_s": acknowledged / seconds,  # an error answer is no withdrawal
        "acknowledged": acknowledged,
        "ledger_withdrawals": events,
        "withdrawn_states": states,
        "repeats_acknowledged": sum(1 for status, _ in repeats if status == 200),
        "repeats_per_s": sum(1 for status, _ in repeats if status == 200) / repeat_seconds,
        "mint_per_s": minted["rps"],
        "mint_p99_ms": minted["p99_ms"],
        "mint_errors": minted["errors"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating floor/service rounds; medians are reported")
    args = parser.parse_args()
    results = {b: run(b, args.requests, args.rounds) for b in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend])}
    common.save("one_click", results)


if __name__ == "__main__":
    main()
