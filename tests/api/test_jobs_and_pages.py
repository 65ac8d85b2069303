"""GET /v1/jobs with retry and cancel (admin keys), and GET /v1/requests read
a page at a time by an opaque cursor; both in the OpenAPI document."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import jsonschema_rs
import pytest
import sqlalchemy as sa

from prefs_service.extensions import db
from prefs_service.rights.models import RightsRequest
from tests.failing_jobs import CLOSED_PORT, job_row, mail_job_that_fails


@pytest.fixture
def failing(make_app, smtp):
    """An app whose mail cannot go out, with one failed and one retrying job."""
    app = make_app(mail_url=CLOSED_PORT)
    failed = mail_job_that_fails(app, key="api-failed", recipient="secret.reader@example.com")
    retrying = mail_job_that_fails(app, key="api-retrying", for_good=False)
    return app, app.test_client(), failed, retrying


def _admin(app) -> dict:
    from prefs_service.access import service as access

    with app.app_context():
        _, key = access.create_key(name="ops", scopes=["admin"], actor="test")
        db.session.commit()
    return {"Authorization": f"Bearer {key}"}


def next_url(response) -> str | None:
    link = response.headers.get("Link")
    if link is None:
        return None
    match = re.fullmatch(r'<([^>]+)>; rel="next"', link)
    assert match, link
    return match.group(1)


def test_jobs_are_for_admin_keys_only(failing, api_key):
    app, client, failed, _ = failing
    reader = api_key("requests:read", "requests:write")
    assert client.get("/v1/jobs").status_code == 401
    assert client.get("/v1/jobs", headers=reader).status_code == 403
    assert client.post(f"/v1/jobs/{failed}/retry", headers=reader).status_code == 403
    assert client.post(f"/v1/jobs/{failed}/cancel", headers=reader).status_code == 403
    assert job_row(app, failed).status == "failed"


def test_failed_and_retrying_jobs_are_listed_with_what_staff_need(failing):
    app, client, failed, retrying = failing
    admin = _admin(app)
    both = client.get("/v1/jobs", headers=admin)
    assert both.status_code == 200 and "Link" not in both.headers
    assert [(j["id"], j["status"], j["attempts"], j["max_attempts"]) for j in both.json] == [
        (retrying, "retrying", 1, 8),
        (failed, "failed", 1, 1),
    ]
    by_id = {j["id"]: j for j in both.json}
    assert by_id[failed]["next_run_at"] is None and by_id[retrying]["next_run_at"] is not None
    assert by_id[failed]["kind"] == "notices.deliver" and by_id[failed]["request_reference"] is None
    assert by_id[failed]["last_error"].startswith("ConnectionRefusedError: [Errno 111] Connection refused; mail server 127.0.0.x:1")
    assert "secret" not in both.get_data(as_text=True)
    assert [j["id"] for j in client.get("/v1/jobs?status=failed", headers=admin).json] == [failed]
    assert [j["id"] for j in client.get("/v1/jobs?status=retrying", headers=admin).json] == [retrying]
    assert [j["id"] for j in client.get("/v1/jobs?status=failed&status=retrying", headers=admin).json] == [retrying, failed]
    wrong = client.get("/v1/jobs?status=done", headers=admin)
    assert wrong.status_code == 422 and "status" in wrong.json["errors"]


def test_retry_and_cancel_answer_the_job_or_say_why_not(failing):
    app, client, failed, retrying = failing
    admin = _admin(app)
    retried = client.post(f"/v1/jobs/{failed}/retry", headers=admin)
    assert retried.status_code == 200
    assert (retried.json["status"], retried.json["attempts"], retried.json["max_attempts"]) == ("retrying", 1, 4)
    again = client.post(f"/v1/jobs/{failed}/retry", headers=admin)
    assert again.status_code == 409 and again.json["detail"] == "Only a failed job can be retried; this one is retrying."
    assert client.post(f"/v1/jobs/{retrying}/retry", headers=admin).status_code == 409
    cancelled = client.post(f"/v1/jobs/{retrying}/cancel", headers=admin)
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled" and cancelled.json["finished_at"]
    assert client.post(f"/v1/jobs/{retrying}/cancel", headers=admin).status_code == 409
    assert client.post("/v1/jobs/99999/retry", headers=admin).status_code == 404
    assert client.post("/v1/jobs/99999999999/cancel", headers=admin).status_code == 422
    assert [(j["id"], j["status"]) for j in client.get("/v1/jobs", headers=admin).json] == [(failed, "retrying")]
    with app.app_context():
        from prefs_service.audit import AuditEvent

        actors = db.session.scalars(sa.select(AuditEvent.actor).where(AuditEvent.target_type == "job")).all()
        assert len(actors) == 2 and all(a.startswith("api_key:") for a in actors)


def test_a_running_job_cannot_be_cancelled(failing):
    app, client, _, retrying = failing
    admin = _admin(app)
    with app.app_context():
        from prefs_service.outbox import Job

        db.session.execute(sa.update(Job).where(Job.id == retrying).values(status="running"))  # a worker holds it
        db.session.commit()
    refused = client.post(f"/v1/jobs/{retrying}/cancel", headers=admin)
    assert refused.status_code == 409 and "running now" in refused.json["detail"]


def test_jobs_are_paged_by_cursor_without_gaps_or_repeats(make_app, smtp):
    app = make_app(mail_url=CLOSED_PORT)
    made = [mail_job_that_fails(app, key=f"paged-{i}") for i in range(7)]
    client, admin = app.test_client(), _admin(app)
    seen, url = [], "/v1/jobs?limit=3&status=failed"
    while url:
        page = client.get(url, headers=admin)
        assert page.status_code == 200 and len(page.json) <= 3
        seen += [j["id"] for j in page.json]
        url = next_url(page)
        if url:
            assert parse_qs(urlsplit(url).query)["status"] == ["failed"]
    assert seen == made[::-1]


@pytest.fixture
def headers(api_key):
    return api_key("admin")


def _make(client, headers, email, *, verified=True, kind="correction"):
    body = {"type": kind, "email": email, "verified": verified}
    if kind == "correction":
        body["changes"] = {"name": "New Name"}
    made = client.post("/v1/requests", json=body, headers=headers)
    assert made.status_code == 201, made.json
    return made.json


def test_the_request_queue_is_read_a_page_at_a_time_open_work_by_due_date_first(app, client, headers):
    made = [_make(client, headers, f"p{i}@example.com") for i in range(5)]
    unverified = _make(client, headers, "later@example.com", verified=False)
    rejected = made[1]
    client.post(f"/v1/requests/{rejected['id']}/reject", json={"reason": "Duplicate."}, headers=headers)
    with app.app_context():  # due dates out of their creation order
        for offset, item in zip((9, 3, 1, 7, 5), made, strict=True):
            request = db.session.get(RightsRequest, item["id"])
            request.due_at = request.due_at - timedelta(days=offset)
        db.session.commit()
    # Earliest due first (9, 7, 5 and 1 days earlier), then the unverified one (no date yet), then the closed one.
    expected = [made[0]["id"], made[3]["id"], made[4]["id"], made[2]["id"], unverified["id"], rejected["id"]]

    pages, url = [], "/v1/requests?limit=2"
    while url:
        page = client.get(url, headers=headers)
        assert page.status_code == 200
        pages.append([item["id"] for item in page.json])
        url = next_url(page)
    assert pages == [expected[0:2], expected[2:4], expected[4:6]]
    whole = client.get("/v1/requests", headers=headers)
    assert [item["id"] for item in whole.json] == expected and "Link" not in whole.headers
    open_only = client.get("/v1/requests?status=awaiting_review&limit=3", headers=headers)
    assert [item["id"] for item in open_only.json] == expected[:3]
    rest = client.get(next_url(open_only), headers=headers)
    assert [item["id"] for item in rest.json] == expected[3:4] and "Link" not in rest.headers


@pytest.mark.parametrize("cursor", ["not-a-cursor!", "", "1.2", "2.0.1", "-1", " 1", "1" * 19, "A" * 500, "\u00e9t\u00e9", "1.2.3\n"])
def test_a_bad_cursor_is_a_400_problem(client, headers, cursor):
    for path in ("/v1/requests", "/v1/jobs"):
        answer = client.get(path, query_string={"cursor": cursor}, headers=headers)
        assert answer.status_code == 400, (path, cursor, answer.json)
        assert answer.content_type == "application/problem+json" and "cursor" in answer.json["errors"]


def test_every_cursor_of_the_documented_pattern_reads_a_page(client, headers):
    _make(client, headers, "one@example.com")
    assert client.get("/v1/requests", query_string={"cursor": "1." + "9" * 18 + "." + "9" * 18}, headers=headers).json == []
    assert len(client.get("/v1/requests", query_string={"cursor": "0.0.0"}, headers=headers).json) == 1
    assert client.get("/v1/jobs", query_string={"cursor": "0"}, headers=headers).json == []


def test_both_lists_are_documented_with_their_cursor_and_link(client, headers, failing):
    spec = client.get("/openapi.json").json
    for path in ("/v1/requests", "/v1/jobs"):
        operation = spec["paths"][path]["get"]
        assert {p["name"] for p in operation["parameters"]} >= {"cursor", "limit", "status"}
        [cursor] = [p for p in operation["parameters"] if p["name"] == "cursor"]
        assert cursor["schema"]["pattern"].startswith("^") and "Link" in cursor["description"]
        assert "Link" in operation["responses"]["200"]["headers"]
        assert "400" in operation["responses"]
    for path in ("/v1/jobs/{job_id}/retry", "/v1/jobs/{job_id}/cancel"):
        assert {"200", "401", "403", "404", "409", "422"} <= set(spec["paths"][path]["post"]["responses"])
        assert spec["paths"][path]["post"]["security"]
    app, jobs_client, _, _ = failing
    body = jobs_client.get("/v1/jobs", headers=_admin(app)).json
    schema = spec["paths"]["/v1/jobs"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    jsonschema_rs.validator_for({**schema, "components": spec["components"]}).validate(body)
