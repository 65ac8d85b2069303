"""Authorised agents end to end, through the API, the public form and the staff
console, with real jobs and a real SMTP server: the consumer confirms by the
mailed link, unless staff record a power of attorney; the signed permission is
checked, kept private, shown to staff only, and erased with the request's data."""

from __future__ import annotations

import base64
import contextlib
import io
import os
import re
import stat

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from prefs_service.rights.agents import RequestAgent
from tests.rights.conftest import link_in, mails_to
from tests.web.staff_support import csrf_of, post_form, signed_in, status_of

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n% I, Ann Example, authorise Dana Agent to act for me.\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
MAX = 5 * 1024 * 1024


@pytest.fixture
def headers(api_key):
    return api_key("admin")


def agent_body(permission: bytes = PDF, **fields) -> dict:
    return {
        "name": "Dana Agent",
        "email": "dana@agency.example.com",
        "organisation": "Privacy Agents Ltd",
        "registration": "C1234567",
        "permission": base64.b64encode(permission).decode(),
        **fields,
    }


def by_agent(api, type: str = "access", **agent) -> dict:
    answer = api.post("/v1/requests", {"type": type, "email": "ann@example.com", "agent": agent_body(**agent)})
    assert answer.status_code == 201, answer.json
    return answer.json


def permission_error(answer) -> str:
    """The message about the permission, whether the schema (nested) or the service (dotted) found it."""
    errors = answer.json["errors"]
    found = errors.get("agent.permission") or errors.get("json", errors).get("agent", {}).get("permission")
    assert found, errors
    return found[0]


def text_of(message) -> str:
    return message.get_body(("plain",)).get_content()


def test_an_agents_request_waits_for_the_consumer_then_proceeds_and_the_agent_hears_its_status(client, api, person, smtp, worker):
    made = by_agent(api)
    assert made["status"] == "awaiting_verification"
    agent = made["agent"]
    assert (agent["name"], agent["email"], agent["organisation"], agent["registration"]) == (
        "Dana Agent", "dana@agency.example.com", "Privacy Agents Ltd", "C1234567",
    )  # fmt: skip
    assert (agent["permission_type"], agent["permission_bytes"], agent["permission_held"]) == ("application/pdf", len(PDF), True)
    assert agent["power_of_attorney_at"] is None
    worker.wait()

    [asked] = mails_to(smtp, "ann@example.com")
    assert "on your behalf by Dana Agent (Privacy Agents Ltd)" in text_of(asked)
    [told] = mails_to(smtp, "dana@agency.example.com")
    assert made["reference"] in told["Subject"] and "must confirm it" in text_of(told)
    assert "/privacy-requests/verify/" not in text_of(told)  # only the consumer can confirm

    verify = link_in(asked, "/privacy-requests/verify/")
    page = client.get(verify)
    assert b"Dana Agent (Privacy Agents Ltd) made an" in page.data
    assert client.post(verify).status_code == 200
    worker.wait()
    done = client.get(f"/v1/requests/{made['id']}", headers=api.headers).json
    assert done["status"] == "completed"
    assert [m for m in mails_to(smtp, "ann@example.com") if "ready to download" in m["Subject"]]  # the data goes to the consumer
    to_agent = [text_of(m) for m in mails_to(smtp, "dana@agency.example.com")]
    assert len(to_agent) == 2 and "We completed it" in to_agent[1]
    assert "/privacy-requests/download/" not in to_agent[1]  # the link to the data is the consumer's alone


def test_the_form_takes_an_agents_request_and_staff_see_the_agent_and_download_the_permission(app, client, person, smtp, worker):
    page = client.get("/privacy-requests/new")
    assert b"I am an authorised agent" in page.data and b'enctype="multipart/form-data"' in page.data
    sent = client.post(
        "/privacy-requests/new",
        data={
            "csrf_token": csrf_of(page),
            "type": "erasure",
            "email": "ann@example.com",
            "on_behalf": "y",
            "agent_name": "Dana Agent",
            "agent_email": "dana@agency.example.com",
            "permission": (io.BytesIO(PNG), "signed.png"),
        },
        content_type="multipart/form-data",
    )
    assert sent.status_code == 200 and b"sent a link to the person you act for" in sent.data
    reference = re.search(r"PR-[0-9A-Z]{4}-[0-9A-Z]{4}", sent.get_data(as_text=True)).group(0)
    worker.wait()
    assert mails_to(smtp, "dana@agency.example.com") and mails_to(smtp, "ann@example.com")

    staff = signed_in(app, "reviewer@example.com")
    queue = staff.get("/staff").get_data(as_text=True)
    request_id = int(queue.split("/staff/requests/")[1].split('"')[0])
    detail = staff.get(f"/staff/requests/{request_id}").get_data(as_text=True)
    assert "Made by an agent" in detail and "Dana Agent" in detail and "dana@agency.example.com" in detail
    assert f"/staff/requests/{request_id}/agent-permission" in detail and "No power of attorney recorded" in detail

    download = staff.get(f"/staff/requests/{request_id}/agent-permission")
    assert download.status_code == 200 and download.data == PNG and download.mimetype == "image/png"
    assert download.headers["Content-Disposition"].startswith("attachment")
    # Nobody else: not the public, not the requester's links.
    anonymous = app.test_client().get(f"/staff/requests/{request_id}/agent-permission")
    assert anonymous.status_code in (302, 303) and "/staff/login" in anonymous.headers["Location"]
    assert PNG not in anonymous.data
    folder = app.config["PREFS"].var_dir / "agent-permissions"
    stored = folder / f"{reference}.png"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600 and stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stored.read_bytes() == PNG


def test_a_power_of_attorney_recorded_by_staff_lets_the_request_proceed_without_the_consumer(app, api, person, smtp, worker):
    made = by_agent(api, type="erasure")
    staff = signed_in(app, "admin@example.com", "admin")
    page = f"/staff/requests/{made['id']}"
    assert "Record the power of attorney" in staff.get(page).get_data(as_text=True)
    recorded = post_form(staff, f"{page}/power-of-attorney", page=page)
    assert "Power of attorney recorded" in status_of(recorded)
    worker.wait()

    item = api.get(f"/v1/requests/{made['id']}").json
    assert item["status"] == "completed" and item["agent"]["power_of_attorney_at"] is not None
    actions = [e["action"] for e in item["timeline"]]
    assert actions[:3] == ["request.submitted", "request.power_of_attorney", "request.verified"]
    [step] = [e for e in item["timeline"] if e["action"] == "request.power_of_attorney"]
    assert step["actor"].startswith("staff:")
    detail = staff.get(page).get_data(as_text=True)
    assert "Agent&#39;s power of attorney recorded by admin@example.com" in detail or "Agent's power of attorney recorded by" in detail

    # The erasure took the permission (it names the person) with the rest of their data.
    assert item["agent"]["permission_held"] is False and item["email"] is None
    assert not (app.config["PREFS"].var_dir / "agent-permissions" / f"{made['reference']}.pdf").exists()
    assert staff.get(f"{page}/agent-permission").status_code == 404
    told = [text_of(m) for m in mails_to(smtp, "dana@agency.example.com")]
    assert any("We completed it." in text for text in told)
    again = post_form(staff, f"{page}/power-of-attorney", page=page)
    assert "Only a request waiting for confirmation" in again.get_data(as_text=True)


def test_a_power_of_attorney_needs_an_agent(api, person, app):
    plain = api.post("/v1/requests", {"type": "access", "email": "ann@example.com"}).json
    staff = signed_in(app, "admin2@example.com", "admin")
    page = f"/staff/requests/{plain['id']}"
    assert "Record the power of attorney" not in staff.get(page).get_data(as_text=True)
    refused = post_form(staff, f"{page}/power-of-attorney", page=page)
    assert "not made by an agent" in refused.get_data(as_text=True)
    assert api.get(f"/v1/requests/{plain['id']}").json["status"] == "awaiting_verification"
    assert staff.get(f"{page}/agent-permission").status_code == 404


@pytest.mark.parametrize(
    ("permission", "says"),
    [
        (b"GIF89a not a permission", "must be a PDF, PNG or JPEG file"),
        (b"plain text, signed", "must be a PDF, PNG or JPEG file"),
        (b"%PDF-" + b"0" * MAX, "too large: at most 5 MB"),
    ],
)
def test_the_api_refuses_a_permission_of_the_wrong_kind_or_size(api, person, permission, says):
    answer = api.post("/v1/requests", {"type": "access", "email": "ann@example.com", "agent": agent_body(permission)})
    assert answer.status_code == 422 and answer.mimetype == "application/problem+json"
    assert says in permission_error(answer)
    assert api.get("/v1/requests").json == []


def test_the_api_refuses_a_permission_that_is_not_base64_or_an_agent_without_one(api, person):
    bad = agent_body()
    bad["permission"] = "not base64!"
    answer = api.post("/v1/requests", {"type": "access", "email": "ann@example.com", "agent": bad})
    assert answer.status_code == 422 and "permission" in str(answer.json["errors"])
    missing = {k: v for k, v in agent_body().items() if k != "permission"}
    answer = api.post("/v1/requests", {"type": "access", "email": "ann@example.com", "agent": missing})
    assert answer.status_code == 422 and "permission" in str(answer.json["errors"])


@pytest.mark.parametrize(
    ("upload", "says"),
    [
        ((io.BytesIO(b"just words"), "permission.txt"), "The file must be a PDF, PNG or JPEG file."),
        ((io.BytesIO(b"%PDF-" + b"0" * MAX), "huge.pdf"), "The file is too large: at most 5 MB."),
        (None, "Attach the signed permission: a PDF, PNG or JPEG file."),
    ],
)
def test_the_form_refuses_a_bad_permission_with_a_clear_message(client, person, upload, says):
    page = client.get("/privacy-requests/new")
    data = {"csrf_token": csrf_of(page), "type": "access", "email": "ann@example.com", "on_behalf": "y",
            "agent_name": "Dana Agent", "agent_email": "dana@agency.example.com"}  # fmt: skip
    if upload is not None:
        data["permission"] = upload
    refused = client.post("/privacy-requests/new", data=data, content_type="multipart/form-data")
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    assert says in html and 'href="#permission"' in html
    assert 'value="Dana Agent"' in html  # what they typed is kept


def test_the_form_asks_an_agent_for_their_own_details(client, person):
    folder = client.application.config["PREFS"].var_dir / "agent-permissions"
    before = set(os.listdir(folder)) if folder.exists() else set()
    page = client.get("/privacy-requests/new")
    refused = client.post(
        "/privacy-requests/new",
        data={
            "csrf_token": csrf_of(page),
            "type": "access",
            "email": "ann@example.com",
            "on_behalf": "y",
            "permission": (io.BytesIO(PDF), "p.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    assert "Give the agent&#39;s name" in html or "Give the agent's name" in html
    assert 'href="#agent_email"' in html
    assert (set(os.listdir(folder)) if folder.exists() else set()) == before  # nothing kept of a refused request


@contextlib.contextmanager
def an_agents_row_is_refused():
    """The database refuses to write an agent's row (as a broken constraint or a
    full disk would), whenever the request's transaction flushes it."""

    def refuse(session, flush_context):
        if any(isinstance(row, RequestAgent) for row in session.new):
            raise RuntimeError("the database refused the row")

    sa.event.listen(Session, "after_flush", refuse)
    try:
        yield
    finally:
        sa.event.remove(Session, "after_flush", refuse)


def permission_files(app) -> set[str]:
    folder = app.config["PREFS"].var_dir / "agent-permissions"
    return set(os.listdir(folder)) if folder.exists() else set()


def test_a_request_whose_agent_is_refused_through_the_api_leaves_no_permission_file(app, api, person):
    before = permission_files(app)
    with an_agents_row_is_refused():
        answer = api.post("/v1/requests", {"type": "access", "email": "ann@example.com", "agent": agent_body()})
    assert answer.status_code == 500 and answer.mimetype == "application/problem+json"
    assert api.get("/v1/requests").json == []
    assert permission_files(app) == before
    # The same request, once the database takes it, keeps its file.
    made = by_agent(api)
    assert permission_files(app) == before | {f"{made['reference']}.pdf"}


def test_a_request_whose_agent_is_refused_through_the_form_leaves_no_permission_file(app, client, api, person):
    before = permission_files(app)
    page = client.get("/privacy-requests/new")
    data = {"csrf_token": csrf_of(page), "type": "access", "email": "ann@example.com", "on_behalf": "y",
            "agent_name": "Dana Agent", "agent_email": "dana@agency.example.com"}  # fmt: skip
    with an_agents_row_is_refused():
        failed = client.post(
            "/privacy-requests/new", data={**data, "permission": (io.BytesIO(PNG), "signed.png")}, content_type="multipart/form-data"
        )
    assert failed.status_code == 500
    assert api.get("/v1/requests").json == []
    assert permission_files(app) == before
