"""The broker dies with a backlog: Redis is killed with -9 while ten thousand
jobs wait in it, and comes back empty. The job rows are the truth, so every
job still runs, once.

The jobs are escalation webhooks (orders.escalation_webhook): each run is one
POST to a real HTTP server here, so a second run of a job is a second POST. Ten
thousand mails through SMTP would take far longer than this test may: mail
gets the same outage with fewer messages."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import redis
import sqlalchemy as sa

from prefs_service import outbox
from prefs_service.clock import utcnow
from prefs_service.extensions import db
from prefs_service.job_kinds import JobKind
from prefs_service.jobs.dispatch import QUEUE_NAME, jobs
from prefs_service.notices import service as notices
from prefs_service.notices.models import Notice
from prefs_service.outbox import DONE, QUEUED, Job
from tests.conftest import free_port
from tests.helpers import eventually

REDIS_SERVER = "/usr/bin/redis-server"
JOBS = 10_100
MAILS = 150
AT_LEAST_QUEUED_AT_KILL = 10_000
QUEUE_CHUNK = 1_000


class RedisServer:
    """A redis-server of this test's own, with nothing saved to disk."""

    def __init__(self):
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        eventually(lambda: self._answers(client), timeout=10, what="redis-server to answer PING")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def keys_loaded_at_start(self) -> int:
        return redis.Redis(port=self.port).info("persistence")["rdb_last_load_keys_loaded"]

    def waiting(self) -> int:
        """Messages waiting in the jobs' queue."""
        return redis.Redis(port=self.port).llen(f"dramatiq:{QUEUE_NAME}")

    @staticmethod
    def _answers(client) -> bool:
        try:
            return client.ping()
        except redis.ConnectionError:
            return False


class SerialHTTPServer(HTTPServer):
    request_queue_size = 64  # room for every worker thread's connection while one is served


class WebhookReceiver:
    """A real HTTP server counting the escalation POSTs it receives, by id."""

    def __init__(self):
        self.received = Counter()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                received[body["escalation_id"]] += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        # One request at a time (a thread per request cost twice as much); the
        # worker's threads wait in the listen queue.
        self.server = SerialHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/escalations"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def redis_server():
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def webhook():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


def queue_escalation_posts(app, count: int) -> None:
    with app.app_context():
        for start in range(0, count, QUEUE_CHUNK):
            for n in range(start, min(start + QUEUE_CHUNK, count)):
                outbox.defer(JobKind.ORDER_ESCALATION_WEBHOOK, {"escalation_id": n, "order_reference": f"ORD-{n}"})
            db.session.commit()  # the after-commit hook hands these to Redis


def job_counts(app, kind: str) -> Counter:
    with app.app_context():
        rows = db.session.execute(sa.select(Job.status, sa.func.count()).where(Job.kind == kind).group_by(Job.status)).all()
        db.session.rollback()
    return Counter(dict(rows))


def attempts_of(app, kind: str) -> Counter:
    with app.app_context():
        attempts = Counter(db.session.scalars(sa.select(Job.attempts).where(Job.kind == kind)))
        db.session.rollback()
    return attempts


# redis_server comes first so that it outlives the app: stopping a dramatiq
# worker waits for the acknowledgements it owes the broker.
def test_ten_thousand_jobs_queued_in_a_killed_broker_all_run_once(redis_server, make_app, webhook):
    app = make_app(broker_url=redis_server.url, escalation_webhook_url=webhook.url)
    started = time.monotonic()
    queue_escalation_posts(app, JOBS)
    assert redis_server.waiting() == JOBS
    queued_after = time.monotonic() - started

    app.extensions["prefs.jobs"].start(threads=4)
    eventually(lambda: job_counts(app, JobKind.ORDER_ESCALATION_WEBHOOK)[DONE] >= 5, timeout=30, what="the first jobs to run")
    redis_server.kill()
    at_kill = job_counts(app, JobKind.ORDER_ESCALATION_WEBHOOK)
    assert at_kill[QUEUED] >= AT_LEAST_QUEUED_AT_KILL, at_kill
    redis_server.start()  # the same port, empty: every message it held is gone
    assert redis_server.keys_loaded_at_start() == 0

    eventually(
        lambda: job_counts(app, JobKind.ORDER_ESCALATION_WEBHOOK)[DONE] == JOBS, timeout=600, interval=0.5, what="every job to be done"
    )
    app.extensions["prefs.jobs"].stop()
    done_after = time.monotonic() - started

    assert job_counts(app, JobKind.ORDER_ESCALATION_WEBHOOK) == {DONE: JOBS}
    assert attempts_of(app, JobKind.ORDER_ESCALATION_WEBHOOK) == {1: JOBS}  # no job was claimed twice
    assert set(webhook.received) == set(range(JOBS))  # every job's POST arrived
    assert set(webhook.received.values()) == {1}  # and none twice
    print(f"\n{JOBS} queued in {queued_after:.1f}s; at the kill {dict(at_kill)}; all done, once each, at {done_after:.1f}s")


def queue_mails(app, count: int) -> list[int]:
    with app.app_context():
        ids = [
            notices.queue(
                kind="preferences_link",
                recipient=f"reader{n}@example.com",
                template="preferences_link",
                context={"preferences_url": f"https://prefs.example/preferences/{n}", "valid_days": 30},
                idempotency_key=f"outage-{n}",
            )
            for n in range(count)
        ]
        db.session.commit()
    return ids


def test_notices_queued_in_a_killed_broker_are_each_mailed_once(redis_server, make_app, smtp):
    app = make_app(broker_url=redis_server.url)
    notice_ids = queue_mails(app, MAILS)
    app.extensions["prefs.jobs"].start(threads=4)
    eventually(lambda: len(smtp.messages) >= 5, timeout=30, what="the first mails")
    redis_server.kill()
    assert job_counts(app, JobKind.NOTICE_DELIVER)[QUEUED] >= MAILS - 20
    redis_server.start()

    eventually(lambda: job_counts(app, JobKind.NOTICE_DELIVER)[DONE] == MAILS, timeout=300, interval=0.2, what="every mail job to be done")
    app.extensions["prefs.jobs"].stop()
    assert attempts_of(app, JobKind.NOTICE_DELIVER) == {1: MAILS}
    with app.app_context():
        sent = dict(db.session.execute(sa.select(Notice.id, Notice.message_id).where(Notice.status == "sent")).all())
        db.session.rollback()
    assert set(sent) == set(notice_ids)
    delivered = Counter(message["Message-ID"] for message in smtp.messages)
    assert delivered == Counter(sent.values())  # each notice's mail arrived once


def test_a_backlog_is_not_sent_again_while_the_broker_holds_it(redis_server, make_app):
    """Jobs waiting longer than PREFS_JOB_RESEND_AFTER_SECONDS behind a long queue
    were not lost: re-sending them would pile duplicates in front of the work.
    (Sweeps also queue the periodic jobs, each with its message.)"""
    app = make_app(broker_url=redis_server.url, escalation_webhook_url="http://127.0.0.1:1/unused")
    queue_escalation_posts(app, 50)
    with app.app_context():
        backlog = set(db.session.scalars(sa.select(Job.id).where(Job.kind == JobKind.ORDER_ESCALATION_WEBHOOK)))
        queued_at = db.session.scalar(sa.select(sa.func.max(Job.dispatched_at)))
        db.session.rollback()
    resend_after = app.config["PREFS"].job_resend_after_seconds
    eventually(lambda: (utcnow() - queued_at).total_seconds() > resend_after, timeout=10, what="the jobs to wait past the resend interval")

    with app.app_context():
        assert jobs().sweep() == []
    assert redis_server.waiting() == job_count(app, QUEUED)  # one message per job, no more

    redis.Redis(port=redis_server.port).flushall()  # the broker loses its messages
    with app.app_context():
        assert backlog <= set(jobs().sweep())
        assert not backlog & set(jobs().sweep())  # sent again once, not on every sweep
    assert redis_server.waiting() >= len(backlog)


def job_count(app, status: str) -> int:
    with app.app_context():
        count = db.session.scalar(sa.select(sa.func.count()).select_from(Job).where(Job.status == status))
        db.session.rollback()
    return count
