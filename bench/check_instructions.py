"""Instructions one single consent check costs through the whole WSGI app,
counted by callgrind: the steady figure on a shared machine, where timings
wander by more than the few µs a change to the hot path adds or saves.

    .venv/bin/python -m bench.check_instructions [--short 200] [--long 1200]

Two runs under `valgrind --tool=callgrind`, one of `--short` checks and one of
`--long`, each after the same warm-up; the difference of their totals divided
by the difference of their counts is one check, start-up and warm-up cancelled
out. Needs valgrind on PATH.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import common

WARM_UP = 300


def checks(count: int) -> None:
    """In the process callgrind watches: warm up, then `count` checks."""
    from prefs_service import create_app

    app = create_app()
    key = os.environ["BENCH_KEY"]
    environs = [
        common.wsgi_environ("/v1/consent/check", f"channel=email&purpose=newsletter&email={common.email_of(i)}", key)
        for i in range(0, 3000, 7)
    ]
    for n in range(WARM_UP + count):
        environ = dict(environs[n % len(environs)])
        body = app(environ, lambda status, headers: None)
        b"".join(body)
        getattr(body, "close", lambda: None)()


def _instructions(count: int, env: dict) -> int:
    with tempfile.TemporaryDirectory(prefix="prefs-callgrind-") as out:
        log = Path(out) / "callgrind.out"
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={log}", sys.executable, "-m", "bench.check_instructions"]
        done = subprocess.run([*command, "--child", str(count)], env=env, cwd=common.ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the run of {count} checks failed:\n{done.stderr[-3000:]}")
        totals = re.search(r"^(?:summary|totals): (\d+)", log.read_text(), re.MULTILINE)
        assert totals is not None, "callgrind wrote no total"
        return int(totals.group(1))


def run(short: int, long: int) -> dict:
    work = tempfile.mkdtemp(prefix="prefs-bench-instructions-")
    url = f"sqlite:///{work}/instructions.db"
    common.prefs(url, "db", "upgrade")
    common.seed_consent("sqlite", url, 3000)
    key = common.api_key(url, "consent:read")
    env = {**os.environ, **common.env_for(url, PREFS_API_KEY_CACHE_SECONDS="3600"), "BENCH_KEY": key, "PYTHONHASHSEED": "0"}
    per_check = (_instructions(long, env) - _instructions(short, env)) / (long - short)
    common.report(
        f"single consent check through the WSGI app: instructions (callgrind), {long} - {short} checks",
        [("figure", "value", "", ""), ("instructions per check", f"{per_check / 1e6:.3f} M", "", "")],
    )
    return {"instructions_per_check": per_check}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", type=int, default=200)
    parser.add_argument("--long", type=int, default=1200)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        checks(args.child)
        return
    common.save("check_instructions", run(args.short, args.long))


if __name__ == "__main__":
    main()
