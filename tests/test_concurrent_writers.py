"""Sixteen writers at once, of every kind people and systems write (single
events, batches, one-clicks, preference saves, staff decisions), while the
in-process worker runs jobs: no answer is an error ("database is locked" least
of all, on the embedded SQLite default), and the ledger holds exactly the
changes that were acknowledged."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import sqlalchemy as sa

from prefs_service.consent.models import ConsentEvent
from prefs_service.extensions import db

WRITERS = 16
ROUNDS = 6  # bursts per writer; each burst is one of every kind of write


def csrf_of(page) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page.data).group(1).decode()


def changes_said(client, saved) -> int:
    """How many changes the preference page said a save made: its one-time message after the redirect."""
    if saved.status_code != 303:
        return 0
    page = client.get(saved.headers["Location"]).get_data(as_text=True)
    found = re.search(r"\((\d+) changes?\)", page)
    assert found or "nothing needed changing" in page, page[:300]
    return int(found.group(1)) if found else 0


def test_sixteen_writers_and_the_worker_never_see_a_locked_database(app, api_key, worker, smtp):
    headers = api_key("admin")
    setup = app.test_client()
    people = []
    for n in range(WRITERS):
        person = setup.post("/v1/subjects", json={"email": f"writer{n}@example.com", "phone": f"+44207946{n:04d}"}, headers=headers).json
        minted = setup.post("/v1/unsubscribe-links", json={"subject_id": person["id"], "purpose": "newsletter"}, headers=headers).json
        people.append((person["id"], urlsplit(minted["preferences_url"]).path))
    acknowledged = []  # ledger rows each acknowledged answer stands for
    failures = []
    lock = threading.Lock()

    def answer(response, expected: int, rows: int = 0):
        with lock:
            if response.status_code != expected:
                failures.append((response.request.path, response.status_code, response.get_data(as_text=True)[:300]))
            else:
                acknowledged.append(rows)

    def write(n: int) -> None:
        client = app.test_client()  # one per writer: its own cookies and CSRF token
        subject_id, preferences = people[n]
        page = client.get(preferences)
        for r in range(ROUNDS):
            hour = f"2026-0{1 + r % 9}-01T00:00:00Z"
            body = {"subject_id": subject_id, "channel": "email", "purpose": "newsletter", "status": "granted", "occurred_at": hour}
            answer(client.post("/v1/consents", json=body, headers=headers), 201, 1)
            batch = [
                {"email": f"batch{n}.{r}.{i}@example.com", "channel": "email", "purpose": "offers", "status": "granted"} for i in range(20)
            ]
            answer(client.post("/v1/consents/batch", json={"events": batch}, headers=headers), 201, 20)
            # A new person each round, granted then unsubscribed in one click: one change.
            grant = {"email": f"click{n}.{r}@example.com", "channel": "email", "purpose": "product_updates", "status": "granted"}
            answer(client.post("/v1/consents", json=grant, headers=headers), 201, 1)
            link = client.post("/v1/unsubscribe-links", json={"email": grant["email"], "purpose": "product_updates"}, headers=headers)
            answer(client.post(urlsplit(link.json["url"]).path, data={"List-Unsubscribe": "One-Click"}), 200, 1)
            # Preference saves alternate between two choices: each save changes two purposes.
            choice = ["email.offers", "phone.marketing"] if r % 2 == 0 else []
            saved = client.post(preferences, data={"csrf_token": csrf_of(page), "action": "save", "granted": choice})
            answer(saved, 303, changes_said(client, saved))
            made = client.post(
                "/v1/requests",
                json={"type": "correction", "subject_id": subject_id, "changes": {"name": f"Writer {n}.{r}"}, "verified": True},
                headers=headers,
            )
            answer(made, 201)
            if made.status_code == 201:
                decision = ("approve", {}) if r % 2 else ("reject", {"reason": "Not enough to go on."})
                answer(client.post(f"/v1/requests/{made.json['id']}/{decision[0]}", json=decision[1], headers=headers), 200)

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(write, range(WRITERS)))
    worker.wait(timeout=120)

    assert failures == []
    with app.app_context():
        rows = db.session.scalar(sa.select(sa.func.count()).select_from(ConsentEvent))
    assert rows == sum(acknowledged)
    assert len(acknowledged) == WRITERS * ROUNDS * 7


def test_a_read_only_request_leaves_no_scope_behind(client):
    """The cause of a flaky "database is locked": a GET's read-only scope
    outlived the request in its thread, so that thread's next writes began
    deferred transactions, which SQLite refuses at once when another writer
    commits between their first read and their first write."""
    from prefs_service.db import scopes

    assert client.get("/healthz").status_code == 200
    assert scopes.current() is scopes.WRITE
