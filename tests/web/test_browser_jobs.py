"""In real Chromium: a staff member finds a request whose export failed, reads
why on its page, and retries its job from the jobs page once the folder is fixed."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from prefs_service.cli import main
from prefs_service.extensions import db
from prefs_service.outbox import Job
from tests.conftest import free_port
from tests.helpers import eventually
from tests.web.test_browser import _serve, browser, chromium, pages  # noqa: F401 - the browser fixtures

PASSWORD = "a long staff password"


@pytest.fixture
def blocked_server(make_app, tmp_path):
    blocked = tmp_path / "exports"
    blocked.write_text("a file where the export folder should be")
    port = free_port()
    app = make_app(base_url=f"http://127.0.0.1:{port}", export_dir=blocked)
    server = _serve(app, port)
    yield app, blocked
    server.shutdown()


def test_a_failed_export_is_explained_and_retried_from_the_jobs_page(blocked_server, pages, api_key):  # noqa: F811 - fixture
    app, blocked = blocked_server
    client, headers = app.test_client(), api_key("admin")
    assert app.test_cli_runner().invoke(main, ["staff", "create", "officer@example.com"], input=PASSWORD + "\n").exit_code == 0
    subject = client.post("/v1/subjects", json={"email": "ann@example.com"}, headers=headers).json
    made = client.post("/v1/requests", json={"type": "access", "subject_id": subject["id"], "verified": True}, headers=headers).json
    with app.app_context():  # one attempt allowed, so it fails for good at once
        db.session.execute(sa.update(Job).where(Job.kind == "requests.export").values(max_attempts=1))
        db.session.commit()
    app.extensions["prefs.jobs"].start(threads=1)
    eventually(lambda: client.get(f"/v1/requests/{made['id']}", headers=headers).json["status"] == "failed", timeout=20, what="the failure")

    page = pages.new_page()
    base = app.config["PREFS"].base_url
    page.goto(f"{base}/staff/requests/{made['id']}")
    page.get_by_label("Email").fill("officer@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    job = page.get_by_role("region", name="Its job")
    assert "1 of 1" in job.inner_text() and f"File exists: '{blocked}'" in job.inner_text()

    job.get_by_role("link", name="All failing jobs").click()
    assert page.title().startswith("Jobs")
    row = page.get_by_role("row").filter(has_text=made["reference"])
    assert "failed" in row.inner_text()
    blocked.unlink()  # the folder is fixed
    row.get_by_role("button", name="Retry").click()
    assert "is queued again" in page.get_by_role("status").inner_text()

    eventually(
        lambda: client.get(f"/v1/requests/{made['id']}", headers=headers).json["status"] == "completed", timeout=20, what="the export"
    )
    page.goto(f"{base}/staff/requests/{made['id']}")
    assert page.get_by_text("completed by system").is_visible()
    assert page.get_by_role("region", name="Its job").count() == 0
