"""The console's yearly request metrics: the same figures as the API, a year picker, a CSV download."""

from __future__ import annotations

import html
import re

import pytest

from prefs_service.clock import utcnow
from tests.rights.report_support import make_requests
from tests.web.staff_support import alert_of, signed_in


@pytest.fixture
def lead(app):
    """An admin: the page, like GET /v1/reports/requests, is theirs alone."""
    make_requests(app)
    return signed_in(app, "lead@example.com", role="admin")


def table_of(page) -> dict[str, list[str]]:
    """Each row's heading (the type) → its cells, as text."""
    text = page.get_data(as_text=True)
    body = re.search(r"<tbody>(.*?)</tbody>", text, re.S).group(1)
    return {
        html.unescape(heading): [html.unescape(cell.strip()) for cell in re.findall(r"<td[^>]*>(.*?)</td>", cells, re.S)]
        for heading, cells in re.findall(r'<th scope="row">(.*?)</th>(.*?)</tr>', body, re.S)
    }


def test_the_page_shows_each_types_figures_for_the_year_asked(lead):
    page = lead.get("/staff/reports/requests?year=2025")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    text = page.get_data(as_text=True)
    assert "<h1>Rights requests in 2025</h1>" in text and "The year is not over" not in text
    assert table_of(page) == {
        "Access": ["7", "2", "2", "1", "3", "10.0", "11.2"],
        "Erasure": ["4", "3", "1", "0", "0", "4.0", "4.5"],
        "Correction": ["0", "0", "0", "0", "0", "—", "—"],
        "Opt-out of sale/sharing": ["0", "0", "0", "0", "0", "—", "—"],
        "Limit sensitive data": ["0", "0", "0", "0", "0", "—", "—"],
    }
    assert table_of(lead.get("/staff/reports/requests?year=2024"))["Erasure"] == ["1", "0", "1", "0", "0", "30.0", "30.0"]


def test_the_year_picker_offers_every_year_since_the_first_request_and_opens_on_last_year(lead):
    this_year = utcnow().year
    page = lead.get("/staff/reports/requests")
    text = page.get_data(as_text=True)
    assert f"<h1>Rights requests in {this_year - 1}</h1>" in text
    offered = re.findall(r'<option value="(\d+)"( selected)?>', text)
    assert [int(year) for year, _ in offered] == list(range(this_year, 2023, -1))
    assert [int(year) for year, selected in offered if selected] == [this_year - 1]
    # a year with no request is shown (and offered) all the same
    page = lead.get("/staff/reports/requests?year=2001")
    assert '<option value="2001" selected>' in page.get_data(as_text=True)
    assert set(map(tuple, table_of(page).values())) == {("0", "0", "0", "0", "0", "—", "—")}


def test_this_year_says_it_is_not_over(lead):
    text = lead.get(f"/staff/reports/requests?year={utcnow().year}").get_data(as_text=True)
    assert "The year is not over" in text


def test_the_csv_link_downloads_the_same_figures_as_the_api(lead, client, admin):
    text = lead.get("/staff/reports/requests?year=2025").get_data(as_text=True)
    link = html.unescape(re.search(r'<a href="([^"]+)" download>Download 2025 as CSV</a>', text).group(1))
    download = lead.get(link)
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert download.headers["Content-Disposition"] == 'attachment; filename="requests-2025.csv"'
    assert download.data == client.get("/v1/reports/requests?year=2025&format=csv", headers=admin).data


@pytest.mark.parametrize("year", ["abc", "0", "1969", "99999", "2025.5", ""])
def test_a_bad_year_goes_back_to_last_year_saying_why(lead, year):
    answer = lead.get(f"/staff/reports/requests?year={year}")
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/staff/reports/requests")
    assert "Choose a year from 1970 to 9998" in alert_of(lead.get(answer.headers["Location"]))


def test_only_an_admin_sees_it_and_only_an_admins_navigation_links_to_it(app, lead, client):
    reviewer = signed_in(app, "reviewer@example.com")
    for path in ("/staff/reports/requests?year=2025", "/staff/reports/requests?year=2025&format=csv"):
        answer = client.get(path)
        assert answer.status_code == 302 and "/staff/login" in answer.headers["Location"], path
        refused = reviewer.get(path)
        assert refused.status_code == 403, path
        assert "Only an admin may use this page" in refused.get_data(as_text=True) and "<table" not in refused.get_data(as_text=True)
        assert lead.get(path).status_code == 200, path
    assert table_of(lead.get("/staff/reports/requests?year=2025"))["Access"][0] == "7"
    link = '<a href="/staff/reports/requests">Request metrics</a>'
    assert link in lead.get("/staff/dashboard").get_data(as_text=True)
    assert link not in reviewer.get("/staff/dashboard").get_data(as_text=True)
