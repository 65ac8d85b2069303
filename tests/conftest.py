"""Fixtures: a migrated database (SQLite, or PREFS_TEST_DATABASE_URL), a broker
(stub, or PREFS_TEST_BROKER_URL), a real SMTP server in this process, apps,
clients, API keys and an in-process worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from email import message_from_bytes, policy
from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from prefs_service import create_app
from prefs_service.access import service as access
from prefs_service.clock import utcnow
from prefs_service.db import migrations
from prefs_service.extensions import db
from prefs_service.jobs.dispatch import QUEUE_NAME
from prefs_service.outbox import QUEUED, RUNNING, Job
from prefs_service.registers import partitions
from tests.helpers import Api, eventually, worker_log

logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd chatter

TEST_SECRET = "test-secret-key-for-signing-" + "s" * 24
TEST_IDENTIFIER_KEY = "test-identifier-key-for-hashing-" + "i" * 24
TEST_LEDGER_SIGNING_KEY = "dGVzdC1sZWRnZXItc2lnbmluZy1rZXktMzItYnl0ZXM="  # base64 of 32 bytes
TEST_WEBHOOK_SECRET = "whsec_test_" + "w" * 32
# Tables emptied between tests; purposes are reference data from the migrations.
KEEP_TABLES = {"purposes", "alembic_version"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpCapture:
    """A real SMTP server; `messages` holds what it accepted, parsed."""

    def __init__(self):
        self.messages = []
        self.envelopes = []
        self.hold = None  # a threading.Event: while set to block, DATA waits
        self.holding = threading.Event()
        self.refuse_recipients = {}  # address -> the reply RCPT TO gets instead of 250 (e.g. a 550)
        self.refuse_data = None  # a reply DATA gets instead of 250 (e.g. a 554)
        self.quit_reply = None  # a reply QUIT gets instead of 221

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse_recipients:
            return self.refuse_recipients[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_QUIT(self, server, session, envelope):
        return self.quit_reply or "221 Bye"

    async def handle_DATA(self, server, session, envelope):
        if self.hold is not None and not self.hold.is_set():
            self.holding.set()
            while not self.hold.is_set():
                await asyncio.sleep(0.02)
            return "451 4.3.0 Try again later"
        if self.refuse_data is not None:
            return self.refuse_data
        self.envelopes.append(envelope)
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def clear(self):
        self.messages.clear()
        self.envelopes.clear()
        self.hold = None
        self.holding.clear()
        self.refuse_recipients.clear()
        self.refuse_data = None
        self.quit_reply = None

    def wait_for(self, count: int, timeout: float = 10):
        """The messages accepted so far, once there are at least `count`."""
        eventually(lambda: len(self.messages) >= count, timeout=timeout, interval=0.02, what=f"{count} message(s) at the SMTP server")
        return self.messages


@pytest.fixture(scope="session")
def smtp_server():
    capture = SmtpCapture()
    port = free_port()
    controller = Controller(capture, hostname="127.0.0.1", port=port)
    controller.start()
    capture.url = f"smtp://127.0.0.1:{port}"
    yield capture
    controller.stop()


@pytest.fixture
def smtp(smtp_server):
    smtp_server.clear()
    yield smtp_server
    smtp_server.clear()


def on_postgresql() -> bool:
    return os.environ.get("PREFS_TEST_DATABASE_URL", "").startswith("postgresql")


def pytest_collection_modifyitems(config, items):
    if on_postgresql():
        return
    only = pytest.mark.skip(reason="PostgreSQL only (set PREFS_TEST_DATABASE_URL; .ci/run does)")
    for item in items:
        if "postgresql_only" in item.keywords:
            item.add_marker(only)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    return os.environ.get("PREFS_TEST_DATABASE_URL") or f"sqlite:///{tmp_path_factory.mktemp('db') / 'prefs-test.db'}"


@pytest.fixture(scope="session")
def broker_url() -> str:
    return os.environ.get("PREFS_TEST_BROKER_URL", "")


@pytest.fixture(scope="session")
def base_settings(database_url, broker_url, smtp_server, tmp_path_factory) -> dict:
    return {
        "env": "test",
        "database_url": database_url,
        "broker_url": broker_url,
        "secret_keys": (TEST_SECRET,),
        "identifier_key": TEST_IDENTIFIER_KEY,
        "ledger_signing_key": TEST_LEDGER_SIGNING_KEY,
        "mail_url": smtp_server.url,
        "var_dir": tmp_path_factory.mktemp("var"),
        "api_key_cache_seconds": 0,
        "sweep_interval_seconds": 0.2,
        "job_resend_after_seconds": 0.5,
        "stripe_webhook_secret": TEST_WEBHOOK_SECRET,
        "escalation_emails": ("oncall@example.com",),
        "org_name": "Example Test Ltd",
        "support_email": "help@example.com",
    }


@pytest.fixture(scope="session")
def migrated(base_settings):
    app = create_app(**base_settings)
    migrations.register(app)
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()
    return True


def _empty_tables(app) -> None:
    with app.app_context():
        tables = [t for t in reversed(db.metadata.sorted_tables) if t.name not in KEEP_TABLES]
        if db.engine.dialect.name == "postgresql":
            db.session.execute(sa.text("TRUNCATE " + ", ".join(t.name for t in tables) + " RESTART IDENTITY"))
            # Ids restart, so the register lists' tables go too.
            with db.session.connection().connection.cursor() as cursor:
                for table in partitions.tables(cursor):
                    cursor.execute(f"DROP TABLE {table}")
        else:
            for table in tables:
                db.session.execute(table.delete())
        db.session.commit()
        db.engine.dispose()


def _flush_broker(app) -> None:
    broker = app.extensions["prefs.jobs"].broker
    if hasattr(broker, "flush_all"):
        with contextlib.suppress(Exception):  # a broker a test took down has nothing to flush
            broker.flush_all()


@pytest.fixture
def make_app(migrated, base_settings, tmp_path):
    """Build apps on the test database; all are stopped and the tables emptied after the test.
    The apps of one test share an export folder of the test's own (a `prefs worker`
    started with var_dir=tmp_path uses it too), so no test sees another's exports."""
    apps = []

    def factory(**overrides):
        app = create_app(**{**base_settings, "export_dir": tmp_path / "exports", **overrides})
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.extensions["prefs.jobs"].stop()
        _flush_broker(app)
    if apps:
        _empty_tables(apps[0])
        for app in apps:
            with app.app_context():
                db.engine.dispose()


@pytest.fixture
def app(make_app):
    app = make_app()
    _flush_broker(app)
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def api_key(app):
    """api_key("consent:read", ...) -> Authorization headers for a fresh key."""

    def make(*scopes: str, name: str = "test") -> dict:
        with app.app_context():
            _, plaintext = access.create_key(name=name, scopes=list(scopes), actor="test")
            db.session.commit()
        return {"Authorization": f"Bearer {plaintext}"}

    return make


@pytest.fixture
def admin(api_key) -> dict:
    return api_key("admin")


@pytest.fixture
def api(client, headers) -> Api:
    """The JSON API with the key of the requesting module's `headers` fixture."""
    return Api(client, headers)


class InProcessWorker:
    def __init__(self, app):
        self.app = app

    def wait(self, timeout: float = 15, allow_errors: bool = False) -> None:
        """Block until no job is due or running. A job that failed an attempt
        (and waits to retry) is an error here unless the test expects it."""

        def settled() -> bool:
            with self.app.app_context():
                rows = db.session.execute(
                    sa.select(Job.id, Job.kind, Job.status, Job.run_after, Job.last_error).where(Job.status.in_((RUNNING, QUEUED)))
                ).all()
                db.session.rollback()
            broken = [row for row in rows if row.last_error]
            if broken and not allow_errors:
                raise AssertionError(f"jobs failed an attempt: {[(r.kind, r.last_error) for r in broken]}")
            now = utcnow()
            return not [row for row in rows if row.status == RUNNING or row.run_after <= now]

        eventually(settled, timeout=timeout, interval=0.02, what="every due job to finish")

    def drain(self, timeout: float = 15) -> None:
        """Block until every message sent to the broker has been handled
        (a duplicate refused included), not only until the jobs are done."""
        system = self.app.extensions["prefs.jobs"]
        system.broker.join(QUEUE_NAME, timeout=int(timeout * 1000))
        system.worker.join()


@pytest.fixture
def worker(app):
    """The app's own dramatiq worker and sweeper, running in this process."""
    app.extensions["prefs.jobs"].start(threads=2)
    yield InProcessWorker(app)
    app.extensions["prefs.jobs"].stop()


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


@pytest.fixture
def worker_processes():
    """Collects `prefs worker` processes a test starts; all are killed at the
    end, and their logs printed (a failed test's report shows them)."""
    started = []
    yield started
    for number, process in enumerate(started, 1):
        if process.poll() is None:
            process.kill()
        process.wait(10)
        print(f"--- worker {number} (exit {process.returncode}) logged:\n{worker_log(process)}")


@pytest.fixture
def usual_umask():
    """The umask most systems start services with (022): without the modes the
    service sets itself, its files would come out 0644 and its folders 0755."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)
