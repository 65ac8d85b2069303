"""Logs and errors never carry a plain email address or a whole IP address."""

from __future__ import annotations

import json
import logging

import pytest
import sqlalchemy as sa

from prefs_service.extensions import db
from prefs_service.logs import JsonFormatter


def test_log_lines_are_json_with_emails_and_ips_masked():
    record = logging.LogRecord("prefs", logging.WARNING, __file__, 1, "refused %s from %s", ("jane.doe@example.com", "203.0.113.77"), None)
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "WARNING" and line["logger"] == "prefs"
    assert "jane.doe@example.com" not in line["msg"] and "203.0.113.77" not in line["msg"]
    assert line["msg"] == "refused j***@example.com from 203.0.113.x"


def test_sql_errors_do_not_quote_parameters(app):
    with app.app_context():
        with pytest.raises(sa.exc.DBAPIError) as caught:
            db.session.execute(sa.text("SELECT * FROM no_such_table WHERE x = :v"), {"v": "jane.doe@example.com"})
        db.session.rollback()
    assert "jane.doe@example.com" not in str(caught.value)


def test_an_unexpected_error_is_logged_without_the_address(app, client, api_key, capfd, monkeypatch):
    from prefs_service.consent import service as consent

    def explode(**kwargs):
        raise RuntimeError("boom while handling jane.doe@example.com")

    monkeypatch.setattr(consent, "check_many", explode)
    response = client.get(
        "/v1/consent/check", query_string={"channel": "email", "purpose": "offers", "email": "jane.doe@example.com"}, headers=api_key("consent:read")
    )
    assert response.status_code == 500 and response.content_type == "application/problem+json"
    assert "jane.doe" not in response.get_data(as_text=True)
    err = capfd.readouterr().err
    assert "unhandled error on GET /v1/consent/check" in err and "jane.doe@example.com" not in err
