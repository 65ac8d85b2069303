"""Schema-driven fuzzing: schemathesis generates requests from /openapi.json and
runs every one of its checks on the answers, in process (WSGI), with an admin
key. Any server error or any answer the document does not describe fails the
test, listing each failing request as a curl command with the answer.

Runs on the suite's database and broker: SQLite by default, PostgreSQL and
Redis when PREFS_TEST_DATABASE_URL / PREFS_TEST_BROKER_URL are set.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time

import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import Config
from schemathesis.engine import events, from_schema
from schemathesis.engine.statistic import Statistic
from schemathesis.transport.wsgi import WSGI_TRANSPORT

from tests.api import fuzz_rules
from tests.conftest import TEST_WEBHOOK_SECRET

SEED = 20261126
# Examples per operation in the fuzzing phase; the examples, coverage and
# stateful phases add their own. The default gives about 2,500 requests.
MAX_EXAMPLES = int(os.environ.get("PREFS_FUZZ_MAX_EXAMPLES", "40"))
MIN_REQUESTS = 2000

# Formats the document uses beyond JSON Schema's own, generated as the service reads them.
schemathesis.openapi.format(
    "phone",
    st.one_of(
        st.integers(0, 999).map(lambda n: f"+44 20 7946 0{n:03d}"),
        st.integers(0, 999).map(lambda n: f"07700 900{n:03d}"),
    ),
)
schemathesis.openapi.format(
    "postal-address",
    st.builds(
        "{} {} Street, {}".format,
        st.integers(1, 999),
        st.sampled_from(["High", "Mill", "Church"]),
        st.sampled_from(["Leeds", "York", "LS1 4AP"]),
    ),
)


@pytest.fixture
def in_process_transport(monkeypatch):
    """schemathesis 4.32's ignored_auth probe hands the WSGI transport
    requests-only options (max_redirects, verify, cert), which werkzeug's test
    client refuses; they mean nothing in process, so they are dropped."""
    send = WSGI_TRANSPORT.send

    def send_in_process(case, **kwargs):
        for name in ("max_redirects", "verify", "cert", "proxies"):
            kwargs.pop(name, None)
        return send(case, **kwargs)

    monkeypatch.setattr(WSGI_TRANSPORT, "send", send_in_process)


def stripe_signature(body: bytes) -> str:
    timestamp = int(time.time())
    digest = hmac.new(TEST_WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def prepare_call(context, case, kwargs) -> None:
    """Every case of every phase passes here just before it is sent."""
    fuzz_rules.follow_prose_rules(case.path, case.body, case.query)
    # A valid JSON event gets a correct Stripe-Signature, so the fuzzer reaches
    # past the signature check; a case built to break the document keeps testing
    # that it is refused (a wrong signature is one reason).
    positive = case.meta is not None and not any(c.mode.is_negative for c in case.meta.components.values())
    if case.path == "/v1/registers/{register}/imports" and positive:
        case.body = fuzz_rules.REGISTER_FILE
    if (
        case.path == "/v1/consent/screen"
        and positive
        and "csv" in (case.media_type or "")
        and isinstance((case.query or {}).get("column"), str)
    ):
        case.body = fuzz_rules.screening_list(case.query["column"], case.body)
    if case.path == "/webhooks/stripe" and positive and "Stripe-Signature" in (case.headers or {}) and "json" in (case.media_type or ""):
        # werkzeug's test client sends JSON as json.dumps writes it; the body
        # stays a value (not bytes) so schemathesis still knows it is valid.
        sent = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
        case.headers["Stripe-Signature"] = stripe_signature(sent)


def fuzz(app, headers: dict) -> tuple[Statistic, list, schemathesis.BaseSchema]:
    config = Config.from_dict(
        {
            "seed": SEED,
            "headers": headers,
            "continue-on-failure": True,
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            "checks": {"enabled": True},
        }
    )
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app, config=config)
    statistic, errors = Statistic(), []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished) and event.is_test_scenario:
            statistic.on_scenario_finished(event.recorder)
        elif isinstance(event, events.NonFatalError | events.FatalError):
            errors.append(event)
    return statistic, errors, schema


def report(statistic: Statistic, errors: list, schema) -> str:
    lines = []
    for error in errors:
        info = getattr(error, "info", None)
        lines.append(f"ERROR in {getattr(error, 'label', 'the run')}:\n" + (info.format() if info else repr(error.exception)))
    number = 0
    for label, groups in statistic.failures.items():
        for group in groups.values():
            number += 1
            lines.append(f"{number}. {label}\n" + group.format(index=None, curl=group.code_sample, config=schema.config.output))
    return "\n\n".join(lines)


@pytest.fixture
def prepared_calls():
    schemathesis.hook("before_call")(prepare_call)  # only a global hook sees every call
    yield
    schemathesis.hooks.unregister(prepare_call)


def test_no_request_gets_a_server_error_or_an_undocumented_answer(make_app, admin, in_process_transport, prepared_calls):
    # Verified keys are remembered, as in production: the suite's apps check
    # every key afresh, and that Argon2 hash would be most of each request.
    app = make_app(api_key_cache_seconds=600)
    policy = {"version": fuzz_rules.PUBLISHED_POLICY, "last_updated": "2020-01-01", "effective_at": "2020-01-01T00:00:00Z"}
    assert app.test_client().post("/v1/policy-versions", json=policy, headers=admin).status_code == 201
    started = time.monotonic()
    statistic, errors, schema = fuzz(app, admin)
    elapsed = time.monotonic() - started
    print(f"fuzzed {statistic.total_cases} requests in {elapsed:.0f}s (seed {SEED}, {MAX_EXAMPLES} examples per operation)")
    assert not statistic.failures and not errors, f"{statistic.total_failures} failures, {len(errors)} errors:\n\n" + report(
        statistic, errors, schema
    )
    assert statistic.total_cases >= MIN_REQUESTS, f"only {statistic.total_cases} requests were generated"
