"""/metrics under `prefs serve --workers 2`: a real gunicorn whose workers count
into PROMETHEUS_MULTIPROC_DIR, and a scrape that sums them all."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port
from tests.helpers import eventually
from tests.jobs.test_broker_outage import RedisServer


@pytest.fixture
def redis_server():
    server = RedisServer()
    server.start()
    yield server
    server.stop()


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _get(url: str, headers: dict) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={**headers, "Connection": "close"})  # noqa: S310 - our own server
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _samples(text: str) -> list[tuple[str, dict, float]]:
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


def test_two_workers_counts_are_summed(app, api_key, base_settings, redis_server, tmp_path):
    admin, reader = api_key("admin"), api_key("consent:read")
    counts = tmp_path / "metrics"
    counts.mkdir()
    (counts / "counter_1.db").write_bytes(b"a previous run's file")  # must not be read
    env = {
        "PATH": "/usr/bin:/bin",
        "PREFS_ENV": "test",
        "PREFS_DATABASE_URL": base_settings["database_url"],
        "PREFS_BROKER_URL": redis_server.url,
        "PREFS_SECRET_KEYS": base_settings["secret_keys"][0],
        "PREFS_IDENTIFIER_KEY": base_settings["identifier_key"],
        "PREFS_MAIL_URL": base_settings["mail_url"],
        "PREFS_VAR_DIR": str(tmp_path / "var"),
        "PREFS_API_KEY_CACHE_SECONDS": "0",
        "PROMETHEUS_MULTIPROC_DIR": str(counts),
    }
    port = free_port()
    prefs = str(Path(sys.executable).parent / "prefs")
    server = subprocess.Popen(
        [prefs, "serve", "--port", str(port), "--workers", "2", "--threads", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    sent = 0

    def both_workers_counted() -> bool:
        nonlocal sent
        status, body = _get(f"{base}/v1/consent/check?channel=email&purpose=newsletter&email=n{sent}@example.com", reader)
        assert status == 200 and '"no_consent"' in body, (status, body)
        sent += 1
        return sent >= 10 and len(list(counts.glob("counter_*.db"))) >= 2

    try:
        eventually(lambda: _accepts(port) or server.poll() is not None, timeout=60, what="prefs serve to listen")
        assert server.poll() is None, server.stderr.read()
        # A new connection each time: the workers take them as they come, so go on until both have counted.
        eventually(both_workers_counted, timeout=60, interval=0, what="both workers to answer checks")
        assert not (counts / "counter_1.db").exists(), "the folder is emptied at start"
        workers = {path.stem.rpartition("_")[2] for path in counts.glob("counter_*.db")}
        assert len(workers) == 2, workers

        status, text = _get(f"{base}/metrics", admin)
        assert status == 200, text
        samples = _samples(text)
        checks = [value for name, labels, value in samples if name == "prefs_consent_checks_total" and labels == {"reason": "no_consent"}]
        assert checks == [sent], "one sample, the sum of both workers' counts"
        requests = [
            value
            for name, labels, value in samples
            if name == "prefs_http_request_duration_seconds_count" and labels == {"endpoint": "consents.ConsentCheck", "status": "200"}
        ]
        assert requests == [sent]
        # Read from the database once per scrape, never once per worker.
        overdue = [value for name, _, value in samples if name == "prefs_rights_requests_overdue"]
        assert overdue == [0]
        assert (
            len([1 for name, labels, _ in samples if name == "prefs_jobs" and labels == {"kind": "notices.deliver", "state": "queued"}])
            == 1
        )

        assert _get(f"{base}/metrics", reader)[0] == 403
        assert _get(f"{base}/metrics", {})[0] == 401
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    assert server.returncode == 0, server.stderr.read()
