"""`prefs screen FILE`: the same answers as POST /v1/consent/screen, from a file or stdin."""

from __future__ import annotations

import json

import pytest

from prefs_service.cli import main
from prefs_service.consent import lists


@pytest.fixture
def headers(api_key):
    return api_key("consent:read", "consent:write")


@pytest.fixture
def people(client, headers, api):
    api.record(email="granted@example.com")
    api.record(email="withdrawn@example.com", status="withdrawn")
    assert client.post("/v1/suppressions", json={"email": "gone@example.com", "reason": "complaint"}, headers=headers).status_code == 201


def screened_by_api(client: object, headers: dict, body: bytes, content_type: str, **query) -> bytes:
    response = client.post(  # type: ignore[attr-defined]
        "/v1/consent/screen",
        query_string={"channel": "email", "purpose": "newsletter", **query},
        data=body,
        headers={**headers, "Content-Type": content_type},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data()


def test_a_csv_file_is_answered_as_the_api_answers_it_with_a_summary(app, client, headers, people, tmp_path):
    rows = ["id,email", "1,granted@example.com", "2,withdrawn@example.com", "3,not an address", "4,gone@example.com"]
    rows += [f"{n},p{n}@example.com" for n in range(5, lists.CHUNK + 500)]  # two chunks
    body = ("\n".join(rows) + "\n").encode()
    path = tmp_path / "list.csv"
    path.write_bytes(body)
    out = tmp_path / "answers.csv"
    args = ["screen", str(path), "--channel", "email", "--purpose", "newsletter", "--column", "email", "--out", str(out)]
    result = app.test_cli_runner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == screened_by_api(client, headers, body, "text/csv", column="email")
    assert out.read_bytes().splitlines()[1:5] == [
        b"granted@example.com,true,granted,,",
        b"withdrawn@example.com,false,withdrawn,,",
        b"not an address,false,invalid,,",
        b"gone@example.com,false,suppressed,,",
    ]
    assert "Screening" in result.stderr
    summary = f"Screened {lists.CHUNK + 499} recipients"
    assert summary in result.stderr and "1 allowed" in result.stderr and f"{lists.CHUNK + 495} no_consent" in result.stderr


def test_ndjson_from_stdin_to_stdout(app, client, headers, people):
    body = b'"granted@example.com"\n{"recipient": "withdrawn@example.com"}\nnot json\n'
    result = app.test_cli_runner().invoke(
        main, ["screen", "-", "--channel", "email", "--purpose", "newsletter", "--format", "ndjson"], input=body
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.encode() == screened_by_api(client, headers, body, "application/x-ndjson")
    assert [json.loads(line)["reason"] for line in result.stdout.splitlines()] == ["granted", "withdrawn", "invalid"]
    assert "Screened 3 recipients" in result.stderr


def test_the_format_comes_from_the_extension_and_bad_options_say_what_to_fix(app, tmp_path):
    runner = app.test_cli_runner()
    listed = tmp_path / "list.jsonl"
    listed.write_bytes(b'"granted@example.com"\n')
    ok = runner.invoke(main, ["screen", str(listed), "--channel", "email", "--purpose", "newsletter"])
    assert ok.exit_code == 0 and ok.stdout == '{"recipient":"granted@example.com","allowed":false,"reason":"no_consent"}\n'

    unknown = tmp_path / "list.dat"
    unknown.write_bytes(b"a@example.com\n")
    no_format = runner.invoke(main, ["screen", str(unknown), "--channel", "email", "--purpose", "newsletter"])
    assert no_format.exit_code == 2 and "--format" in no_format.stderr

    bad_purpose = runner.invoke(main, ["screen", str(listed), "--channel", "email", "--purpose", "marketing"])
    assert bad_purpose.exit_code == 1 and "purpose" in bad_purpose.stderr and "newsletter" in bad_purpose.stderr

    partner = runner.invoke(main, ["screen", str(listed), "--channel", "partner", "--purpose", "share_for_marketing"])
    assert partner.exit_code == 1 and "identifier_type" in partner.stderr

    csv_file = tmp_path / "list.csv"
    csv_file.write_bytes(b"name,mail\nAnn,a@example.com\n")
    no_column = runner.invoke(main, ["screen", str(csv_file), "--channel", "email", "--purpose", "newsletter", "--column", "email"])
    assert no_column.exit_code == 1 and "'mail'" in no_column.stderr and no_column.stdout == ""
