"""Export files hold a person's data no longer than they must, and only the service's
user can read them: a killed worker's partial file is removed by the next attempt of
the same export, or by the purge within minutes (never while its attempt still holds
the job's lease); erasure can remove every file of a request; exports are 0600 in
0700 folders. Partial files here are made by real `prefs worker` processes killed -9
in the middle of an export."""

from __future__ import annotations

import json
import signal
import stat
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from prefs_service.clock import utcnow
from prefs_service.consent.models import ConsentEvent
from prefs_service.extensions import db
from prefs_service.jobs.dispatch import PERIODIC, jobs
from prefs_service.outbox import RUNNING, Job
from prefs_service.rights import work as rights_work
from prefs_service.rights.export import remove_request_files
from tests.helpers import eventually, worker_process
from tests.rights.conftest import unzip

HISTORY_ROWS = 60_000  # long enough for the export to be caught half-written


pytestmark = pytest.mark.usefixtures("usual_umask")


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _export_folder(app):
    return app.config["PREFS"].export_dir


def _partials(app):
    return sorted(_export_folder(app).glob("*.zip.part*"))


def _export_job(app):
    with app.app_context():
        job = db.session.scalars(sa.select(Job).where(Job.kind == "requests.export")).one()
        db.session.expunge(job)
        db.session.rollback()
        return job


def _access_request_with_long_history(app, client, headers, email):
    subject = client.post("/v1/subjects", json={"email": email}, headers=headers).json
    with app.app_context():
        now = utcnow()
        rows = [{"subject_id": uuid.UUID(subject["id"]), "channel": "email", "purpose": "newsletter",
                 "status": ("granted", "withdrawn")[i % 2], "source": "import", "occurred_at": now,
                 "recorded_at": now, "recorded_by": "test", "evidence_note": f"row {i}"} for i in range(HISTORY_ROWS)]  # fmt: skip
        db.session.execute(sa.insert(ConsentEvent), rows)
        db.session.commit()
    return client.post("/v1/requests", json={"type": "access", "subject_id": subject["id"], "verified": True}, headers=headers).json


def _kill_mid_export(app, base_settings, tmp_path, worker_processes, *, lease_seconds):
    """A real worker starts the export and is killed -9 while its partial file is
    being written; returns that partial file."""
    env = {"PREFS_EXPORT_DIR": str(_export_folder(app)), "PREFS_JOB_LEASE_SECONDS": str(lease_seconds)}
    process = worker_process(base_settings, tmp_path, **env)
    worker_processes.append(process)
    writing = eventually(
        lambda: _partials(app) and _export_job(app).status == RUNNING, timeout=60, interval=0.02, what="the export to be half-written"
    )
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert writing, f"never saw the export being written\n{process.stderr.read()[-3000:]}"
    [partial] = _partials(app)  # still there: the worker never got to finish it
    assert not list(_export_folder(app).glob("*.zip")), "the export finished before the kill; make the history longer"
    return partial


def _purge(app, *, now):
    with app.app_context():
        rights_work.purge_expired_exports(now=now)
        db.session.commit()


def test_the_next_attempt_removes_a_killed_attempts_partial_file(app, client, headers, base_settings, tmp_path, worker_processes):
    made = _access_request_with_long_history(app, client, headers, "long.history@example.com")
    # A lease longer than the killed worker's attempt runs before the kill (the export writes
    # receipts too): with 2 s, under load, its own sweeper took the job back once more first.
    dead = _kill_mid_export(app, base_settings, tmp_path, worker_processes, lease_seconds=8)

    second = worker_process(base_settings, tmp_path, PREFS_EXPORT_DIR=str(_export_folder(app)))
    worker_processes.append(second)
    completed = eventually(
        lambda: client.get(f"/v1/requests/{made['id']}", headers=headers).json["status"] == "completed", timeout=90, what="the export"
    )
    assert completed, second.stderr.read()[-3000:] if second.poll() is not None else "export never completed"

    assert _export_job(app).attempts == 2
    assert not dead.exists()  # seconds old, so not the purge's doing: the second attempt removed it
    export = _export_folder(app) / f"{made['reference']}.zip"
    assert sorted(_export_folder(app).iterdir()) == [export]
    assert len(json.loads(unzip(export.read_bytes())["data.json"])["consent_history"]) == HISTORY_ROWS
    assert _mode(export) == 0o600 and _mode(_export_folder(app)) == 0o700


def test_the_purge_removes_a_dead_attempts_partial_file_after_a_few_minutes(
    app, client, headers, base_settings, tmp_path, worker_processes
):
    _access_request_with_long_history(app, client, headers, "long.history@example.com")
    dead = _kill_mid_export(app, base_settings, tmp_path, worker_processes, lease_seconds=2)
    assert eventually(lambda: _export_job(app).lease_expires_at < utcnow(), timeout=10, what="the lease to run out")

    _purge(app, now=utcnow() + timedelta(minutes=1))
    assert dead.exists()  # written a minute ago: a live worker could still be on it
    _purge(app, now=utcnow() + timedelta(minutes=6))
    assert not dead.exists()


def test_the_purge_keeps_a_partial_file_while_its_attempt_holds_the_lease(app, client, headers, base_settings, tmp_path, worker_processes):
    _access_request_with_long_history(app, client, headers, "long.history@example.com")
    partial = _kill_mid_export(app, base_settings, tmp_path, worker_processes, lease_seconds=3600)

    # Nobody wrote to it for ten minutes, but its job's lease says a worker may still be writing.
    _purge(app, now=utcnow() + timedelta(minutes=10))
    assert partial.exists()
    lease_expires_at = _export_job(app).lease_expires_at
    _purge(app, now=lease_expires_at + timedelta(seconds=1))
    assert not partial.exists()


def test_remove_request_files_removes_a_requests_export_and_partial_files_only(
    app, client, headers, base_settings, tmp_path, worker_processes
):
    _export_folder(app).mkdir(mode=0o755)  # made by an older version: tightened
    dying = _access_request_with_long_history(app, client, headers, "long.history@example.com")
    partial = _kill_mid_export(app, base_settings, tmp_path, worker_processes, lease_seconds=3600)
    # Another person's export, finished by an in-process worker (the killed one's job keeps its lease).
    app.extensions["prefs.jobs"].start(threads=1)
    other = client.post("/v1/subjects", json={"email": "other@example.com"}, headers=headers).json
    finished = client.post("/v1/requests", json={"type": "access", "subject_id": other["id"], "verified": True}, headers=headers).json
    assert eventually(
        lambda: client.get(f"/v1/requests/{finished['id']}", headers=headers).json["status"] == "completed", timeout=30, what="the export"
    )
    export = _export_folder(app) / f"{finished['reference']}.zip"
    assert _mode(export) == 0o600 and _mode(_export_folder(app)) == 0o700

    assert remove_request_files(_export_folder(app), dying["reference"]) == 1
    assert not partial.exists() and export.exists()
    assert remove_request_files(_export_folder(app), finished["reference"]) == 1
    assert list(_export_folder(app).iterdir()) == []
    assert remove_request_files(_export_folder(app), finished["reference"]) == 0


def test_an_attempt_that_fails_removes_its_own_partial_file(app, client, headers):
    subject = client.post("/v1/subjects", json={"email": "plain@example.com"}, headers=headers).json
    made = client.post("/v1/requests", json={"type": "access", "subject_id": subject["id"], "verified": True}, headers=headers).json
    in_the_way = _export_folder(app) / f"{made['reference']}.zip" / "x"  # the finished file cannot be moved into place
    in_the_way.mkdir(parents=True)
    with app.app_context():
        job_id = db.session.scalar(sa.select(Job.id).where(Job.kind == "requests.export"))
        db.session.rollback()
        assert jobs().execute(job_id) == "queued"  # to be retried
    error = _export_job(app).last_error
    assert error.startswith("IsADirectoryError: [Errno 21] Is a directory:") and f"{made['reference']}.zip" in error
    assert _partials(app) == []


def test_the_purge_runs_every_few_minutes():
    [purge] = [p for p in PERIODIC if p.kind == "requests.purge_exports"]
    assert purge.every <= timedelta(minutes=5)
