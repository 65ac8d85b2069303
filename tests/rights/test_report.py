"""The yearly rights-request metrics (CCPA §7102): the figures, the CLI, the API."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest

from prefs_service.cli import main
from prefs_service.clock import utcnow
from prefs_service.errors import Invalid
from prefs_service.extensions import db
from prefs_service.rights import report
from prefs_service.rights import service as rights
from prefs_service.rights.models import STATUSES, TYPES
from tests.rights.report_support import expected_rows, make_requests

HEADER = [
    "year",
    "type",
    "received",
    "complied_in_whole_or_part",
    "denied",
    "denied_unverified",
    "not_answered",
    "median_days_to_answer",
    "mean_days_to_answer",
]


@pytest.fixture
def two_years(app):
    make_requests(app)
    return app


def figures(app, year: int, **kwargs) -> report.RequestReport:
    with app.app_context():
        return report.request_report(year=year, **kwargs)


def rows_of(result: report.RequestReport) -> list[dict]:
    return result.as_dict()["types"]


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_every_status_has_an_outcome():
    assert set(report.OUTCOMES) == set(STATUSES)


def test_counts_and_days_to_answer_per_type_in_each_year(two_years):
    for year in (2024, 2025):
        result = figures(two_years, year)
        assert rows_of(result) == expected_rows(year), year
        assert result.complete
        assert result.as_dict()["from"] == f"{year}-01-01T00:00:00+00:00"
        assert result.as_dict()["to"] == result.as_dict()["as_of"] == f"{year + 1}-01-01T00:00:00+00:00"
    assert [row["type"] for row in rows_of(figures(two_years, 2025))] == list(TYPES)


def test_a_year_without_requests_has_a_line_of_zeros_per_type(two_years):
    result = figures(two_years, 2019)
    assert rows_of(result) == expected_rows(2019)
    assert all(row["received"] == 0 and row["median_days_to_answer"] is None for row in rows_of(result))
    assert csv_rows(result.as_csv())[1] == ["2019", TYPES[0], "0", "0", "0", "0", "0", "", ""]


def test_the_year_in_progress_counts_until_now(app):
    with app.app_context():
        rights.submit(type="erasure", email="now@example.com", verified=True, actor="test")
        db.session.commit()
    now = utcnow()
    result = figures(app, now.year, now=now)
    assert not result.complete and result.as_of == now
    [erasure] = [row for row in rows_of(result) if row["type"] == "erasure"]
    assert erasure["received"] == erasure["not_answered"] == 1 and erasure["median_days_to_answer"] is None
    future = figures(app, now.year + 1, now=now)
    assert not future.complete and future.as_of == future.starts and all(row["received"] == 0 for row in rows_of(future))


def test_a_year_out_of_range_is_refused(app):
    with app.app_context():
        for year in (report.MIN_YEAR - 1, report.MAX_YEAR + 1):
            with pytest.raises(Invalid):
                report.request_report(year=year)


# --- the command -------------------------------------------------------------------------


def test_the_command_prints_csv_by_default_and_json_on_request(two_years, client, admin):
    runner = two_years.test_cli_runner()
    result = runner.invoke(main, ["report", "requests", "--year", "2025"])
    assert result.exit_code == 0, result.output
    rows = csv_rows(result.output)
    assert rows[0] == HEADER
    assert len(rows) == 1 + len(TYPES)
    by_type = {row[1]: row for row in rows[1:]}
    assert by_type["access"] == ["2025", "access", "7", "2", "2", "1", "3", "10.0", "11.2"]
    assert by_type["erasure"] == ["2025", "erasure", "4", "3", "1", "0", "0", "4.0", "4.5"]

    result = runner.invoke(main, ["report", "requests", "--year", "2025", "--format", "json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["year"] == 2025 and printed["complete"] is True
    assert printed["types"] == expected_rows(2025)
    # the API answers the same document
    assert client.get("/v1/reports/requests?year=2025", headers=admin).json == printed


def test_the_command_refuses_a_bad_year_or_format(app):
    runner = app.test_cli_runner()
    for args in (["--year", "twenty"], ["--year", "1969"], [], ["--year", "2025", "--format", "xml"]):
        result = runner.invoke(main, ["report", "requests", *args])
        assert result.exit_code == 2, (args, result.output)
        assert "Error" in result.output and "Traceback" not in result.output


# --- the API -----------------------------------------------------------------------------


def test_the_api_answers_json_or_csv(two_years, client, admin):
    answer = client.get("/v1/reports/requests?year=2024", headers=admin)
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    assert answer.json["types"] == expected_rows(2024)
    assert answer.json["from"] == "2024-01-01T00:00:00+00:00" and answer.json["complete"] is True

    for query, extra in (("year=2025&format=csv", {}), ("year=2025", {"Accept": "text/csv"})):
        answer = client.get(f"/v1/reports/requests?{query}", headers={**admin, **extra})
        assert answer.status_code == 200 and answer.mimetype == "text/csv", query
        assert answer.headers["Content-Disposition"] == 'attachment; filename="requests-2025.csv"'
        rows = csv_rows(answer.get_data(as_text=True))
        assert rows[0] == HEADER and ["2025", "erasure", "4", "3", "1", "0", "0", "4.0", "4.5"] in rows
    # an explicit format wins over the Accept header
    assert client.get("/v1/reports/requests?year=2025&format=json", headers={**admin, "Accept": "text/csv"}).mimetype == "application/json"


def test_the_api_is_for_admin_keys_only(app, client, api_key):
    assert client.get("/v1/reports/requests?year=2025").status_code == 401
    for scope in ("requests:read", "consent:read"):
        answer = client.get("/v1/reports/requests?year=2025", headers=api_key(scope))
        assert answer.status_code == 403 and answer.mimetype == "application/problem+json"
    assert client.get("/v1/reports/requests?year=2025", headers=api_key("admin")).status_code == 200


@pytest.mark.parametrize(
    "query", ["", "year=", "year=abc", "year=1969", "year=9999", "year=2025.0", "year=2025&format=xml", "year=2025&x=1"]
)
def test_the_api_refuses_a_bad_year_with_a_problem(client, admin, query):
    answer = client.get(f"/v1/reports/requests?{query}", headers=admin)
    assert answer.status_code == 422 and answer.mimetype == "application/problem+json", (query, answer.data)
    assert answer.json["errors"]


def test_the_report_is_in_the_openapi_document(client):
    operation = client.get("/openapi.json").json["paths"]["/v1/reports/requests"]["get"]
    assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    assert {p["name"] for p in operation["parameters"]} == {"year", "format"}
    assert operation["security"] == [{"bearerAuth": []}]


def test_days_are_measured_to_the_second_across_midnight(app):
    """A request answered after 36 hours counts 1.5 days, whatever the clock said at either end."""
    with app.app_context():
        item = rights.submit(type="access", email="t@example.com", verified=True, actor="test")
        start = utcnow().replace(year=2023, month=2, day=27, hour=18, minute=0, second=0, microsecond=0)
        item.created_at, item.status, item.finished_at = start, "completed", start + timedelta(hours=36)
        db.session.commit()
    [access] = [row for row in rows_of(figures(app, 2023)) if row["type"] == "access"]
    assert access["median_days_to_answer"] == access["mean_days_to_answer"] == 1.5
