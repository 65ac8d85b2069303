"""Signed unsubscribe links and RFC 8058 one-click, through HTTP."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlsplit

import pytest
from itsdangerous import URLSafeTimedSerializer

from prefs_service import tokens

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def headers(api_key):
    return api_key("consent:read", "consent:write")


def path_of(url: str) -> str:
    return urlsplit(url).path


def test_minting_returns_the_url_preferences_url_and_ready_headers(app, headers, api):
    subject_id = api.record(email="reader@example.com").json["subject_id"]
    body = api.links(email="Reader@Example.com")
    base = app.config["PREFS"].base_url
    assert body["subject_id"] == subject_id
    assert body["url"].startswith(base + "/u/") and body["preferences_url"].startswith(base + "/preferences/")
    assert body["headers"] == {"List-Unsubscribe": f"<{body['url']}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    assert api.links(subject_id=subject_id)["subject_id"] == subject_id


def test_tokens_carry_ids_never_the_address(api):
    api.record(email="reader@example.com")
    token = api.links(email="reader@example.com")["url"].rsplit("/", 1)[1]
    payload = token.split(".")[0]
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert set(decoded) == {"s", "c", "p"} and "reader" not in token


@pytest.mark.parametrize(
    ("payload", "field"),
    [({"purpose": "newsletter"}, "subject"), ({"email": "a@example.com", "purpose": "brunch"}, "purpose"),
     ({"email": "a@example.com", "channel": "sms", "purpose": "x"}, "channel"), ({"email": "nope", "purpose": "newsletter"}, "email")],
)  # fmt: skip
def test_minting_bad_input_is_422(client, headers, payload, field):
    response = client.post("/v1/unsubscribe-links", json=payload, headers=headers)
    assert response.status_code == 422 and field in response.json["errors"]


def test_minting_for_someone_unknown_is_404_and_creates_nobody(client, headers, api_key):
    response = client.post("/v1/unsubscribe-links", json={"email": "stranger@example.com", "purpose": "newsletter"}, headers=headers)
    assert response.status_code == 404 and response.content_type == "application/problem+json"
    created = client.post("/v1/subjects", json={"email": "stranger@example.com"}, headers=api_key("subjects:write"))
    assert created.status_code == 201  # not there before


def test_get_shows_a_confirm_page_and_changes_nothing(client, headers, api):
    api.record(email="reader@example.com")
    url = api.links(email="reader@example.com")["url"]
    for _ in range(3):  # a link scanner, then another
        page = client.get(path_of(url))
        assert page.status_code == 200
        assert b"Unsubscribe</button>" in page.data and b"/preferences/" in page.data
        assert "Set-Cookie" not in page.headers and page.headers["Cache-Control"] == "no-store"
    assert api.check(email="reader@example.com").json["reason"] == "granted"
    assert len(api.changes()["events"]) == 1


@pytest.mark.parametrize("as_multipart", [False, True])
def test_one_click_post_withdraws_at_once_without_cookies_or_redirects(client, headers, as_multipart, api):
    api.record(email="reader@example.com")
    url = api.links(email="reader@example.com")["url"]
    extra = {"content_type": "multipart/form-data"} if as_multipart else {}
    response = client.post(path_of(url), data=ONE_CLICK, headers={"User-Agent": "MailboxProvider/1.0"},
                           environ_base={"REMOTE_ADDR": "198.51.100.201"}, **extra)  # fmt: skip
    assert response.status_code == 200
    assert "Location" not in response.headers and "Set-Cookie" not in response.headers
    assert api.check(email="reader@example.com").json["reason"] == "withdrawn"
    event = api.changes()["events"][-1]
    assert event["status"] == "withdrawn" and event["source"] == "one_click"
    assert event["evidence"]["ip"] == "198.51.100.0/24" and event["evidence"]["user_agent"] == "MailboxProvider/1.0"


def test_repeating_it_is_harmless(client, api):
    api.record(email="reader@example.com")
    path = path_of(api.links(email="reader@example.com")["url"])
    for _ in range(3):
        assert client.post(path, data=ONE_CLICK).status_code == 200
    assert [e["status"] for e in api.changes()["events"]] == ["granted", "withdrawn"]


def test_the_confirm_page_button_unsubscribes_and_confirms(client, api):
    api.record(email="reader@example.com")
    path = path_of(api.links(email="reader@example.com")["url"])
    response = client.post(path, data={"confirm": "unsubscribe"})
    assert response.status_code == 200 and b"You are unsubscribed" in response.data
    assert api.changes()["events"][-1]["source"] == "unsubscribe_page"
    assert api.check(email="reader@example.com").json["reason"] == "withdrawn"
    assert api.check(email="reader@example.com", purpose="offers").json["reason"] == "no_consent"  # only what the link named


def test_a_post_without_the_one_click_body_is_400_and_changes_nothing(client, api):
    api.record(email="reader@example.com")
    path = path_of(api.links(email="reader@example.com")["url"])
    response = client.post(path, data={"something": "else"})
    assert response.status_code == 400 and b"List-Unsubscribe=One-Click" in response.data
    assert api.check(email="reader@example.com").json["reason"] == "granted"


def _bad_tokens(app, good: str, subject_id: str) -> dict[str, str]:
    with app.app_context():
        wrong_purpose = tokens.sign("preferences", {"s": subject_id, "c": "email", "p": "newsletter"})
        unknown_subject = tokens.sign("unsubscribe", {"s": "6f1d8a34-0000-4000-8000-000000000000", "c": "email", "p": "newsletter"})
        unknown_purpose = tokens.sign("unsubscribe", {"s": subject_id, "c": "email", "p": "brunch"})
    flipped = good[:-3] + ("A" if good[-3] != "A" else "B") + good[-2:]
    return {
        "tampered": flipped,
        "truncated": good[: len(good) // 2],
        "garbage": "not-a-token-at-all",
        "wrong purpose": wrong_purpose,
        "unknown subject": unknown_subject,
        "unknown purpose": unknown_purpose,
        "other key": URLSafeTimedSerializer("x" * 40, salt=tokens.PURPOSES["unsubscribe"].salt).dumps(
            {"s": subject_id, "c": "email", "p": "newsletter"}
        ),
    }


def test_bad_tokens_are_a_404_page_and_nothing_changes(app, client, api):
    subject_id = api.record(email="reader@example.com").json["subject_id"]
    good = api.links(email="reader@example.com")["url"].rsplit("/", 1)[1]
    for name, token in _bad_tokens(app, good, subject_id).items():
        for response in (client.get(f"/u/{token}"), client.post(f"/u/{token}", data=ONE_CLICK)):
            assert response.status_code == 404, name
            assert b"This unsubscribe link is not valid" in response.data, name
    assert api.check(email="reader@example.com").json["reason"] == "granted"
    assert len(api.changes()["events"]) == 1


def test_rotated_keys_keep_old_links_working(make_app, app, api):
    subject_id = api.record(email="reader@example.com").json["subject_id"]
    old_key, new_key = "old-signing-key-" + "o" * 30, "new-signing-key-" + "n" * 30
    before = make_app(secret_keys=(old_key,))
    with before.app_context():
        old_link = tokens.sign("unsubscribe", {"s": subject_id, "c": "email", "p": "newsletter"})
    rotated = make_app(secret_keys=(new_key, old_key))
    with rotated.app_context():
        new_link = tokens.sign("unsubscribe", {"s": subject_id, "c": "email", "p": "newsletter"})
    assert rotated.test_client().get(f"/u/{old_link}").status_code == 200
    retired = make_app(secret_keys=(new_key,)).test_client()
    assert retired.get(f"/u/{new_link}").status_code == 200
    assert retired.get(f"/u/{old_link}").status_code == 404


def test_links_last_a_year_and_then_expire(app, monkeypatch):
    import time as real_time

    with app.app_context():
        now = real_time.time()
        monkeypatch.setattr("itsdangerous.timed.time.time", lambda: now - 366 * 86400)
        year_old = tokens.sign("unsubscribe", {"s": "x"})
        monkeypatch.setattr("itsdangerous.timed.time.time", lambda: now - 401 * 86400)
        too_old = tokens.sign("unsubscribe", {"s": "x"})
        monkeypatch.setattr("itsdangerous.timed.time.time", lambda: now - 31 * 86400)
        month_old_preferences = tokens.sign("preferences", {"s": "x"})
        monkeypatch.setattr("itsdangerous.timed.time.time", lambda: now)
        assert tokens.verify("unsubscribe", year_old) == {"s": "x"}
        assert tokens.verify("preferences", month_old_preferences) == {"s": "x"}
        with pytest.raises(tokens.InvalidToken):
            tokens.verify("unsubscribe", too_old)


def test_concurrent_clicks_record_one_withdrawal_per_person(app, api):
    """Mailbox providers retry, and people click twice: sixteen clients at once,
    each link three times, still give one ledger withdrawal per person."""
    import random
    from concurrent.futures import ThreadPoolExecutor

    people = [f"reader{i}@example.com" for i in range(12)]
    paths = []
    for email in people:
        api.record(email=email)
        paths.append(path_of(api.links(email=email)["url"]))
    clicks = paths * 3
    random.Random(8058).shuffle(clicks)

    def click(path):
        return app.test_client().post(path, data=ONE_CLICK).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(click, clicks))
    assert statuses == [200] * len(clicks)
    withdrawals = [e for e in api.changes()["events"] if e["status"] == "withdrawn"]
    assert sorted(e["subject_id"] for e in withdrawals) == sorted({e["subject_id"] for e in withdrawals})
    assert len(withdrawals) == len(people)
    assert {api.check(email=email).json["reason"] for email in people} == {"withdrawn"}
