"""Shared bench plumbing: databases, seeding, servers, load generators, reporting."""

from __future__ import annotations

import io
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
IDENTIFIER_KEY = "bench-identifier-key-" + "b" * 32
SECRET_KEY = "bench-secret-key-" + "s" * 32
PG_ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
WORK = Path(os.environ.get("BENCH_WORK_DIR", ROOT / "var" / "bench"))
# The service as gunicorn serves it in production (wsgi.py); the floors' apps freeze their start-up heap as it does.
SERVICE = "wsgi:app"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wsgi_environ(path: str, query: str, key: str) -> dict:
    """One GET of `path?query` with an API key, as a WSGI server hands it to the app."""
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Bearer {key}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def email_of(i: int) -> str:
    return f"user{i}@bench.example.com"


# --- databases ---------------------------------------------------------------------


def database_url(backend: str, name: str) -> str:
    if backend == "sqlite":
        WORK.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{WORK / (name + '.db')}"
    return PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + name


def env_for(url: str, **extra) -> dict:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PREFS_ENV": "test",
        "PREFS_DATABASE_URL": url,
        "PREFS_SECRET_KEYS": SECRET_KEY,
        "PREFS_IDENTIFIER_KEY": IDENTIFIER_KEY,
        "PREFS_VAR_DIR": str(WORK / "var"),
        "PREFS_LOG_LEVEL": "WARNING",
        "PREFS_MAIL_URL": f"file://{WORK / 'outbox'}",
        **extra,
    }


def recreate_database(backend: str, url: str) -> None:
    if backend == "sqlite":
        path = Path(url.split(":///", 1)[1])
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


def prefs(url: str, *args: str, **extra_env) -> str:
    result = subprocess.run([str(BIN / "prefs"), *args], env=env_for(url, **extra_env), capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"prefs {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def api_key(url: str, *scopes: str) -> str:
    args = ["api-key", "create", "--name", "bench"]
    for scope in scopes:
        args += ["--scope", scope]
    return prefs(url, *args).strip().splitlines()[-1]


def hashes_for(url: str, emails: list[str]) -> list[bytes]:
    """Identifier hashes computed by the service's own code."""
    os.environ.update(env_for(url))
    from prefs_service import create_app
    from prefs_service.subjects.identifiers import identifier_hashes

    app = create_app()
    with app.app_context():
        return identifier_hashes("email", emails)


def seed_consent(backend: str, url: str, count: int) -> None:
    """`count` subjects with an email each; email/newsletter granted for i%3==0,
    withdrawn for i%3==1, nothing for i%3==2; every 100th (i%100==7) suppressed."""
    emails = [email_of(i) for i in range(count)]
    hashes = hashes_for(url, emails)
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
    subject_ids = [uuid.UUID(int=i + 1) for i in range(count)]
    statuses = {0: "granted", 1: "withdrawn"}
    if backend == "sqlite":
        import sqlite3

        conn = sqlite3.connect(url.split(":///", 1)[1], isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO subjects (id, created_at, updated_at) VALUES (?, ?, ?)", ((s.hex, stamp, stamp) for s in subject_ids))
        conn.executemany(
            "INSERT INTO identifiers (subject_id, kind, value, value_hash, created_at) VALUES (?, 'email', ?, ?, ?)",
            ((s.hex, e, h, stamp) for s, e, h in zip(subject_ids, emails, hashes, strict=True)),
        )
        events = [(n + 1, subject_ids[i].hex, statuses[i % 3]) for n, i in enumerate(i for i in range(count) if i % 3 in statuses)]
        conn.executemany(
            "INSERT INTO consent_events (id, txid, subject_id, channel, purpose, status, source, occurred_at, recorded_at, recorded_by) "
            "VALUES (?, 0, ?, 'email', 'newsletter', ?, 'import', ?, ?, 'bench')",
            ((eid, sid, st, stamp, stamp) for eid, sid, st in events),
        )
        conn.executemany(
            "INSERT INTO consent_state (subject_id, channel, purpose, status, occurred_at, event_id, source) "
            "VALUES (?, 'email', 'newsletter', ?, ?, ?, 'import')",
            ((sid, st, stamp, eid) for eid, sid, st in events),
        )
        conn.executemany(
            "INSERT INTO suppressions (value_hash, kind, reason, created_at, created_by) VALUES (?, 'email', 'bounce', ?, 'bench')",
            ((hashes[i], stamp) for i in range(7, count, 100)),
        )
        conn.execute("COMMIT")
        conn.close()
        _rebuild_decisions(url)
        conn = sqlite3.connect(url.split(":///", 1)[1], isolation_level=None)
        conn.execute("ANALYZE")
        conn.close()
        return
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        with conn.cursor() as cur:
            with cur.copy("COPY subjects (id, created_at, updated_at) FROM STDIN") as copy:
                for s in subject_ids:
                    copy.write_row((s, now, now))
            with cur.copy("COPY identifiers (subject_id, kind, value, value_hash, created_at) FROM STDIN") as copy:
                for s, e, h in zip(subject_ids, emails, hashes, strict=True):
                    copy.write_row((s, "email", e, h, now))
            events = [(n + 1, subject_ids[i], statuses[i % 3]) for n, i in enumerate(i for i in range(count) if i % 3 in statuses)]
            with cur.copy(
                "COPY consent_events (id, subject_id, channel, purpose, status, source, occurred_at, recorded_at, recorded_by) FROM STDIN"
            ) as copy:
                for eid, sid, st in events:
                    copy.write_row((eid, sid, "email", "newsletter", st, "import", now, now, "bench"))
            cur.execute("SELECT setval('consent_events_id_seq', %s)", (len(events) + 1,))
            with cur.copy("COPY consent_state (subject_id, channel, purpose, status, occurred_at, event_id, source) FROM STDIN") as copy:
                for eid, sid, st in events:
                    copy.write_row((sid, "email", "newsletter", st, now, eid, "import"))
            with cur.copy("COPY suppressions (value_hash, kind, reason, created_at, created_by) FROM STDIN") as copy:
                for i in range(7, count, 100):
                    copy.write_row((hashes[i], "email", "bounce", now, "bench"))
        conn.commit()
        _rebuild_decisions(url)
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


def _rebuild_decisions(url: str) -> None:
    """The rows were written behind the service's back: compute the read model
    checks probe (consent/decisions.py) from them, as an operator would."""
    prefs(url, "screening", "rebuild")


def check_database(backend: str, subjects: int, reuse: bool) -> str:
    """The consent-check benches' database of `subjects` people (seed_consent),
    seeded now unless `reuse` finds one an earlier run seeded; its URL."""
    name = f"prefs_bench_check_{subjects}"
    url = database_url(backend, name)
    marker = WORK / f"{backend}-{name}.seeded-with-decisions"  # one seeded before the read model lacks its rows
    if not (reuse and marker.exists()):
        marker.unlink(missing_ok=True)
        recreate_database(backend, url)
        prefs(url, "db", "upgrade")
        started = time.perf_counter()
        seed_consent(backend, url, subjects)
        print(f"[{backend}] seeded {subjects:,} subjects in {time.perf_counter() - started:.0f}s", flush=True)
        WORK.mkdir(parents=True, exist_ok=True)
        marker.touch()
    return url


# --- servers -------------------------------------------------------------------------


class BaseUrl(str):
    """A server's base URL; `.pid` is its (master) process id."""

    pid: int


@contextmanager
def gunicorn(target: str, env: dict, *, workers: int = 2, threads: int = 4):
    """A gunicorn serving `target` (module:callable) on a free port; yields the
    base URL (a BaseUrl: `.pid` is the master's process id)."""
    port = free_port()
    args = [
        str(BIN / "gunicorn"), "-w", str(workers), "-k", "gthread", "--threads", str(threads),
        "-b", f"127.0.0.1:{port}", "--log-level", "warning", target,
    ]  # fmt: skip
    if "--no-control-socket" in subprocess.run([str(BIN / "gunicorn"), "--help"], capture_output=True, text=True).stdout:
        args.insert(-1, "--no-control-socket")
    process = subprocess.Popen(args, env={**env, "PYTHONPATH": str(ROOT)}, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{target} did not start:\n{process.stderr.read().decode()}") from None
                time.sleep(0.2)
        time.sleep(1.0)  # let every worker boot
        base = BaseUrl(f"http://127.0.0.1:{port}")
        base.pid = process.pid
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


# --- load -----------------------------------------------------------------------------

# Each wrk thread asks for its connection to be closed every PER_CONNECTION
# requests, and wrk opens a new one. A gunicorn worker keeps every connection it
# accepted, and wrk's 16, opened together, were often most of them accepted by
# one worker (see post_all): the round then measured that worker alone.
PER_CONNECTION = 50

_WRK_REOPEN = """
local sent = 0
local function reopening(headers)
  sent = sent + 1
  if sent %% %(per_connection)d == 0 then headers["Connection"] = "close" end
  return headers
end
"""

_WRK_SCRIPT = """
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
local n = %(count)d
local auth = "%(auth)s"
request = function()
  local path = "%(path)s" .. "user" .. math.random(0, n - 1) .. "%%40bench.example.com"
  local headers = {}
  if auth ~= "" then headers["Authorization"] = auth end
  return wrk.format("GET", path, reopening(headers))
end
"""


def _wrk(base_url: str, script_text: str, *, seconds: int, connections: int) -> dict:
    """Run wrk (2 threads) with a Lua script; its throughput and latency percentiles."""
    if not shutil.which("wrk"):
        raise SystemExit("bench needs wrk (Debian: apt-get install wrk)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(script_text)
    try:
        output = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, base_url],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(script.name)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": _ms(re.search(r"\s50%\s+([\d.]+\w+)", output).group(1)),
        "p99_ms": _ms(re.search(r"\s99%\s+([\d.]+\w+)", output).group(1)),
        "errors": bool(re.search(r"Non-2xx|Socket errors", output)),
        "raw": output,
    }


def wrk_single(base_url: str, path: str, count: int, *, auth: str = "", seconds: int = 15, connections: int = 16) -> dict:
    """16 concurrent connections of single GET checks for random known people."""
    values = {"count": count, "auth": auth, "path": path, "per_connection": PER_CONNECTION}
    return _wrk(base_url, (_WRK_REOPEN + _WRK_SCRIPT) % values, seconds=seconds, connections=connections)


_WRK_POST_SCRIPT = """
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
local n = %(count)d
request = function()
  local id = string.format("00000000-0000-0000-0000-%%012x", 3 * math.random(0, n - 1) + 1)
  local body = '{"subject_id": "' .. id .. '", "purpose": "newsletter"}'
  return wrk.format("POST", "%(path)s", reopening({["Content-Type"] = "application/json", ["Authorization"] = "%(auth)s"}), body)
end
"""


def wrk_mint(base_url: str, path: str, count: int, *, auth: str = "", seconds: int = 10, connections: int = 16) -> dict:
    """POST {"subject_id": random known subscriber, "purpose": "newsletter"} as fast as it goes."""
    values = {"count": count, "auth": auth, "path": path, "per_connection": PER_CONNECTION}
    return _wrk(base_url, (_WRK_REOPEN + _WRK_POST_SCRIPT) % values, seconds=seconds, connections=connections)


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(\w+)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def post_all(
    base_url: str, requests: list[tuple[str, bytes, dict]], *, concurrency: int, per_connection: int | None = None
) -> tuple[float, list[tuple[int, bytes]]]:
    """POST each (path, body, headers) over `concurrency` keep-alive connections;
    returns (seconds, [(status, body)] in input order).

    `per_connection`: open a new connection after that many requests. A
    gunicorn worker keeps every connection it accepted, and connections opened
    together were often all accepted by one worker, the other idle: a round
    then ran at half speed (bench/ledger.py prints the workers' CPU split).

    One thread drives every connection from a selector, with non-blocking
    writes, and the requests are written as bytes: a client built on
    http.client and threads spent more CPU per request than the floor's server
    does, on the cores the server needs."""
    host, port = base_url.removeprefix("http://").split(":")
    address = (host, int(port))
    pending = iter(enumerate(requests))
    results: list = [None] * len(requests)
    selector = selectors.DefaultSelector()
    served: dict[socket.socket, int] = {}

    def connect() -> socket.socket:
        sock = socket.create_connection(address, timeout=120)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        return sock

    def send_next(sock: socket.socket) -> None:
        item = next(pending, None)
        if item is None:
            sock.close()
            return
        index, (path, body, headers) = item
        head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
        selector.register(sock, selectors.EVENT_WRITE, _Exchange(index, head.encode() + body))

    start = time.perf_counter()
    for _ in range(min(concurrency, len(requests))):
        send_next(connect())
    while selector.get_map():
        for key, events in selector.select():
            sock, exchange = key.fileobj, key.data
            if events & selectors.EVENT_WRITE:
                sent = sock.send(exchange.unsent)
                exchange.unsent = exchange.unsent[sent:]
                if not exchange.unsent:
                    selector.modify(sock, selectors.EVENT_READ, exchange)
                continue
            data = sock.recv(262144)
            if not data:
                raise RuntimeError("the server closed a connection before answering")
            if not exchange.feed(data):
                continue
            selector.unregister(sock)
            results[exchange.index] = (exchange.status, exchange.body)
            served[sock] = served.get(sock, 0) + 1
            if exchange.close or served[sock] == per_connection:
                del served[sock]
                sock.close()
                sock = connect()
            send_next(sock)
    return time.perf_counter() - start, results


class _Exchange:
    """One request being written, then its HTTP/1.1 response (with a
    Content-Length) being read as it arrives."""

    def __init__(self, index: int, request: bytes):
        self.index = index
        self.unsent = memoryview(request)
        self.buffer = bytearray()
        self.length = None

    def feed(self, data: bytes) -> bool:
        self.buffer += data
        if self.length is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return False
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            fields = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in head[1:])}
            self.status = int(head[0].split()[1])
            self.length = int(fields["content-length"])
            self.close = fields.get("connection", "").lower() == "close"
            del self.buffer[: end + 4]
        if len(self.buffer) < self.length:
            return False
        self.body = bytes(self.buffer)
        return True


def post_json(base_url: str, path: str, payloads, *, headers: dict | None = None, concurrency: int = 4) -> tuple[float, list]:
    """POST each JSON payload; a non-2xx answer stops the bench."""
    headers = {"Content-Type": "application/json", **(headers or {})}
    requests = [(path, p if isinstance(p, bytes) else orjson.dumps(p), headers) for p in payloads]
    seconds, results = post_all(base_url, requests, concurrency=concurrency)
    failed = [status for status, _ in results if status >= 300]
    if failed:
        raise RuntimeError(f"POST {path}: {len(failed)} answers were not 2xx, e.g. {failed[0]}")
    return seconds, results


def spread(headers: dict) -> dict:
    """`headers` for calls that should keep both workers busy: a new connection
    for each. A kept-alive connection stays with the worker that accepted it,
    and two of them landed on the same worker about half the time (the other
    idle): the same server measured 73-85 or 167-191 ms a 10k call, by luck."""
    return {**headers, "Connection": "close"}


def post_form(base_url: str, paths: list[str], body: bytes, *, concurrency: int, per_connection: int | None = None) -> tuple[float, list]:
    """POST `body` (a form) once to each path from `concurrency` connections
    (each replaced after `per_connection` requests, as post_all)."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return post_all(base_url, [(path, body, headers) for path in paths], concurrency=concurrency, per_connection=per_connection)


def median(values: list[float]) -> float:
    import statistics

    return statistics.median(values)


def medians(runs: list[dict]) -> dict:
    """Per figure, the median over rounds (booleans: whether any round had it)."""
    return {k: (any(r[k] for r in runs) if isinstance(runs[0][k], bool) else median([r[k] for r in runs])) for k in runs[0]}


def ratios(rounds: dict[str, list[dict]], figure: str) -> list[float]:
    """service / floor for one figure, round by round (each pair measured back to back)."""
    return [s[figure] / f[figure] for s, f in zip(rounds["service"], rounds["floor"], strict=True)]


def report(title: str, rows: list[tuple[str, str, str, str]]) -> None:
    print(f"\n{title}")
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    sys.stdout.flush()


def save(name: str, data: dict) -> None:
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(data, indent=2, default=str))
