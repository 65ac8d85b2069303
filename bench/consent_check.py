"""Consent-check benchmark (issue 2): single and bulk checks against 1M subjects,
each figure printed beside a raw floor measured in the same run.

    .venv/bin/python -m bench.consent_check [--backend sqlite|postgresql|both] [--subjects 1000000] [--reuse] [--rounds 3]

Needs wrk (apt-get install wrk) and, for PostgreSQL, the server at BENCH_POSTGRES_URL
(default postgresql://postgres@127.0.0.1:5432/postgres). Targets: single ≥ 0.7× floor
with p99 < 10 ms; bulk ≥ 0.6× floor; 1M recipients end to end in < 5 s.
"""

from __future__ import annotations

import argparse
import random

import orjson

from bench import common

BATCH = 10_000


def run(backend: str, subjects: int, reuse: bool, seconds: int, rounds_wanted: int) -> dict:
    url = common.check_database(backend, subjects, reuse)
    key = common.api_key(url, "consent:read")
    env = common.env_for(url, PREFS_API_KEY_CACHE_SECONDS="30")
    floor_env = {**env, "BENCH_DATABASE_URL": url, "BENCH_IDENTIFIER_KEY": common.IDENTIFIER_KEY}
    query = "?channel=email&purpose=newsletter&email="
    rng = random.Random(7)
    bulk_bodies = [
        {"channel": "email", "purpose": "newsletter", "recipients": [common.email_of(rng.randrange(subjects)) for _ in range(BATCH)]}
        for _ in range(8)
    ]
    everyone = [common.email_of(i) for i in range(subjects)]
    rng.shuffle(everyone)
    million = [orjson.dumps({"channel": "email", "purpose": "newsletter", "recipients": everyone[i : i + BATCH]})
               for i in range(0, len(everyone), BATCH)]  # fmt: skip

    targets = {
        "floor": ("bench.floor_app:create_app()", "/check", "", floor_env),
        "service": (common.SERVICE, "/v1/consent/check", f"Bearer {key}", env),
    }
    # Floor and service take turns, round after round: this machine's speed
    # drifts by tens of percent within minutes, and a ratio of two figures
    # measured far apart would mostly measure the drift.
    rounds: dict[str, list[dict]] = {"floor": [], "service": []}
    for number in range(rounds_wanted):
        order = list(targets.items()) if number % 2 == 0 else list(reversed(targets.items()))  # neither always goes first
        for label, (target, path, auth, env_) in order:
            headers = {"Authorization": auth} if auth else {}
            with common.gunicorn(target, env_) as base:
                common.wrk_single(base, path + query, subjects, auth=auth, seconds=3)  # warm caches
                single = common.wrk_single(base, path + query, subjects, auth=auth, seconds=seconds)
                common.post_json(base, path, bulk_bodies[:2], headers=headers)  # warm
                bulk_seconds, _ = common.post_json(base, path, bulk_bodies * 2, headers=common.spread(headers), concurrency=2)
                end_to_end, responses = common.post_json(base, path, million, headers=common.spread(headers), concurrency=4)
            checked = sum(len(orjson.loads(body)["results"]) for _, body in responses)
            assert checked == subjects, (checked, subjects)
            rounds[label].append({
                "single_rps": single["rps"],
                "single_p50_ms": single["p50_ms"],
                "single_p99_ms": single["p99_ms"],
                "single_errors": single["errors"],
                "bulk_checks_per_s": len(bulk_bodies) * 2 * BATCH / bulk_seconds,
                "all_recipients_s": end_to_end,
            })  # fmt: skip
    figures = {label: common.medians(runs) for label, runs in rounds.items()}
    s, f = figures["service"], figures["floor"]
    single_ratios = common.ratios(rounds, "single_rps")
    bulk_ratios = common.ratios(rounds, "bulk_checks_per_s")
    common.report(
        f"consent checks, {backend}, {subjects:,} subjects, gunicorn 2 workers (gthread, 4 threads), wrk 16 connections, "
        f"median of {rounds_wanted} alternating rounds",
        [
            ("figure", "service", "floor", "ratio / target"),
            ("single checks (req/s)", f"{s['single_rps']:,.0f}", f"{f['single_rps']:,.0f}", f"{common.median(single_ratios):.2f}x  (>= 0.7x)"),
            ("single p50 (ms)", f"{s['single_p50_ms']:.2f}", f"{f['single_p50_ms']:.2f}", ""),
            ("single p99 (ms)", f"{s['single_p99_ms']:.2f}", f"{f['single_p99_ms']:.2f}", "(< 10 ms)"),
            ("bulk, 10k per call (checks/s)", f"{s['bulk_checks_per_s']:,.0f}", f"{f['bulk_checks_per_s']:,.0f}",
             f"{common.median(bulk_ratios):.2f}x  (>= 0.6x)"),
            (f"{subjects:,} recipients end to end (s)", f"{s['all_recipients_s']:.2f}", f"{f['all_recipients_s']:.2f}", "(< 5 s for 1M)"),
        ],
    )  # fmt: skip
    print(
        f"  single-check ratio per round: {', '.join(f'{r:.2f}' for r in single_ratios)}; bulk: {', '.join(f'{r:.2f}' for r in bulk_ratios)}"
    )
    if any(r["single_errors"] for runs in rounds.values() for r in runs):
        print("  note: wrk reported errors or non-2xx answers; see bench/results")
    return {"median": figures, "rounds": rounds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument("--reuse", action="store_true", help="reuse a database seeded by an earlier run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating floor/service rounds; medians are reported")
    args = parser.parse_args()
    results = {}
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        results[backend] = run(backend, args.subjects, args.reuse, args.seconds, args.rounds)
    common.save("consent_check", results)


if __name__ == "__main__":
    main()
