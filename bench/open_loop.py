"""Latency at a fixed arrival rate: an open-loop load generator, and a sampler
of a gunicorn's memory.

wrk (and hey, whose -q limits each worker that waits for its answer) sends the
next request only once an answer came back, so a slow answer holds back the
requests that should have gone out meanwhile and their wait is never counted.
Here requests go out on a fixed schedule (RATE a second, evenly spaced) whether
or not earlier ones were answered, over as many keep-alive connections as that
takes, and each latency is counted from the moment the request was due: time
spent waiting for a free connection counts, as a user's would.
"""

from __future__ import annotations

import os
import selectors
import socket
import threading
import time
from collections import deque
from itertools import cycle
from pathlib import Path

from bench.common import _Exchange

MAX_CONNECTIONS = 256


def run(base_url: str, paths: list[str], *, rate: float, seconds: float, headers: dict | None = None) -> dict:
    """GET `paths` in turn at `rate` a second for `seconds`; latency percentiles in ms.

    Returns rate (asked), achieved (answers a second), p50_ms, p99_ms, p999_ms,
    max_ms, errors (answers not 2xx), late (requests sent more than 1 ms after
    they were due: no connection was free, or this client fell behind) and
    connections (how many it took), reconnects (requests sent again on a new
    connection, the server having closed an idle one)."""
    host, port = base_url.removeprefix("http://").split(":")
    address = (host, int(port))
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    requests = cycle([f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode() for path in paths])
    # select(2) sleeps to the microsecond; epoll and poll round a timeout up to the
    # next millisecond, which would send every request up to 1 ms late.
    selector = selectors.SelectSelector()
    idle: list[socket.socket] = []
    waiting: deque[float] = deque()  # due times of requests no connection was free for
    latencies: list[float] = []
    errors = late = opened = reconnects = 0
    interval = 1.0 / rate
    total = int(rate * seconds)

    def send(sock: socket.socket, due: float, request: bytes | None = None) -> None:
        nonlocal late
        if request is None:  # a request sent again counts in reconnects
            late += time.perf_counter() - due > 0.001
        exchange = _Exchange(0, request or next(requests))
        exchange.due = due  # type: ignore[attr-defined]
        exchange.request = bytes(exchange.unsent)  # type: ignore[attr-defined]
        try:
            sent = sock.send(exchange.unsent)  # a GET fits in an empty socket buffer
        except ConnectionError:
            sent = 0  # closed while idle: found below as the end of the stream
        assert sent in (0, len(exchange.unsent))
        selector.register(sock, selectors.EVENT_READ, exchange)

    def connection() -> socket.socket | None:
        nonlocal opened
        if idle:
            return idle.pop()
        if opened >= MAX_CONNECTIONS:
            return None
        opened += 1
        sock = socket.create_connection(address, timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        return sock

    start = time.perf_counter() + 0.05
    issued = answered = 0
    while answered < total:
        now = time.perf_counter()
        while issued < total and start + issued * interval <= now:
            waiting.append(start + issued * interval)
            issued += 1
        while waiting:
            sock = connection()
            if sock is None:
                break
            send(sock, waiting.popleft())
        timeout = max(0.0, start + issued * interval - time.perf_counter()) if issued < total else 1.0
        for key, _ in selector.select(timeout):
            sock, exchange = key.fileobj, key.data
            try:
                data = sock.recv(65536)
            except ConnectionError:
                data = b""
            if not data:
                # gunicorn closes a connection idle for its keep-alive time (2 s):
                # send the request again on a new one, still due when it was.
                if exchange.buffer:
                    raise RuntimeError("the server closed a connection in the middle of an answer")
                selector.unregister(sock)
                sock.close()
                opened -= 1
                reconnects += 1
                fresh = connection()
                assert fresh is not None
                send(fresh, exchange.due, exchange.request)
                continue
            if not exchange.feed(data):
                continue
            latencies.append(time.perf_counter() - exchange.due)
            answered += 1
            errors += exchange.status >= 300
            selector.unregister(sock)
            if exchange.close:
                sock.close()
                opened -= 1
            else:
                idle.append(sock)
    elapsed = time.perf_counter() - start
    for sock in idle:
        sock.close()
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "rate": rate,
        "achieved": answered / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "p999_ms": pct(0.999),
        "max_ms": latencies[-1] * 1000,
        "errors": errors,
        "late": late,
        "connections": opened,
        "reconnects": reconnects,
    }


def workers_of(master: int) -> list[int]:
    """The process ids of a gunicorn master's workers (its children)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            children.append(int(stat.parent.name))
    return children


def cpu_seconds(pids: list[int]) -> list[float]:
    """Each process's CPU time so far (user + system), in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    found = []
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            found.append(0.0)
            continue
        found.append((int(fields[11]) + int(fields[12])) / tick)  # utime, stime
    return found


def rss_mb(pids: list[int]) -> float:
    total_kb = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


class PeakRss:
    """Samples the summed resident memory of a gunicorn's workers every 10 ms
    while the block runs: `.before` (MB, at entry) and `.peak` (MB)."""

    def __init__(self, master: int):
        self.pids = workers_of(master)
        self.before = self.peak = rss_mb(self.pids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_mb(self.pids))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb(self.pids))
