"""Receipts once the log holds their events: the API answers 200 with the
inclusion proof and the signed checkpoint, `prefs ledger verify-receipt`
accepts them offline, and a person's old receipts still verify after we
erase them (while no new ones are issued)."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from prefs_service.cli import main
from tests.helpers import eventually

from . import rfc9162
from .receipt_support import schema_errors


@pytest.fixture
def headers(api_key):
    return api_key("consent:read", "consent:write", "admin")


def _verify(tmp_path, document, keys: dict | None = None):
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(document))
    args = ["ledger", "verify-receipt", str(path)]
    if keys is not None:
        keys_path = tmp_path / "keys.json"
        keys_path.write_text(json.dumps(keys))
        args += ["--keys-file", str(keys_path)]
    return CliRunner().invoke(main, args)


def _in_the_log(client, headers, sequence, events: list[dict]) -> None:
    """Sequence until a signed checkpoint covers every event. On PostgreSQL the
    sequencer waits for transactions still open (a background job's, say)."""

    def covered() -> bool:
        sequence()
        return all(client.get(f"/v1/consent/events/{e['id']}/receipt", headers=headers).status_code == 200 for e in events)

    eventually(covered, timeout=10, what="a signed checkpoint covering every event")


def _people(writer) -> list[dict]:
    events = []
    for n in range(3):
        email = f"p{n}@example.com"
        events.append(
            writer.record(expect=None, email=email, occurred_at="2026-03-01T10:00:00.123456Z", evidence={"ip": "203.0.113.5"}).json
        )
        events.append(writer.record(expect=None, email=email, status="withdrawn", occurred_at="2026-03-02T10:00:00Z").json)
    return events


@pytest.mark.parametrize("fmt", ["iso27560", "kantara"])
def test_a_sequenced_events_receipt_is_proved_and_verifies_offline(client, writer, headers, sequence, tmp_path, fmt):
    events = _people(writer)
    first = client.get(f"/v1/consent/events/{events[1]['id']}/receipt?format={fmt}", headers=headers)
    assert first.status_code == 202 and first.headers["Retry-After"] == "2"
    _in_the_log(client, headers, sequence, events)
    keys = client.get("/v1/ledger/public-keys", headers=headers).json
    for event in events:
        response = client.get(f"/v1/consent/events/{event['id']}/receipt?format={fmt}", headers=headers)
        assert response.status_code == 200 and "Retry-After" not in response.headers
        document = response.json
        assert schema_errors(fmt, document) == []
        proof = document["ledgerProof" if fmt == "kantara" else "prefs:ledgerProof"]
        assert proof["status"] == "included" and proof["event"]["id"] == event["id"]
        # The proof holds under an independent RFC 9162 check too.
        leaf = base64.b64decode(client.get(f"/v1/ledger/proofs/inclusion?event_id={event['id']}", headers=headers).json["leaf_hash"])
        path = [base64.b64decode(node) for node in proof["inclusionProof"]]
        root = base64.b64decode(proof["checkpoint"]["root_hash"])
        assert rfc9162.verify_inclusion(proof["leafIndex"], proof["treeSize"], leaf, path, root)
        result = _verify(tmp_path, document, keys)
        assert result.exit_code == 0, result.output
        assert f"event {event['id']} is leaf {proof['leafIndex']}" in result.output


def test_a_receipt_with_its_state_changed_is_refused(client, writer, headers, sequence, tmp_path):
    events = _people(writer)
    _in_the_log(client, headers, sequence, events)
    document = client.get(f"/v1/consent/events/{events[0]['id']}/receipt?format=kantara", headers=headers).json
    document["consentStatus"] = "withdrawn"
    document["ledgerProof"]["event"]["status"] = "withdrawn"
    result = _verify(tmp_path, document)
    assert result.exit_code == 1 and "NOT VALID" in result.output


def test_the_persons_download_is_proved_and_verifies(client, writer, headers, sequence, tmp_path):
    events = _people(writer)
    _in_the_log(client, headers, sequence, events)
    link = writer.links(subject_id=events[0]["subject_id"])
    archive = client.get(urlsplit(link["preferences_url"]).path + "/receipts")
    with zipfile.ZipFile(io.BytesIO(archive.data)) as files:
        kantara = files.read("kantara.json")
    path = tmp_path / "kantara.json"
    path.write_bytes(kantara)
    result = CliRunner().invoke(main, ["ledger", "verify-receipt", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.count(": valid: ") == 2


def test_an_erased_persons_old_receipts_still_verify_and_no_new_ones_are_issued(client, writer, headers, sequence, worker, tmp_path):
    events = _people(writer)
    _in_the_log(client, headers, sequence, events)
    keys = client.get("/v1/ledger/public-keys", headers=headers).json
    kept = client.get(f"/v1/consent/events/{events[0]['id']}/receipt?format=iso27560", headers=headers).json
    request = client.post(
        "/v1/requests", json={"type": "erasure", "subject_id": events[0]["subject_id"], "verified": True}, headers=headers
    )
    assert request.status_code == 201
    worker.wait()
    assert client.get(f"/v1/requests/{request.json['id']}", headers=headers).json["status"] == "completed"
    assert client.get(f"/v1/consent/events/{events[0]['id']}/receipt", headers=headers).status_code == 404
    result = _verify(tmp_path, kept, keys)
    assert result.exit_code == 0, result.output
    # Another person's receipt, issued once the erasure's audit rows are in the log, proves against the grown tree.
    later_url = f"/v1/consent/events/{events[2]['id']}/receipt?format=kantara"

    def grown() -> dict | None:
        sequence()
        found = client.get(later_url, headers=headers).json
        return found if found["ledgerProof"]["treeSize"] > kept["prefs:ledgerProof"]["treeSize"] else None

    later = eventually(grown, timeout=10, what="the erasure's audit rows in the log")
    assert _verify(tmp_path, later, keys).exit_code == 0
