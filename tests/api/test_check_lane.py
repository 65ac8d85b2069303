"""The single check's own lane (api/check_lane.py) is a second door to the same
answer: for any request, it answers exactly what the whole way through Flask
answers (status, headers, body), or leaves the request to it."""

from __future__ import annotations

import io
import sys
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from prefs_service import metrics
from prefs_service.api.check_lane import PATH
from tests.helpers import Api

PEOPLE = ["lane.granted@example.com", "lane.withdrawn@example.com", "LANE.Granted@Example.com ", "nobody@example.com", "not an address"]
KEYS = ["channel", "purpose", "email", "phone", "subject_id", "external_ref", "typo"]
VALUES = ["email", "newsletter", "offers", "phone", "marketing", "fax", "", "\x00", "é", *PEOPLE]


def environ(
    query: str, authorization: str | None, *, scheme: str = "http", method: str = "GET", path: str = PATH, cookie: str = ""
) -> dict:
    found = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "prefs.example.com",
        "SERVER_PORT": "443" if scheme == "https" else "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if authorization is not None:
        found["HTTP_AUTHORIZATION"] = authorization
    if cookie:
        found["HTTP_COOKIE"] = cookie
    return found


def answer(wsgi, env: dict) -> tuple[str, list[tuple[str, str]], bytes]:
    started: list = []
    body = wsgi(dict(env), lambda status, headers, exc_info=None: started.extend([status, headers]))
    try:
        data = b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()
    return started[0], list(started[1]), data


@pytest.fixture
def apps(app, make_app):
    """As tested, and as in production (where HTTPS answers carry HSTS); one database."""
    return [app, make_app(env="production", base_url="https://prefs.example.com")]


@pytest.fixture
def people(app, api_key):
    reader, admin = api_key("consent:read"), api_key("admin")
    api = Api(app.test_client(), admin)
    api.record(email=PEOPLE[0])
    api.record(email=PEOPLE[1], status="withdrawn")
    return {"reader": reader["Authorization"], "admin": admin["Authorization"], "writer": api_key("consent:write")["Authorization"]}


# The common shape the lane takes (in any order), and anything at all.
COMMON = st.permutations(
    [
        ("channel", st.sampled_from(["email", "email", "email", "phone", "sms"])),
        ("purpose", st.sampled_from(["newsletter", "newsletter", "offers", "marketing"])),
        (
            st.sampled_from(["email", "email", "email", "phone", "subject_id", "external_ref"]),
            st.sampled_from(PEOPLE) | st.sampled_from(VALUES),
        ),
    ]
).flatmap(lambda shape: st.tuples(*(st.tuples(st.just(k) if isinstance(k, str) else k, v) for k, v in shape)).map(list))
ANY_PAIRS = st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(VALUES) | st.text(max_size=6)), max_size=5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pairs=COMMON | ANY_PAIRS,
    who=st.sampled_from(["reader", "reader", "reader", "admin", "writer", "garbage", "none", "lower", "basic"]),
    scheme=st.sampled_from(["http", "https"]),
    raw=st.sampled_from(["", "", "", "", "%ff", "&&", "email=%E9"]),
    production=st.booleans(),
)
def test_the_lane_answers_exactly_what_the_whole_way_answers(apps, people, pairs, who, scheme, raw, production):
    app = apps[production]
    authorization = {
        "garbage": "Bearer pk_0123456789ab_secret",
        "none": None,
        "lower": people["reader"].replace("Bearer", "bearer"),
        "basic": "Basic dXNlcjpwYXNz",
    }.get(who, people.get(who))
    query = "&".join(part for part in (urlencode(pairs), raw) if part)
    env = environ(query, authorization, scheme=scheme)
    through_lane = answer(app.wsgi_app, env)
    whole_way = answer(app.wsgi_app.whole_way, env)
    event(f"status {whole_way[0]}")
    assert through_lane == whole_way


@pytest.mark.parametrize("production", [False, True])
def test_every_common_check_the_lane_answers_is_the_whole_ways_answer(apps, people, production):
    """The grid the fuzzing above reaches only now and then: every known kind of answer."""
    app = apps[production]
    answered = 0
    for value in [*PEOPLE, "00000000-0000-0000-0000-000000000001"]:
        for channel, purpose in [("email", "newsletter"), ("email", "offers"), ("email", "service"), ("phone", "marketing")]:
            for key in ("email", "subject_id"):
                for who, scheme in [("reader", "http"), ("admin", "https")]:
                    env = environ(urlencode({"channel": channel, "purpose": purpose, key: value}), people[who], scheme=scheme)
                    through_lane = answer(app.wsgi_app, env)
                    assert through_lane == answer(app.wsgi_app.whole_way, env), env["QUERY_STRING"]
                    answered += through_lane[0] == "200 OK"
    assert answered >= 20


def _answered_checks(app, admin: str) -> float:
    """How many 200 answers /metrics counts under the check's endpoint (the whole way counts them so)."""
    text = app.test_client().get("/metrics", headers={"Authorization": admin}).get_data(as_text=True)
    series = 'prefs_http_request_duration_seconds_count{endpoint="consents.ConsentCheck",status="200"} '
    return next((float(line.removeprefix(series)) for line in text.splitlines() if line.startswith(series)), 0.0)


def test_the_lane_answers_the_common_check_and_counts_it(app, people):
    query = urlencode({"channel": "email", "purpose": "newsletter", "email": PEOPLE[0]})
    granted, requests = metrics.CHECKS["granted"]._value.get(), _answered_checks(app, people["admin"])
    status, headers, body = answer(app.wsgi_app, environ(query, people["reader"]))
    assert status == "200 OK" and body.startswith(b'{"allowed":true,"reason":"granted","since":"')
    assert dict(headers)["Content-Length"] == str(len(body)) and dict(headers)["X-Frame-Options"] == "DENY"
    assert metrics.CHECKS["granted"]._value.get() == granted + 1
    assert _answered_checks(app, people["admin"]) == requests + 1


@pytest.mark.parametrize(
    "changed",
    [
        {"method": "HEAD"},
        {"path": PATH + "/"},
        {"cookie": "session=x"},
    ],
)
def test_what_the_lane_does_not_take_goes_the_whole_way_unchanged(app, people, changed):
    query = urlencode({"channel": "email", "purpose": "newsletter", "email": PEOPLE[0]})
    env = environ(query, people["reader"], **changed)
    assert answer(app.wsgi_app, env) == answer(app.wsgi_app.whole_way, env)


def test_behind_a_trusted_proxy_the_lane_sees_the_clients_scheme(make_app, api_key, people):
    app = make_app(env="production", trusted_proxies=1, base_url="https://prefs.example.com")
    env = environ(urlencode({"channel": "email", "purpose": "newsletter", "email": PEOPLE[0]}), people["reader"])
    env["HTTP_X_FORWARDED_PROTO"] = "https"
    status, headers, _ = answer(app.wsgi_app, env)
    assert status == "200 OK" and dict(headers)["Strict-Transport-Security"].startswith("max-age=")
    assert answer(app.wsgi_app, env) == answer(app.wsgi_app.app.whole_way, {**env, "wsgi.url_scheme": "https"})
