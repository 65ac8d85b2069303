"""A real worker process killed with -9 in the middle of an export, of a run of
erasures and of a run of corrections: another worker finishes, and each request
ends with one export, one set of mails and no half-erased subject."""

from __future__ import annotations

import json
import signal
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from prefs_service.consent.models import ConsentEvent
from prefs_service.extensions import db
from prefs_service.job_kinds import JobKind
from prefs_service.outbox import Job
from prefs_service.rights.models import RightsRequest
from prefs_service.subjects.models import Identifier, Subject
from tests.helpers import eventually, jobs_settled, worker_log, worker_process
from tests.rights.conftest import unzip


def _jobs(app, kind):
    with app.app_context():
        rows = db.session.execute(sa.select(Job.status, Job.attempts).where(Job.kind == kind)).all()
        db.session.rollback()
        return rows


def _kill_when(app, kind, predicate, process):
    try:
        eventually(lambda: predicate(_jobs(app, kind)), timeout=60, what=f"{kind} in the state to kill it")
    except AssertionError:
        process.kill()
        raise AssertionError(f"never saw {kind} in the state to kill it: {_jobs(app, kind)}\n{worker_log(process)}") from None
    process.send_signal(signal.SIGKILL)
    process.wait(10)


def test_killed_mid_export_one_export_and_one_mail(app, client, api_key, smtp, base_settings, tmp_path, worker_processes):
    headers = api_key("admin")
    subject = client.post("/v1/subjects", json={"email": "long.history@example.com"}, headers=headers).json
    with app.app_context():  # a long history, so the export takes a while
        now = datetime.now(UTC)
        rows = [{"subject_id": uuid.UUID(subject["id"]), "channel": "email", "purpose": "newsletter",
                 "status": ("granted", "withdrawn")[i % 2], "source": "import", "occurred_at": now,
                 "recorded_at": now, "recorded_by": "test", "evidence_note": f"row {i}"} for i in range(60_000)]  # fmt: skip
        db.session.execute(sa.insert(ConsentEvent), rows)
        db.session.commit()
    made = client.post("/v1/requests", json={"type": "access", "subject_id": subject["id"], "verified": True}, headers=headers).json
    # A lease a slow machine's export steps stay well inside (with the 2 s of
    # the other crash tests, CI once timed out here), short enough to take over soon.
    env = {"PREFS_EXPORT_DIR": str(app.config["PREFS"].export_dir), "PREFS_JOB_LEASE_SECONDS": "6"}

    first = worker_process(base_settings, tmp_path, **env)
    worker_processes.append(first)
    _kill_when(app, JobKind.RIGHTS_EXPORT, lambda jobs: jobs and jobs[0][0] == "running", first)
    second = worker_process(base_settings, tmp_path, **env)
    worker_processes.append(second)
    eventually(
        lambda: client.get(f"/v1/requests/{made['id']}", headers=headers).json["status"] == "completed", timeout=240, what="the export"
    )

    [(status, attempts)] = _jobs(app, JobKind.RIGHTS_EXPORT)
    assert status == "done" and attempts >= 2
    ready = lambda: [m for m in smtp.messages if "ready to download" in m["Subject"]]  # noqa: E731
    eventually(ready, timeout=30, what="the download mail")
    eventually(
        lambda: jobs_settled(app, JobKind.RIGHTS_EXPORT, JobKind.NOTICE_DELIVER), timeout=30, what="every export and mail job to finish"
    )
    assert len(ready()) == 1
    exports = list(app.config["PREFS"].export_dir.glob("*.zip"))
    assert [p.name for p in exports] == [f"{made['reference']}.zip"]
    data = json.loads(unzip(exports[0].read_bytes())["data.json"])
    assert len(data["consent_history"]) == 60_000


def test_killed_mid_erasures_every_subject_is_whole_or_gone(app, client, api_key, smtp, base_settings, tmp_path, worker_processes):
    headers = api_key("admin")
    count = 40
    made = []
    for i in range(count):
        subject = client.post(
            "/v1/subjects", json={"email": f"erase{i}@example.com", "phone": f"+4420794601{i:02d}", "name": f"Person {i}"}, headers=headers
        ).json
        made.append(
            client.post("/v1/requests", json={"type": "erasure", "subject_id": subject["id"], "verified": True}, headers=headers).json
        )

    first = worker_process(base_settings, tmp_path)
    worker_processes.append(first)
    _kill_when(app, JobKind.RIGHTS_ERASE, lambda jobs: sum(1 for s, _ in jobs if s == "done") >= 3, first)
    with app.app_context():  # after the kill: every subject is whole or fully erased, nothing between
        for subject in db.session.scalars(sa.select(Subject)):
            held = db.session.scalars(sa.select(Identifier.kind).where(Identifier.subject_id == subject.id)).all()
            assert (subject.erased_at is None and subject.name and sorted(held) == ["email", "phone"]) or (
                subject.erased_at is not None and subject.name is None and held == []
            )
        db.session.rollback()
    second = worker_process(base_settings, tmp_path)
    worker_processes.append(second)

    def all_done():
        return all(client.get(f"/v1/requests/{m['id']}", headers=headers).json["status"] == "completed" for m in made)

    eventually(all_done, timeout=120, what="every erasure")
    confirmations = lambda: [m for m in smtp.messages if "erased" in m["Subject"]]  # noqa: E731
    eventually(lambda: len(confirmations()) >= count, timeout=60, what="every confirmation")
    eventually(
        lambda: jobs_settled(app, JobKind.RIGHTS_ERASE, JobKind.NOTICE_DELIVER), timeout=60, what="every erasure and mail job to finish"
    )
    assert sorted(m["To"] for m in confirmations()) == sorted(f"erase{i}@example.com" for i in range(count))
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Identifier)) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Subject).where(Subject.erased_at.is_(None))) == 0


def test_killed_mid_corrections_each_applied_once(app, client, api_key, smtp, base_settings, tmp_path, worker_processes):
    headers = api_key("admin")
    count = 30
    made = []
    for i in range(count):
        subject = client.post("/v1/subjects", json={"email": f"fix{i}@example.com"}, headers=headers).json
        item = client.post(
            "/v1/requests",
            json={"type": "correction", "subject_id": subject["id"], "changes": {"email": f"fixed{i}@example.com"}, "verified": True},
            headers=headers,
        ).json
        client.post(f"/v1/requests/{item['id']}/approve", headers=headers)
        made.append((subject["id"], item))

    first = worker_process(base_settings, tmp_path)
    worker_processes.append(first)
    _kill_when(app, JobKind.RIGHTS_CORRECT, lambda jobs: sum(1 for s, _ in jobs if s == "done") >= 3, first)
    second = worker_process(base_settings, tmp_path)
    worker_processes.append(second)

    def all_done():
        return all(client.get(f"/v1/requests/{item['id']}", headers=headers).json["status"] == "completed" for _, item in made)

    eventually(all_done, timeout=120, what="every correction")
    for i, (subject_id, _) in enumerate(made):
        assert client.get(f"/v1/subjects/{subject_id}", headers=headers).json["email"] == f"fixed{i}@example.com"
    corrected = lambda: [m for m in smtp.messages if "corrected" in m["Subject"]]  # noqa: E731
    eventually(lambda: len(corrected()) >= count, timeout=60, what="every confirmation")
    eventually(
        lambda: jobs_settled(app, JobKind.RIGHTS_CORRECT, JobKind.NOTICE_DELIVER),
        timeout=60,
        what="every correction and mail job to finish",
    )
    assert len(corrected()) == count
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(RightsRequest).where(RightsRequest.status != "completed")) == 0
