"""Stripe webhook benchmark (issue 5).

1. Throughput: signed `checkout.session.completed` events (each a new purchase:
   subject, order, receipt queued) from 16 concurrent clients, under gunicorn
   with 2 workers, beside a floor that only verifies the signature and records
   the event id with plain SQL.
2. Latency: with the embedded worker (`prefs serve`), the time from posting a
   `checkout.session.completed` to the receipt being handed to an SMTP server.

    .venv/bin/python -m bench.webhooks [--backend sqlite|postgresql|both] [--events 3000]

Targets: at least 300 verified events per second acknowledged; median time to
the receipt under one second.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import time

from aiosmtpd.controller import Controller

from bench import common

SECRET = "whsec_bench_" + "b" * 32


def signed(payload: dict) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    stamp = int(time.time())
    return body, f"t={stamp},v1={hmac.new(SECRET.encode(), f'{stamp}.'.encode() + body, hashlib.sha256).hexdigest()}"


def checkout(n: int, tag: str) -> dict:
    session = {
        "id": f"cs_bench_{tag}_{n}", "object": "checkout.session", "mode": "payment", "amount_total": 4900, "currency": "gbp",
        "payment_status": "paid", "customer": f"cus_{n}", "payment_intent": f"pi_{tag}_{n}", "metadata": {"plan": "crm-standard"},
        "customer_details": {"email": f"buyer{n}.{tag}@bench.example.com", "name": "Bench Buyer", "address": {"country": "GB"}},
    }  # fmt: skip
    return {"id": f"evt_bench_{tag}_{n}", "type": "checkout.session.completed", "data": {"object": session}}


def throughput(base: str, events: int, tag: str) -> float:
    requests = []
    for n in range(events):
        body, header = signed(checkout(n, tag))
        requests.append(("/webhooks/stripe", body, {"Content-Type": "application/json", "Stripe-Signature": header}))
    seconds, results = common.post_all(base, requests, concurrency=16)
    failures = [status for status, _ in results if status != 200]
    if failures:
        raise RuntimeError(f"{len(failures)} events were not acknowledged: {failures[:5]}")
    return events / seconds


class Receipts:
    def __init__(self):
        self.arrived = {}

    async def handle_DATA(self, server, session, envelope):
        self.arrived[envelope.rcpt_tos[0]] = time.perf_counter()
        return "250 OK"


def receipt_latency(backend: str, url: str, samples: int) -> list[float]:
    receipts = Receipts()
    smtp_port = common.free_port()
    controller = Controller(receipts, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    port = common.free_port()
    env = common.env_for(url, STRIPE_WEBHOOK_SECRET=SECRET, PREFS_MAIL_URL=f"smtp://127.0.0.1:{smtp_port}")
    server = subprocess.Popen([str(common.BIN / "prefs"), "serve", "--port", str(port)], env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        import http.client

        latencies = []
        for n in range(samples):
            payload = checkout(n, "latency")
            body, header = signed(payload)
            recipient = payload["data"]["object"]["customer_details"]["email"]
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            started = time.perf_counter()
            conn.request("POST", "/webhooks/stripe", body=body, headers={"Content-Type": "application/json", "Stripe-Signature": header})
            assert conn.getresponse().status == 200
            while recipient not in receipts.arrived:
                if time.perf_counter() - started > 30:
                    raise RuntimeError("no receipt within 30 s")
                time.sleep(0.002)
            latencies.append(receipts.arrived[recipient] - started)
            time.sleep(0.05)
        return latencies
    finally:
        server.terminate()
        server.wait(30)
        controller.stop()


def run(backend: str, events: int, samples: int) -> dict:
    figures = {}
    for label, target in (("floor", "bench.floor_app:create_webhook_floor()"), ("service", common.SERVICE)):
        url = common.database_url(backend, "prefs_bench_webhooks")
        common.recreate_database(backend, url)
        common.prefs(url, "db", "upgrade")
        env = {**common.env_for(url, STRIPE_WEBHOOK_SECRET=SECRET, PREFS_MAIL_URL=f"file://{common.WORK / 'outbox'}"),
               "BENCH_DATABASE_URL": url, "BENCH_WEBHOOK_SECRET": SECRET}  # fmt: skip
        with common.gunicorn(target, env) as base:
            throughput(base, 200, f"warm{label}")
            figures[label] = throughput(base, events, label)
    url = common.database_url(backend, "prefs_bench_webhooks")
    latencies = receipt_latency(backend, url, samples)
    median, p95 = statistics.median(latencies), sorted(latencies)[int(len(latencies) * 0.95) - 1]
    common.report(
        f"Stripe webhooks, {backend}, {events:,} signed checkout.session.completed events, 16 clients, gunicorn 2 workers",
        [
            ("figure", "service", "floor", "ratio / target"),
            ("events acknowledged per second", f"{figures['service']:,.0f}", f"{figures['floor']:,.0f}",
             f"{figures['service'] / figures['floor']:.2f}x  (>= 300/s)"),
            (f"checkout to receipt at SMTP, median of {samples} (ms)", f"{median * 1000:.0f}", "", "(< 1,000 ms, embedded worker)"),
            ("checkout to receipt at SMTP, p95 (ms)", f"{p95 * 1000:.0f}", "", ""),
        ],
    )  # fmt: skip
    return {"service_per_s": figures["service"], "floor_per_s": figures["floor"], "receipt_median_s": median, "receipt_p95_s": p95}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args()
    results = {b: run(b, args.events, args.samples) for b in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend])}
    common.save("webhooks", results)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
