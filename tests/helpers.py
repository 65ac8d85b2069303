"""Small helpers shared by tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from prefs_service.extensions import db
from prefs_service.notices import service as notices
from prefs_service.notices.models import Notice
from prefs_service.outbox import Job


def queue_preferences_mail(app, *, key: str = "prefs-link-1", recipient: str = "reader@example.com") -> int:
    """Queue one real notice through the notices service, committed."""
    with app.app_context():
        notice_id = notices.queue(
            kind="preferences_link",
            recipient=recipient,
            template="preferences_link",
            context={"preferences_url": "https://prefs.example/preferences/abc", "valid_days": 30},
            idempotency_key=key,
        )
        db.session.commit()
        return notice_id


def jobs_of(app, kind: str | None = None) -> list[Job]:
    with app.app_context():
        stmt = sa.select(Job).order_by(Job.id)
        if kind:
            stmt = stmt.where(Job.kind == kind)
        rows = list(db.session.scalars(stmt))
        db.session.close()  # detach loaded, not expired
        return rows


def notice(app, notice_id: int) -> Notice:
    with app.app_context():
        row = db.session.get(Notice, notice_id)
        db.session.close()
        return row


def worker_process(base_settings: dict, var_dir: Path, **extra_env) -> subprocess.Popen:
    """A real `prefs worker` process on the test database and broker, with a short
    lease so a killed one's job is taken over quickly."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PREFS_ENV": "test",
        "PREFS_DATABASE_URL": base_settings["database_url"],
        "PREFS_BROKER_URL": base_settings["broker_url"],
        "PREFS_SECRET_KEYS": base_settings["secret_keys"][0],
        "PREFS_IDENTIFIER_KEY": base_settings["identifier_key"],
        "PREFS_MAIL_URL": base_settings["mail_url"],
        "PREFS_VAR_DIR": str(var_dir),
        "PREFS_SWEEP_INTERVAL_SECONDS": "0.2",
        "PREFS_JOB_RESEND_AFTER_SECONDS": "0.5",
        "PREFS_JOB_LEASE_SECONDS": "2",
        "PREFS_WORKER_THREADS": "2",
        **extra_env,
    }
    prefs = str(Path(sys.executable).parent / "prefs")
    return subprocess.Popen([prefs, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def plaintext_holders(app, needles: list[str]) -> list[tuple[str, str, str]]:
    """(table, column, needle) for every text, JSON or binary column of every
    table that holds one of `needles` (case-insensitive), read through SQL so
    nothing the ORM caches hides a row."""
    found = []
    lowered = [n.lower() for n in needles if n]
    with app.app_context():
        for table in db.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, (sa.String, sa.Text, sa.JSON, sa.LargeBinary))]
            if not columns:
                continue
            for row in db.session.execute(sa.select(*columns)):
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    found += [(table.name, column.name, n) for n in lowered if n in text.lower()]
        db.session.rollback()
    return found


def eventually(predicate: Callable[[], object], *, timeout: float, interval: float = 0.05, what: str = "the condition"):
    """Call `predicate` until it returns something truthy, and return that;
    fail the test if `timeout` seconds pass first. The one way tests wait."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
