"""Screening bench (issue 14): bulk checks, a whole list end to end, single
checks and latency at a fixed arrival rate, each beside the limit floor
(bench/limit_floor_app.py) measured in the same run on the same data.

    .venv/bin/python -m bench.screening [--backend sqlite|postgresql|both] [--subjects 1000000] [--rounds 3] [--seconds 10]
                                        [--threads 4] [--reuse]

Seeds `subjects` people (common.seed_consent; --reuse keeps an earlier run's,
shared with bench.consent_check), rebuilds the service's read model when main
has `prefs screening rebuild`, and builds the floor's ideal table from the same
rows. Each round starts the service and the floor under gunicorn (2 workers,
gthread, --threads each, 4 unless told) side by side and measures, taking turns
(the order flips every round: this machine's speed drifts within minutes):

1. bulk, 10k per call: 16 POSTs /v1/consent/check, 2 at a time, each on a new connection; target >= 0.6x the floor;
2. every person once, shuffled, end to end: through POST /v1/consent/screen (one
   CSV body sent from a file, the answer read as it streams) and through 100 x 10k
   bulk calls, 4 at a time, each on a new connection; targets for 1M < 5 s on SQLite, < 10 s on
   PostgreSQL (scaled to --subjects), with the service's peak RSS (its workers'
   VmRSS summed, sampled every 10 ms) < 200 MB, printed with the workers' memory
   fresh and before the run. Measured first, after a short warm-up (one bulk call
   a worker), so that the peak is not what the other figures left behind. The
   answers are checked: /screen answers every line and allows as many as the
   bulk calls, and the floor allows as many as the service;
3. single checks (wrk, 16 connections, random people); target >= 0.7x the floor's single probe;
4. latency at a fixed arrival rate (bench/open_loop.py, open loop) at 25% and 50%
   of the service's single-check maximum of the same round, service and floor at
   the same rates: p50, p99, p99.9; target p99 < 10 ms at 50%. Threads of one
   worker share its interpreter lock, so queued checks wait on each other's
   turns: with --threads 1 the tail of both servers is shorter (README,
   "Threads and the latency of single checks").

Needs wrk (apt-get install wrk) and, for PostgreSQL, the server at
BENCH_POSTGRES_URL. Results: bench/results/screening.json (screening-threadsN.json
with --threads N other than 4).
"""

from __future__ import annotations

import argparse
import http.client
import random
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path

import orjson

from bench import common, limit_floor_app, open_loop

BATCH = 10_000
BULK_CALLS = 8
QUERY = "channel=email&purpose=newsletter"
TARGET_E2E_S = {"sqlite": 5.0, "postgresql": 10.0}  # for 1M recipients
TARGET_RSS_MB = 200.0
TARGET_BULK, TARGET_SINGLE, TARGET_P99_MS = 0.6, 0.7, 10.0
THREADS = 4  # gunicorn threads a worker unless --threads says otherwise


def rebuild_read_model(url: str) -> None:
    """Rows written behind the service's back: rebuild its read model, if this
    checkout has one (`prefs screening rebuild`)."""
    env = common.env_for(url)
    if subprocess.run([str(common.BIN / "prefs"), "screening", "--help"], env=env, capture_output=True).returncode != 0:
        print("  (no `prefs screening rebuild` in this checkout: nothing to rebuild)", flush=True)
        return
    started = time.perf_counter()
    common.prefs(url, "screening", "rebuild")
    print(f"  rebuilt the service's read model in {time.perf_counter() - started:.1f}s", flush=True)


ODD_ADDRESSES = [
    " Jane.Doe@Example.COM ", "user+tag@sub.example.co.uk", "a@b.c", "x@localhost", "user@example.test", "user@ex--ample.com",
    "üser@exämple.de", "user@xn--exmple-cua.de", '"quoted local"@example.com', "a" * 65 + "@example.com", "no-at-sign",
    "user@@example.com", "user@example", "", "user@exa_mple.com", "user.@example.com",
]  # fmt: skip


def same_normalisation() -> None:
    """The floor's copy of the email channel's normalisation agrees with the service's."""
    from prefs_service.channels import InvalidIdentifier
    from prefs_service.channels import normalize as service_normalize

    for value in ODD_ADDRESSES:
        answers = []
        for normalize in (lambda v: service_normalize("email", v), limit_floor_app.normalize):
            try:
                answers.append(normalize(value))
            except (ValueError, InvalidIdentifier):
                answers.append(None)
        assert answers[0] == answers[1], f"the floor normalises {value!r} as {answers[1]!r}, the service as {answers[0]!r}"


def screen_csv(base_url: str, csv_path: Path, key: str) -> tuple[float, int, int]:
    """POST the CSV file to /v1/consent/screen and read the streamed answer;
    (seconds, answer lines after the header, allowed)."""
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=300, blocksize=1 << 20)
    headers = {"Content-Type": "text/csv", "Authorization": f"Bearer {key}", "Content-Length": str(csv_path.stat().st_size)}
    started = time.perf_counter()
    with csv_path.open("rb") as body:
        conn.request("POST", f"/v1/consent/screen?{QUERY}", body=body, headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"/v1/consent/screen answered {response.status}: {response.read(500)!r}")
        lines = allowed = 0
        tail = b""
        while block := response.read(1 << 20):
            block = tail + block
            cut = block.rfind(b"\n") + 1
            lines += block.count(b"\n", 0, cut)
            allowed += block.count(b",true,", 0, cut)
            tail = block[cut:]
    seconds = time.perf_counter() - started
    conn.close()
    return seconds, lines - 1, allowed  # less the header row


def allowed_in(responses: list) -> int:
    return sum(r["allowed"] for _, body in responses for r in orjson.loads(body)["results"])


def measure_round(number: int, servers: dict, data: dict, seconds: int) -> dict[str, dict]:
    """One round: every figure for the floor and the service, taking turns.

    The whole list goes first, after a short warm-up, so that the workers' peak
    memory is the list's (and the warm-up's), not what the other figures left
    behind; the workers' memory when fresh and before each run is kept too."""
    order = ["floor", "service"] if number % 2 == 0 else ["service", "floor"]
    figures: dict[str, dict] = {label: {"rss_fresh_mb": open_loop.rss_mb(open_loop.workers_of(servers[label][0].pid))} for label in order}
    subjects = data["subjects"]
    for label in order:  # warm caches (a service worker's first 10k check, bulk or screened, grows it by 70-90 MB, which stays)
        base, path, auth = servers[label]
        common.wrk_single(base, f"{path}?{QUERY}&email=", subjects, auth=auth, seconds=2)
        common.post_json(base, path, data["bulk"][:2], headers=_headers(auth))  # one to each worker
    for label in order:
        base, path, auth = servers[label]
        if label == "service":
            with open_loop.PeakRss(base.pid) as rss:
                took, lines, allowed_screened = screen_csv(base, data["csv"], data["key"])
            assert lines == subjects, f"/v1/consent/screen answered {lines:,} lines for {subjects:,} recipients"
            figures[label].update(e2e_screen_s=took, rss_screen_before_mb=rss.before, rss_screen_peak_mb=rss.peak)
        with open_loop.PeakRss(base.pid) as rss:
            took, responses = common.post_json(base, path, data["million"], headers=common.spread(_headers(auth)), concurrency=4)
        assert sum(len(orjson.loads(body)["results"]) for _, body in responses) == subjects
        allowed = allowed_in(responses)
        figures[label].update(e2e_bulk_s=took, rss_bulk_before_mb=rss.before, rss_bulk_peak_mb=rss.peak, allowed=allowed)
        if label == "service":
            assert allowed_screened == allowed, f"screening allowed {allowed_screened:,}, the bulk checks {allowed:,}"
    floor_allowed, service_allowed = figures["floor"]["allowed"], figures["service"]["allowed"]
    assert floor_allowed == service_allowed, f"the floor allowed {floor_allowed:,}, the service {service_allowed:,}"
    for label in order:
        base, path, auth = servers[label]
        took, _ = common.post_json(base, path, data["bulk"] * 2, headers=common.spread(_headers(auth)), concurrency=2)
        figures[label].update(bulk_checks_per_s=2 * BULK_CALLS * BATCH / took, bulk_ms_per_call=took / (2 * BULK_CALLS) * 1000)
    for label in order:
        base, path, auth = servers[label]
        single = common.wrk_single(base, f"{path}?{QUERY}&email=", subjects, auth=auth, seconds=seconds)
        figures[label].update(single_rps=single["rps"], single_errors=single["errors"])
    maximum = figures["service"]["single_rps"]
    for share in (25, 50):
        for label in order:
            base, path, auth = servers[label]
            paths = [f"{path}?{QUERY}&email={email}" for email in data["single"]]
            result = open_loop.run(base, paths, rate=maximum * share / 100, seconds=seconds, headers=_headers(auth))
            figures[label].update({f"lat{share}_{k}": v for k, v in result.items()})
    return figures


def _headers(auth: str) -> dict:
    return {"Authorization": auth} if auth else {}


def rows_for(backend: str, s: dict, f: dict, subjects: int, bulk_ratio: float, single_ratio: float) -> list[tuple[str, str, str, str]]:
    """The table's rows: each figure, the service's, the floor's, and how it fares."""
    scale = subjects / 1_000_000
    e2e_target = TARGET_E2E_S[backend] * scale
    target_note = f"< {TARGET_E2E_S[backend]:g} s for 1M" + ("" if scale == 1 else f", {e2e_target:.2f} s for {subjects:,}")
    rows = [("figure", "service", "limit floor", "ratio / target")]

    def ratio_row(name: str, key: str, ratio: float, target: float, unit: str) -> None:
        verdict = "ok" if ratio >= target else f"MISSED: {s[key]:,.0f} vs the floor's {f[key]:,.0f} {unit}"
        if key == "bulk_checks_per_s" and ratio < target:
            verdict += f" ({s['bulk_ms_per_call']:.0f} ms a call vs {f['bulk_ms_per_call']:.0f} ms)"
        rows.append((name, f"{s[key]:,.0f}", f"{f[key]:,.0f}", f"{ratio:.2f}x (>= {target}x) {verdict}"))

    def e2e_row(name: str, took: float) -> None:
        verdict = "ok" if took < e2e_target else (
            f"MISSED: {subjects / took:,.0f} recipients/s; the floor does {subjects / f['e2e_bulk_s']:,.0f}/s "
            f"({f['e2e_bulk_s']:.2f} s{', itself over the target' if f['e2e_bulk_s'] >= e2e_target else ''})"
        )  # fmt: skip
        rows.append((name, f"{took:.2f}", f"{f['e2e_bulk_s']:.2f}", f"({target_note}) {verdict}"))

    def rss_row(name: str, run: str) -> None:
        peak, before = s[f"rss_{run}_peak_mb"], s[f"rss_{run}_before_mb"]
        memory = f"fresh {s['rss_fresh_mb']:.0f} MB, {before:.0f} MB before, +{peak - before:.0f} MB during it"
        verdict = "ok" if peak < TARGET_RSS_MB else (
            f"MISSED; the floor's workers: fresh {f['rss_fresh_mb']:.0f} MB, peak {f['rss_bulk_peak_mb']:.0f} MB"
        )  # fmt: skip
        rows.append((name, f"{peak:.0f}", f"{f['rss_bulk_peak_mb']:.0f}", f"(< {TARGET_RSS_MB:.0f} MB) {memory}; {verdict}"))

    def latency_row(share: int) -> None:
        p = f"lat{share}_"
        cell = "{p50_ms:.2f} / {p99_ms:.2f} / {p999_ms:.2f}"
        service = cell.format(**{k.removeprefix(p): v for k, v in s.items() if k.startswith(p)})
        floor = cell.format(**{k.removeprefix(p): v for k, v in f.items() if k.startswith(p)})
        note = f"at {s[p + 'rate']:,.0f} req/s (achieved {s[p + 'achieved']:,.0f}, {s[p + 'late']:.0f} sent late)"
        if share == 50:
            if s[p + "p99_ms"] < TARGET_P99_MS:
                note += " (p99 < 10 ms) ok"
            else:
                note += f" (p99 < 10 ms) MISSED: the floor's p99 at the same rate is {f[p + 'p99_ms']:.2f} ms"
                if s[p + "errors"]:
                    note += f"; {s[p + 'errors']:.0f} answers not 2xx"
        rows.append((f"latency at {share}% of max, p50 / p99 / p99.9 (ms)", service, floor, note))

    ratio_row("bulk, 10k per call (checks/s)", "bulk_checks_per_s", bulk_ratio, TARGET_BULK, "checks/s")
    e2e_row(f"{subjects:,} via /v1/consent/screen (s)", s["e2e_screen_s"])
    e2e_row(f"{subjects:,} via {subjects // BATCH} x 10k bulk (s)", s["e2e_bulk_s"])
    rss_row("peak RSS during /screen (MB, workers)", "screen")
    rss_row("peak RSS during 10k calls (MB, workers)", "bulk")
    ratio_row("single checks (req/s)", "single_rps", single_ratio, TARGET_SINGLE, "req/s")
    latency_row(25)
    latency_row(50)
    return rows


def run(backend: str, subjects: int, rounds_wanted: int, seconds: int, reuse: bool, threads: int = THREADS) -> dict:
    assert subjects % BATCH == 0, "--subjects must be a multiple of 10,000"
    same_normalisation()
    url = common.check_database(backend, subjects, reuse)
    rebuild_read_model(url)
    rows, took = limit_floor_app.build_table(url)
    print(f"  built the limit floor's table ({rows:,} rows) in {took:.1f}s", flush=True)
    key = common.api_key(url, "consent:read")
    env = common.env_for(url, PREFS_API_KEY_CACHE_SECONDS="30")
    floor_env = {**env, "BENCH_DATABASE_URL": url, "BENCH_IDENTIFIER_KEY": common.IDENTIFIER_KEY}
    rng = random.Random(14)
    everyone = [common.email_of(i) for i in range(subjects)]
    rng.shuffle(everyone)
    csv = common.WORK / f"screening-{subjects}.csv"
    csv.write_text("".join(f"{email}\n" for email in everyone))
    data = {
        "subjects": subjects,
        "key": key,
        "csv": csv,
        "bulk": [{"channel": "email", "purpose": "newsletter", "recipients": [common.email_of(rng.randrange(subjects)) for _ in range(BATCH)]}
                 for _ in range(BULK_CALLS)],
        "million": [orjson.dumps({"channel": "email", "purpose": "newsletter", "recipients": everyone[i : i + BATCH]})
                    for i in range(0, subjects, BATCH)],
        "single": [common.email_of(rng.randrange(subjects)).replace("@", "%40") for _ in range(20_000)],
    }  # fmt: skip
    rounds: dict[str, list[dict]] = {"floor": [], "service": []}
    for number in range(rounds_wanted):
        with ExitStack() as stack:
            floor = stack.enter_context(common.gunicorn("bench.limit_floor_app:create_app()", floor_env, threads=threads))
            service = stack.enter_context(common.gunicorn(common.SERVICE, env, threads=threads))
            servers = {"floor": (floor, "/check", ""), "service": (service, "/v1/consent/check", f"Bearer {key}")}
            figures = measure_round(number, servers, data, seconds)
        for label in rounds:
            rounds[label].append(figures[label])
        s, f = figures["service"], figures["floor"]
        common.report(
            f"round {number + 1} of {rounds_wanted}, {backend}",
            rows_for(backend, s, f, subjects, s["bulk_checks_per_s"] / f["bulk_checks_per_s"], s["single_rps"] / f["single_rps"]),
        )
    medians = {label: common.medians(runs) for label, runs in rounds.items()}
    bulk_ratios, single_ratios = common.ratios(rounds, "bulk_checks_per_s"), common.ratios(rounds, "single_rps")
    common.report(
        f"screening, {backend}, {subjects:,} subjects, gunicorn 2 workers (gthread, {threads} thread{'s' * (threads > 1)}) each, "
        f"median of {rounds_wanted} alternating rounds (ratios: median of the rounds' ratios)",
        rows_for(backend, medians["service"], medians["floor"], subjects, common.median(bulk_ratios), common.median(single_ratios)),
    )
    print(f"  bulk ratio per round: {', '.join(f'{r:.2f}' for r in bulk_ratios)}; single: {', '.join(f'{r:.2f}' for r in single_ratios)}")
    if any(r["single_errors"] for runs in rounds.values() for r in runs):
        print("  note: wrk reported errors or non-2xx answers")
    return {"median": medians, "rounds": rounds, "ratios": {"bulk": bulk_ratios, "single": single_ratios}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--subjects", type=int, default=1_000_000, help="a multiple of 10,000")
    parser.add_argument("--rounds", type=int, default=3, help="alternating floor/service rounds; medians are reported")
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run and of each fixed-rate run")
    parser.add_argument("--threads", type=int, default=THREADS, help="gunicorn threads per worker, the same for the service and the floor")
    parser.add_argument("--reuse", action="store_true", help="reuse a database seeded by an earlier run (also bench.consent_check's)")
    args = parser.parse_args()
    results = {}
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        print(f"[{backend}]", flush=True)
        results[backend] = run(backend, args.subjects, args.rounds, args.seconds, args.reuse, args.threads)
    common.save("screening" if args.threads == THREADS else f"screening-threads{args.threads}", results)


if __name__ == "__main__":
    main()
