"""The person's own receipts: downloaded from the preference center through
their signed link, and inside their access export; none once erased."""

from __future__ import annotations

import io
import json
import re
import zipfile
from urllib.parse import urlsplit

import pytest

from tests.rights.conftest import link_in, mails_to
from tests.rights.test_lifecycle import make_request

from .receipt_support import schema_errors


@pytest.fixture
def headers(api_key):
    return api_key("consent:read", "consent:write", "subjects:write", "admin")


@pytest.fixture
def person(api):
    subject = api.post("/v1/subjects", {"email": "pat@example.com", "phone": "+442079460555"}).json
    api.record(subject_id=subject["id"], occurred_at="2026-01-01T09:00:00Z")
    api.record(subject_id=subject["id"], status="withdrawn", occurred_at="2026-02-01T09:00:00Z")
    api.record(subject_id=subject["id"], channel="phone", purpose="marketing", occurred_at="2026-02-02T09:00:00Z")
    link = api.links(subject_id=subject["id"])
    return {"id": subject["id"], "path": urlsplit(link["preferences_url"]).path}


def _unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_the_preference_page_offers_the_download_and_it_holds_every_receipt_in_both_formats(client, person):
    page = client.get(person["path"]).get_data(as_text=True)
    href = re.search(r'href="([^"]+/receipts)"', page).group(1)
    assert href == person["path"] + "/receipts"
    response = client.get(href)
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert response.headers["Cache-Control"] == "no-store"
    assert "consent-receipts.zip" in response.headers["Content-Disposition"]
    files = _unzip(response.data)
    assert set(files) == {"iso27560.json", "kantara.json", "README.txt"}
    for fmt in ("iso27560", "kantara"):
        documents = json.loads(files[f"{fmt}.json"])
        assert len(documents) == 3
        assert all(schema_errors(fmt, document) == [] for document in documents)
    kantara = json.loads(files["kantara.json"])
    assert [r["consentStatus"] for r in kantara] == ["given", "withdrawn", "given"]
    assert {r["piiPrincipalId"] for r in kantara} == {person["id"]}
    # How to withdraw: the person's own preferences link.
    assert all("/preferences/" in r["withdrawal"]["url"] and r["withdrawal"]["url"].count("/") > 3 for r in kantara)


def test_a_bad_or_tampered_link_downloads_nothing(client, person):
    assert client.get(person["path"][:-3] + "xyz/receipts").status_code == 404
    assert client.get("/preferences/not-a-token/receipts").status_code == 404


def erase(client, headers, worker, subject_id: str) -> None:
    response = client.post("/v1/requests", json={"type": "erasure", "subject_id": subject_id, "verified": True}, headers=headers)
    assert response.status_code == 201
    worker.wait()
    assert client.get(f"/v1/requests/{response.json['id']}", headers=headers).json["status"] == "completed"


def test_an_erased_persons_receipts_are_not_downloadable(client, person, headers, worker):
    before = client.get(person["path"] + "/receipts")
    assert before.status_code == 200
    history = client.get(f"/v1/subjects/{person['id']}/consents?history=1", headers=headers).json["history"]
    erase(client, headers, worker, person["id"])
    assert client.get(person["path"] + "/receipts").status_code == 404
    assert all(client.get(f"/v1/consent/events/{e['id']}/receipt", headers=headers).status_code == 404 for e in history)


def test_the_access_export_includes_the_receipts(client, api, smtp, worker):
    subject = api.post("/v1/subjects", {"email": "ann@example.com"}).json
    api.record(subject_id=subject["id"])
    make_request(client, type="access", email="ann@example.com")
    worker.wait()
    client.post(link_in(mails_to(smtp, "ann@example.com")[0], "/privacy-requests/verify/"))
    worker.wait()
    [ready] = [m for m in mails_to(smtp, "ann@example.com") if "ready to download" in m["Subject"]]
    files = _unzip(client.get(link_in(ready, "/privacy-requests/download/")).data)
    assert {"receipts/iso27560.json", "receipts/kantara.json", "receipts/README.txt"} <= set(files)
    history = json.loads(files["data.json"])["consent_history"]
    for fmt in ("iso27560", "kantara"):
        documents = json.loads(files[f"receipts/{fmt}.json"])
        assert len(documents) == len(history) == 1
        assert schema_errors(fmt, documents[0]) == []
    assert "receipts/kantara.json" in files["README.txt"].decode()
