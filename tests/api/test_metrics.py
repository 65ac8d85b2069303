"""/metrics: every family after the service is exercised through its own
interfaces, and who may read it. The multiprocess run under gunicorn is in
tests/test_metrics_multiprocess.py."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from prefs_service.clock import utcnow
from prefs_service.extensions import db
from prefs_service.orders import watchdog
from prefs_service.rights.models import RightsRequest
from tests.helpers import Api
from tests.orders.stripe_events import apply_accepted, checkout_session, event, post


def scrape(client, headers) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of one scrape."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_every_family_after_the_service_is_used(app, client, admin, api_key):
    api = Api(client, api_key("consent:read", "consent:write"))
    before = scrape(client, admin)

    api.record(email="granted@example.com", source="crm")
    api.record(email="also@example.com", source="crm", status="withdrawn")
    api.record(email="web@example.com", source="web_form")
    assert api.check(email="granted@example.com").json["reason"] == "granted"
    assert api.reasons(["also@example.com", "nobody@example.com", "not an address", "granted@example.com"]) == [
        "withdrawn",
        "no_consent",
        "invalid",
        "granted",
    ]
    assert client.get("/v1/consent/check", headers=api.headers).status_code == 422
    assert client.get("/no/such/page/42").status_code == 404

    made = client.post("/v1/requests", json={"type": "access", "email": "late@example.com", "verified": True}, headers=admin)
    assert made.status_code == 201, made.json
    with app.app_context():  # the deadline passed without anyone acting (as tests/web/test_staff.py ages one)
        request = db.session.get(RightsRequest, made.json["id"])
        request.due_at -= timedelta(days=40)
        db.session.commit()

    post(client, event("checkout.session.completed", checkout_session("cs_metrics", email="idle@example.com")))
    apply_accepted(app)
    with app.app_context():  # a paid order nobody commissioned for a day
        assert watchdog.watchdog(now=utcnow() + timedelta(hours=25))["opened"] == 1
        db.session.commit()

    after = scrape(client, admin)

    def grew(name: str, by: float, **labels) -> None:
        assert value(after, name, **labels) - value(before, name, **labels) == by, (name, labels)

    grew("prefs_consent_checks_total", 2, reason="granted")
    grew("prefs_consent_checks_total", 1, reason="withdrawn")
    grew("prefs_consent_checks_total", 1, reason="no_consent")
    grew("prefs_consent_checks_total", 1, reason="invalid")
    grew("prefs_ledger_events_total", 2, source="crm")
    grew("prefs_ledger_events_total", 1, source="web_form")
    requests = "prefs_http_request_duration_seconds_count"  # the latency histogram counts the requests
    grew(requests, 2, endpoint="consents.ConsentCheck", status="200")  # single and bulk
    grew(requests, 1, endpoint="consents.ConsentCheck", status="422")
    grew(requests, 3, endpoint="consents.ConsentCollection", status="201")
    grew(requests, 1, endpoint="unmatched", status="404")
    grew(requests, 1, endpoint="metrics.metrics", status="200")
    grew("prefs_http_request_duration_seconds_bucket", 3, endpoint="consents.ConsentCollection", status="201", le="+Inf")
    assert value(after, "prefs_http_request_duration_seconds_sum", endpoint="consents.ConsentCollection", status="201") > 0
    assert not [key for key in after if "/no/such/page" in str(key)], "a raw path became a label"

    with app.app_context():
        queued = db.session.execute(sa.text("SELECT kind, count(*) FROM jobs WHERE status = 'queued' GROUP BY kind")).all()
        db.session.rollback()
    assert queued, "the request and the order queued jobs"
    for kind, count in queued:
        assert value(after, "prefs_jobs", kind=kind, state="queued") == count
    failed_notices = ("prefs_jobs", (("kind", "notices.deliver"), ("state", "failed")))
    assert after[failed_notices] == 0  # every kind and state is listed, none at all included
    assert value(after, "prefs_oldest_queued_job_age_seconds") > 0  # queued before the scrape
    assert ("prefs_oldest_queued_job_age_seconds", ()) in after
    assert value(after, "prefs_oldest_unsent_notice_age_seconds") > 0  # the acknowledgement, with no worker to send it
    assert value(after, "prefs_rights_requests_overdue") == 1
    assert value(after, "prefs_delivery_escalations_open", kind="not_commissioned") == 1
    assert value(after, "prefs_delivery_escalations_open", kind="delivery_late") == 0


def test_a_rolled_back_event_is_not_counted(client, admin, api_key):
    api = Api(client, api_key("consent:write"))
    before = value(scrape(client, admin), "prefs_ledger_events_total", source="import")
    bad = api.post(
        "/v1/consents/batch",
        {
            "events": [
                {"email": "one@example.com", "channel": "email", "purpose": "newsletter", "status": "granted", "source": "import"},
                {},
            ]
        },
    )
    assert bad.status_code == 422
    good = api.post(
        "/v1/consents/batch",
        {
            "events": [
                {"email": f"{n}@example.com", "channel": "email", "purpose": "newsletter", "status": "granted", "source": "import"}
                for n in range(3)
            ]
        },
    )
    assert good.status_code == 201, good.json
    assert value(scrape(client, admin), "prefs_ledger_events_total", source="import") - before == 3


def test_metrics_need_an_admin_key(client, api_key):
    missing = client.get("/metrics")
    assert missing.status_code == 401 and missing.content_type == "application/problem+json"
    assert "Bearer" in missing.json["detail"]
    wrong = client.get("/metrics", headers={"Authorization": "Bearer not-a-key"})
    assert wrong.status_code == 401 and wrong.content_type == "application/problem+json"
    reader = client.get("/metrics", headers=api_key("consent:read"))
    assert reader.status_code == 403 and reader.content_type == "application/problem+json"
    assert "admin" in reader.json["detail"]
