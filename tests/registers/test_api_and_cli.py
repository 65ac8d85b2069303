"""The import through `prefs registers` and through the API, on both backends."""

from __future__ import annotations

import pytest

from prefs_service.access import service as access
from prefs_service.cli import main
from prefs_service.extensions import db

from .helpers import UK, US, fixed, listed, number_hash, write

BODY = "".join(fixed(n) + "\r\n" for n, _ in UK[:2]).encode()
URL = "/v1/registers/tps/imports?list_date=2026-12-01"


def test_cli_imports_a_full_list_and_a_delta_reporting_rejected_lines(app, tmp_path):
    runner = app.test_cli_runner()
    path = write(tmp_path / "tps.txt", [UK[0][0], "0207 00000", UK[1][0], "nonsense"])
    result = runner.invoke(main, ["registers", "import", "tps", str(path), "--list-date", "2026-12-01"])
    assert result.exit_code == 0, result.output
    assert "2 lines accepted, 2 rejected" in result.output
    report = tmp_path / "tps.txt.rejected.txt"
    assert report.read_text() == "line 2: not a valid UK number: 0207 *****\nline 4: not a valid UK number: nonsense\n"

    delta = write(tmp_path / "delta.txt", ["-" + UK[0][0], UK[2][0]])
    own_report = tmp_path / "rejects.txt"
    result = runner.invoke(
        main, ["registers", "import", "tps", str(delta), "--list-date", "2026-12-02", "--delta", "--report", str(own_report)]
    )
    assert result.exit_code == 0, result.output
    assert "2 lines accepted, 0 rejected, 1 entries removed" in result.output
    assert not own_report.exists()  # nothing rejected, no report
    with app.app_context():
        assert not listed("tps", number_hash("tps", UK[0][1]))
        assert listed("tps", number_hash("tps", UK[2][1]))

    result = runner.invoke(main, ["registers", "list"])
    assert result.exit_code == 0
    assert "tps   list of 2026-12-01, 2 entries" in result.output
    assert "dnc   no list imported" in result.output


def test_cli_refuses_a_bad_date_a_delta_without_a_list_and_an_empty_import(app, tmp_path):
    runner = app.test_cli_runner()
    path = write(tmp_path / "dnc.txt", [US[0][0]])
    result = runner.invoke(main, ["registers", "import", "dnc", str(path), "--list-date", "2026-13-01"])
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output
    result = runner.invoke(main, ["registers", "import", "dnc", str(path), "--list-date", "2026-12-01", "--delta"])
    assert result.exit_code == 1 and "no current full list" in result.output
    bad = write(tmp_path / "bad.txt", ["12"])
    result = runner.invoke(main, ["registers", "import", "dnc", str(bad), "--list-date", "2026-12-01"])
    assert result.exit_code == 1 and "No line of the file was accepted" in result.output and "marked failed" in result.output


def test_api_uploads_a_full_list_and_a_delta(app, client, admin):
    answer = client.post(URL, data=BODY, headers={**admin, "Content-Type": "text/plain"})
    assert answer.status_code == 201, answer.json
    assert answer.json | {"seconds": 0} == {
        "register": "tps",
        "kind": "full",
        "list_id": answer.json["list_id"],
        "list_date": "2026-12-01",
        "status": "current",
        "accepted": 2,
        "rejected": 0,
        "removed": 0,
        "entries": 2,
        "seconds": 0,
        "rejections": [],
    }
    delta = f"-{UK[1][0]}\r\n0207 12\r\n".encode()
    answer = client.post(URL + "&delta=true", data=delta, headers={**admin, "Content-Type": "application/octet-stream"})
    assert answer.status_code == 201, answer.json
    assert (answer.json["kind"], answer.json["removed"], answer.json["rejections"]) == (
        "delta",
        1,
        [{"line": 2, "reason": "not a valid UK number: 0207 **"}],
    )
    with app.app_context():
        assert listed("tps", number_hash("tps", UK[0][1])) and not listed("tps", number_hash("tps", UK[1][1]))
    states = {s["register"]: s for s in client.get("/v1/registers", headers=admin).json}
    assert (states["tps"]["list_date"], states["tps"]["entries"], states["tps"]["last_import_status"]) == ("2026-12-01", 1, "applied")
    assert states["mps"]["list_date"] is None


@pytest.mark.parametrize(
    ("url", "body", "content_type", "status"),
    [
        ("/v1/registers/xyz/imports?list_date=2026-12-01", BODY, "text/plain", 404),
        ("/v1/registers/tps/imports?list_date=2026-02-30", BODY, "text/plain", 422),
        ("/v1/registers/tps/imports", BODY, "text/plain", 422),
        ("/v1/registers/tps/imports?list_date=2026-12-01&delta=maybe", BODY, "text/plain", 422),
        (URL, b"", "text/plain", 422),
        (URL, BODY, "application/json", 415),
        (URL, b"0207\r\n", "text/plain", 422),  # nothing accepted: the import fails, the list stays
        (URL + "&delta=true", BODY, "text/plain", 409),  # no full list yet
    ],
)
def test_api_refuses_bad_uploads_with_problems(client, admin, url, body, content_type, status):
    answer = client.post(url, data=body, headers={**admin, "Content-Type": content_type})
    assert answer.status_code == status, answer.json
    assert answer.mimetype == "application/problem+json"


def test_api_refuses_an_upload_over_the_limit(make_app):
    app = make_app(max_register_upload_bytes=1024)
    with app.app_context():
        _, plaintext = access.create_key(name="t", scopes=["admin"], actor="test")
        db.session.commit()
    answer = app.test_client().post(URL, data=b"0" * 2048, headers={"Authorization": f"Bearer {plaintext}", "Content-Type": "text/plain"})
    assert answer.status_code == 413


def test_imports_and_states_need_an_admin_key(client, api_key):
    for scope in ("consent:read", "consent:write"):
        headers = api_key(scope)
        assert client.post(URL, data=BODY, headers={**headers, "Content-Type": "text/plain"}).status_code == 403
        assert client.get("/v1/registers", headers=headers).status_code == 403
    assert client.post(URL, data=BODY, headers={"Content-Type": "text/plain"}).status_code == 401
