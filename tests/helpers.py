"""Small helpers shared by tests."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

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


def jobs_settled(app, *kinds: str) -> bool:
    """Whether no job of these kinds waits or runs: nothing is left that could
    still act (send a mail a second time, say)."""
    with app.app_context():
        left = db.session.scalar(
            sa.select(sa.func.count()).select_from(Job).where(Job.kind.in_(kinds), Job.status.in_(("queued", "running")))
        )
        db.session.rollback()
    return left == 0


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
    # Its log goes to a file, not a pipe: nobody reads a pipe while the test
    # waits, and a full one would stall the worker. The test's report shows it.
    log_path = var_dir / f"worker-{uuid.uuid4().hex[:8]}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([prefs, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
    process.log_path = log_path  # type: ignore[attr-defined]
    return process


def worker_log(process: subprocess.Popen, tail: int = 4000) -> str:
    """The end of what a `worker_process` logged."""
    return process.log_path.read_text(errors="replace")[-tail:]  # type: ignore[attr-defined]


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


class Api:
    """The JSON API as tests call it: the Flask test client and one key's
    headers. Calls that set a test up say what status they expect (and fail the
    test otherwise); calls a test is about return the response to assert on."""

    DEFAULTS: ClassVar[dict[str, str]] = {"channel": "email", "purpose": "newsletter"}

    def __init__(self, client, headers: dict):
        self.client, self.headers = client, headers

    def get(self, path: str, **query):
        return self.client.get(path, query_string=query, headers=self.headers)

    def post(self, path: str, body=None):
        return self.client.post(path, json=body, headers=self.headers)

    def patch(self, path: str, body):
        return self.client.patch(path, json=body, headers=self.headers)

    @staticmethod
    def _expecting(response, status: int | None):
        if status is not None:
            assert response.status_code == status, (response.status_code, response.get_json(silent=True))
        return response

    def record(self, *, expect: int | None = 201, **fields):
        """POST /v1/consents: a grant of the email newsletter unless `fields` say otherwise."""
        return self._expecting(self.post("/v1/consents", {**self.DEFAULTS, "status": "granted", **fields}), expect)

    def check(self, **query):
        """GET /v1/consent/check, for the email newsletter unless `query` says otherwise."""
        return self.get("/v1/consent/check", **{**self.DEFAULTS, **query})

    def bulk(self, recipients: list, **fields):
        """POST /v1/consent/check for many recipients."""
        return self.post("/v1/consent/check", {**self.DEFAULTS, "recipients": recipients, **fields})

    def reasons(self, recipients: list, **fields) -> list[str]:
        """The reason of each answer of a bulk check, in order."""
        return [r["reason"] for r in self._expecting(self.bulk(recipients, **fields), 200).json["results"]]

    def links(self, **fields) -> dict:
        """POST /v1/unsubscribe-links (the newsletter unless `fields` say otherwise)."""
        return self._expecting(self.post("/v1/unsubscribe-links", {"purpose": "newsletter", **fields}), 201).json

    def changes(self, *, after: str | None = None, limit: int = 1000) -> dict:
        """One page of GET /v1/consent/changes."""
        query = {"limit": limit} | ({"after": after} if after else {})
        return self._expecting(self.get("/v1/consent/changes", **query), 200).json

    def states(self, subject_id: str) -> dict[tuple[str, str], str | None]:
        """{(channel, purpose): status} from GET /v1/subjects/{id}/consents."""
        body = self._expecting(self.get(f"/v1/subjects/{subject_id}/consents"), 200).json
        return {(c["channel"], c["purpose"]): c["status"] for c in body["consents"]}


def screen_list(
    client, headers: dict, *, pair: tuple[str, str], key: str, recipients: list[str], as_csv: bool
) -> list[tuple[str, bool, str]]:
    """Whole-list screening of `recipients` (a CSV column beside another, quoted
    where a postal address holds commas, or NDJSON objects): (recipient,
    allowed, reason) for each line, in order."""
    query = {"channel": pair[0], "purpose": pair[1], "identifier_type": key}
    if as_csv:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([("note", key), *[("x", r) for r in recipients]])
        body, content_type, query["column"] = out.getvalue().encode(), "text/csv", key
    else:
        body, content_type = "".join(json.dumps({"recipient": r}) + "\n" for r in recipients).encode(), "application/x-ndjson"
    response = client.post("/v1/consent/screen", query_string=query, data=body, headers={**headers, "Content-Type": content_type})
    assert response.status_code == 200, response.get_data(as_text=True)
    text = response.get_data(as_text=True)
    if as_csv:
        return [(r["recipient"], r["allowed"] == "true", r["reason"]) for r in csv.DictReader(io.StringIO(text))]
    return [(r["recipient"], r["allowed"], r["reason"]) for r in map(json.loads, text.splitlines())]
