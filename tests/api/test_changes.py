"""GET /v1/consent/changes: a feed other systems can follow without missing a change."""

from __future__ import annotations

import threading
import uuid

import pytest
import sqlalchemy as sa

from prefs_service.clock import utcnow
from prefs_service.consent.models import ConsentEvent
from prefs_service.extensions import db


@pytest.fixture
def headers(api_key):
    return api_key("consent:read", "consent:write")


def test_pages_through_the_ledger_in_order_and_resumes_from_the_cursor(api):
    for i in range(5):
        api.record(email=f"f{i}@example.com", purpose="offers")
    first = api.changes(limit=2)
    assert len(first["events"]) == 2 and first["has_more"] is True
    second = api.changes(after=first["next"], limit=2)
    third = api.changes(after=second["next"], limit=2)
    assert len(third["events"]) == 1 and third["has_more"] is False
    seen = [e["id"] for page in (first, second, third) for e in page["events"]]
    assert len(set(seen)) == 5
    idle = api.changes(after=third["next"], limit=100)
    assert idle == {"events": [], "next": third["next"], "has_more": False}
    api.record(email="f0@example.com", purpose="offers", status="withdrawn")
    newest = api.changes(after=third["next"], limit=100)
    assert [e["status"] for e in newest["events"]] == ["withdrawn"]


@pytest.mark.parametrize("cursor", ["garbage", "1.x", "-1.-1", "1"])
def test_a_bad_cursor_is_422(client, headers, cursor):
    response = client.get("/v1/consent/changes", query_string={"after": cursor}, headers=headers)
    assert response.status_code == 422 and "after" in response.json["errors"]


@pytest.mark.parametrize("limit", [0, 1001, "many"])
def test_limit_is_bounded(client, headers, limit):
    assert client.get("/v1/consent/changes", query_string={"limit": limit}, headers=headers).status_code == 422


@pytest.mark.postgresql_only  # SQLite runs one writer at a time: B cannot commit while A is open
def test_a_slow_writer_never_ends_up_behind_the_followers_cursor(app, api):
    """Writer A starts first and commits last. On PostgreSQL its event id is
    lower than writer B's; a feed ordered by id alone would hand out B's cursor
    and skip A's event for ever. Every event must be seen exactly once."""
    subject = api.record(email="slow@example.com", purpose="offers").json["subject_id"]
    cursor = api.changes(limit=100)["next"]
    a_inserted, b_done, release_a = threading.Event(), threading.Event(), threading.Event()

    def write(status, before_commit=None, after_insert=None):
        with app.app_context():
            db.session.add(
                ConsentEvent(
                    subject_id=uuid.UUID(subject),
                    channel="email",
                    purpose="newsletter",
                    status=status,
                    source="api",
                    occurred_at=utcnow(),
                    recorded_by="test",
                )
            )
            db.session.flush()
            if after_insert:
                after_insert.set()
            if before_commit:
                before_commit.wait(10)
            db.session.commit()

    writer_a = threading.Thread(target=write, args=("granted", release_a, a_inserted))
    writer_a.start()
    assert a_inserted.wait(10)

    def write_b():
        write("withdrawn")
        b_done.set()

    writer_b = threading.Thread(target=write_b)
    writer_b.start()
    assert b_done.wait(10), "writer B should commit while A is still open"

    seen = []
    page = api.changes(after=cursor, limit=100)
    seen += page["events"]
    cursor = page["next"]
    release_a.set()
    writer_a.join(10)
    writer_b.join(10)
    page = api.changes(after=cursor, limit=100)
    seen += page["events"]

    assert sorted(e["status"] for e in seen) == ["granted", "withdrawn"]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ConsentEvent)) == 3
