"""The prefs command: imports and policy versions."""

from __future__ import annotations

import csv

from prefs_service.cli import main
from tests.helpers import Api


def write_csv(path, rows, header=("email", "channel", "purpose", "status", "occurred_at", "ip")):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_import_consents_records_every_row_with_the_ledger_rules(app, client, api_key, tmp_path):
    rows = [(f"imp{i}@example.com", "email", "newsletter", "granted", "2026-01-01T00:00:00Z", "192.0.2.9") for i in range(12_000)]
    rows.append(("imp0@example.com", "email", "newsletter", "withdrawn", "2026-02-01T00:00:00+00:00", ""))
    rows.append(("imp0@example.com", "email", "newsletter", "granted", "2026-01-15T00:00:00Z", ""))  # older, later in file
    path = write_csv(tmp_path / "consents.csv", rows)
    result = app.test_cli_runner().invoke(main, ["import", "consents", str(path)])
    assert result.exit_code == 0, result.output
    assert "Imported 12002 consent events" in result.output
    headers = api_key("consent:read")
    assert Api(client, headers).reasons(["imp0@example.com", "imp1@example.com", "imp11999@example.com"]) == [
        "withdrawn",
        "granted",
        "granted",
    ]
    event = client.get("/v1/consent/changes?limit=1", headers=headers).json["events"][0]
    assert event["source"] == "import" and event["evidence"]["ip"] == "192.0.2.0/24"


def test_one_bad_row_imports_nothing_and_names_the_line(app, client, api_key, tmp_path):
    rows = [
        ("ok@example.com", "email", "newsletter", "granted", "", ""),
        ("bad-address", "email", "newsletter", "granted", "", ""),
        ("ok2@example.com", "email", "newsletter", "granted", "last tuesday", ""),
    ]
    result = app.test_cli_runner().invoke(main, ["import", "consents", str(write_csv(tmp_path / "bad.csv", rows))])
    assert result.exit_code == 1
    assert "line 3: email:" in result.output and "line 4: occurred_at:" in result.output
    assert "nothing was imported" in result.output
    assert Api(client, api_key("consent:read")).reasons(["ok@example.com"]) == ["no_consent"]


def test_an_unknown_column_is_refused_before_reading_rows(app, tmp_path):
    path = write_csv(
        tmp_path / "x.csv", [("a@example.com", "email", "newsletter", "granted")], header=("mail", "channel", "purpose", "status")
    )
    result = app.test_cli_runner().invoke(main, ["import", "consents", str(path)])
    assert result.exit_code == 2 and "unknown: mail" in result.output


def test_policy_publish_and_list(app):
    runner = app.test_cli_runner()
    result = runner.invoke(main, ["policy", "publish", "2015-07", "--last-updated", "2015-07-01"])
    assert result.exit_code == 0, result.output
    assert "last updated 01 July 2015" in result.output
    assert runner.invoke(main, ["policy", "publish", "2015-07", "--last-updated", "2015-07-01"]).exit_code == 1
    assert "2015-07" in runner.invoke(main, ["policy", "list"]).output


def test_an_unknown_subject_id_is_caught_before_anything_is_written(app, client, api_key, tmp_path):
    rows = [
        ("ok@example.com", "", "email", "newsletter", "granted"),
        ("", "6f1d8a34-0000-4000-8000-000000000000", "email", "newsletter", "granted"),
    ]
    path = write_csv(tmp_path / "ids.csv", rows, header=("email", "subject_id", "channel", "purpose", "status"))
    result = app.test_cli_runner().invoke(main, ["import", "consents", str(path)])
    assert result.exit_code == 1 and "line 3: subject_id: no subject with that id" in result.output
    assert Api(client, api_key("consent:read")).reasons(["ok@example.com"]) == ["no_consent"]


# --- staff accounts -------------------------------------------------------------------

STAFF_PASSWORD = "a long enough password"


def staff_cli(app, *args, input=None):
    return app.test_cli_runner().invoke(main, ["staff", *args], input=input)


def signs_in(app, email: str, password: str = STAFF_PASSWORD) -> bool:
    from tests.web.staff_support import sign_in

    return sign_in(app.test_client(), email, password).status_code == 303


def test_staff_create_with_a_role_and_list(app):
    assert staff_cli(app, "create", "Boss@Example.com", "--role", "admin", input=STAFF_PASSWORD + "\n").exit_code == 0
    made = staff_cli(app, "create", "rev@example.com", input=STAFF_PASSWORD + "\n")
    assert made.exit_code == 0 and "(reviewer)" in made.output
    assert staff_cli(app, "create", "x@example.com", "--role", "owner", input=STAFF_PASSWORD + "\n").exit_code == 2
    lines = staff_cli(app, "list").output.splitlines()
    assert [line.split()[:3] for line in lines] == [["boss@example.com", "admin", "active"], ["rev@example.com", "reviewer", "active"]]
    assert STAFF_PASSWORD not in staff_cli(app, "list").output


def test_staff_disable_enable_and_the_last_admin(app):
    staff_cli(app, "create", "boss@example.com", "--role", "admin", input=STAFF_PASSWORD + "\n")
    staff_cli(app, "create", "rev@example.com", input=STAFF_PASSWORD + "\n")
    disabled = staff_cli(app, "disable", "REV@example.com")
    assert disabled.exit_code == 0 and "Disabled rev@example.com" in disabled.output
    assert not signs_in(app, "rev@example.com")
    assert "disabled" in staff_cli(app, "list").output
    assert "was disabled already" in staff_cli(app, "disable", "rev@example.com").output
    assert staff_cli(app, "enable", "rev@example.com").exit_code == 0 and signs_in(app, "rev@example.com")
    last = staff_cli(app, "disable", "boss@example.com")
    assert last.exit_code == 1 and "last active admin" in last.output
    demote = staff_cli(app, "set-role", "boss@example.com", "reviewer")
    assert demote.exit_code == 1 and "last active admin" in demote.output
    assert staff_cli(app, "set-role", "rev@example.com", "admin").exit_code == 0
    assert staff_cli(app, "disable", "boss@example.com").exit_code == 0
    unknown = staff_cli(app, "disable", "nobody@example.com")
    assert unknown.exit_code == 1 and "No staff account with that address" in unknown.output


def test_staff_unlock_and_reset_password(app):
    staff_cli(app, "create", "locked@example.com", input=STAFF_PASSWORD + "\n")
    for _ in range(5):
        signs_in(app, "locked@example.com", "wrong password!")
    assert not signs_in(app, "locked@example.com")
    assert "locked" in staff_cli(app, "list").output
    unlocked = staff_cli(app, "unlock", "locked@example.com")
    assert unlocked.exit_code == 0 and "Unlocked" in unlocked.output and signs_in(app, "locked@example.com")
    assert "was not locked" in staff_cli(app, "unlock", "locked@example.com").output

    from tests.web.staff_support import sign_in

    session = app.test_client()
    sign_in(session, "locked@example.com", STAFF_PASSWORD)
    assert session.get("/staff/dashboard").status_code == 200
    short = staff_cli(app, "reset-password", "locked@example.com", input="short\n")
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    reset = staff_cli(app, "reset-password", "locked@example.com", input="another long password\n")
    assert reset.exit_code == 0 and "another long password" not in reset.output
    assert session.get("/staff/dashboard").status_code == 302  # the old session ended
    assert not signs_in(app, "locked@example.com") and signs_in(app, "locked@example.com", "another long password")
