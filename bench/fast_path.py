"""The fast path (prefs_service/db/fast.py) against plain SQLAlchemy Core
(bench/core_path.py), on the consent-check and one-click benches, in the same
run, round after round. The issue's rule: if Core comes within 15% of the fast
path on every figure, the fast path goes.

    .venv/bin/python -m bench.fast_path [--backend sqlite|postgresql|both] [--subjects 1000000] [--reuse] [--rounds 3]
"""

from __future__ import annotations

import argparse
import random

import orjson

from bench import common, one_click

TARGETS = {"fast path": common.SERVICE, "Core path": "bench.core_path:create_app()"}
BATCH = 10_000
FIGURES = {
    "single_rps": ("single checks (req/s)", "{:,.0f}"),
    "single_p99_ms": ("single p99 (ms)", "{:.2f}"),
    "bulk_checks_per_s": ("bulk, 10k per call (checks/s)", "{:,.0f}"),
    "withdrawals_per_s": ("one-click withdrawals per second", "{:,.0f}"),
    "mint_per_s": ("links minted per second", "{:,.0f}"),
}
LOWER_IS_BETTER = {"single_p99_ms"}


def checks(url: str, subjects: int, seconds: int, label: str) -> dict:
    key = common.api_key(url, "consent:read")
    env = common.env_for(url, PREFS_API_KEY_CACHE_SECONDS="30")
    rng = random.Random(7)
    bodies = [
        orjson.dumps(
            {"channel": "email", "purpose": "newsletter", "recipients": [common.email_of(rng.randrange(subjects)) for _ in range(BATCH)]}
        )
        for _ in range(8)
    ]
    headers = {"Authorization": f"Bearer {key}"}
    path = "/v1/consent/check"
    with common.gunicorn(TARGETS[label], env) as base:
        common.wrk_single(base, path + "?channel=email&purpose=newsletter&email=", subjects, auth=f"Bearer {key}", seconds=3)
        single = common.wrk_single(base, path + "?channel=email&purpose=newsletter&email=", subjects, auth=f"Bearer {key}", seconds=seconds)
        common.post_json(base, path, bodies[:2], headers=headers)
        bulk_seconds, _ = common.post_json(base, path, bodies * 2, headers=common.spread(headers), concurrency=2)
    return {"single_rps": single["rps"], "single_p99_ms": single["p99_ms"], "bulk_checks_per_s": len(bodies) * 2 * BATCH / bulk_seconds}


def run(backend: str, subjects: int, reuse: bool, seconds: int, rounds_wanted: int, requests: int) -> dict:
    url = common.check_database(backend, subjects, reuse)
    rounds: dict[str, list[dict]] = {label: [] for label in TARGETS}
    for number in range(rounds_wanted):
        order = list(TARGETS) if number % 2 == 0 else list(reversed(TARGETS))
        for label in order:
            figures = checks(url, subjects, seconds, label)
            clicks = one_click.one_round(backend, requests, "service", TARGETS[label])
            rounds[label].append({**figures, "withdrawals_per_s": clicks["withdrawals_per_s"], "mint_per_s": clicks["mint_per_s"]})
    medians = {label: common.medians(runs) for label, runs in rounds.items()}
    rows = [("figure", "fast path", "Core path", "Core / fast")]
    verdicts = []
    for figure, (title, fmt) in FIGURES.items():
        fast, core = medians["fast path"][figure], medians["Core path"][figure]
        ratio = core / fast
        worse = ratio > 1.15 if figure in LOWER_IS_BETTER else ratio < 0.85
        verdicts.append(worse)
        rows.append((title, fmt.format(fast), fmt.format(core), f"{ratio:.2f}x" + ("  (more than 15% worse)" if worse else "")))
    common.report(
        f"fast path against plain Core, {backend}, {subjects:,} subjects, gunicorn 2 workers, median of {rounds_wanted} alternating rounds",
        rows,
    )
    print(f"  verdict: {'keep the fast path' if any(verdicts) else 'Core is within 15% on every figure: the fast path can go'}")
    return {"median": medians, "rounds": rounds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=10_000, help="one-click links per round")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--reuse", action="store_true", help="reuse a check database seeded by an earlier run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results = {}
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        results[backend] = run(backend, args.subjects, args.reuse, args.seconds, args.rounds, args.requests)
    common.save("fast_path", results)


if __name__ == "__main__":
    main()
