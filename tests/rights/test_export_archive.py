"""The access export as a person opens it: CSVs a reader understands, and every
file in the ZIP dated when the export was made."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

from tests.rights.conftest import link_in, mails_to
from tests.rights.test_lifecycle import make_request


def exported_zip(client, smtp, worker) -> zipfile.ZipFile:
    make_request(client, type="access", email="ann@example.com")
    worker.wait()
    client.post(link_in(mails_to(smtp, "ann@example.com")[0], "/privacy-requests/verify/"))
    worker.wait()
    [ready] = [m for m in mails_to(smtp, "ann@example.com") if "ready to download" in m["Subject"]]
    download = client.get(link_in(ready, "/privacy-requests/download/"))
    assert download.status_code == 200
    return zipfile.ZipFile(io.BytesIO(download.data))


def test_the_consent_csv_says_yes_or_no_and_data_json_keeps_booleans(client, person, smtp, worker):
    with exported_zip(client, smtp, worker) as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read("consent.csv").decode())))
        data = json.loads(archive.read("data.json"))
        readme = archive.read("README.txt").decode()
    allowed = {(row["channel"], row["purpose"]): row["allowed"] for row in rows}
    assert allowed[("email", "newsletter")] == "yes" and allowed[("email", "offers")] == "no"
    assert set(allowed.values()) == {"yes", "no"}
    assert not any(value in ("True", "False") for row in rows for value in row.values())
    assert {(c["channel"], c["purpose"]): c["allowed"] for c in data["consent"]}[("email", "newsletter")] is True
    assert "allowed: Whether we may contact you this way now: yes or no." in readme


def test_every_file_in_the_zip_is_dated_when_the_export_was_made(client, person, smtp, worker):
    with exported_zip(client, smtp, worker) as archive:
        generated_at = datetime.fromisoformat(json.loads(archive.read("data.json"))["generated_at"])
        dates = {info.filename: datetime(*info.date_time, tzinfo=UTC) for info in archive.infolist()}
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
        assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in archive.infolist())
    assert {"data.json", "README.txt", "consent.csv", "consent_history.csv"} <= set(dates)
    # ZIP keeps times to two seconds, without a zone: ours are UTC.
    assert all(generated_at - timedelta(seconds=2) <= when <= generated_at for when in dates.values()), (generated_at, dates)
    assert datetime.now(UTC) - generated_at < timedelta(minutes=5)
    assert set(modes.values()) == {0o600}
