"""`prefs ledger verify-receipt FILE`: a genuine receipt passes offline; a
changed state or time, a wrong proof or a bad signature is refused (exit 1).

The log here is built by the test from RFC 9162's definitions (rfc9162.py),
with a key of its own: the command must need nothing but the file."""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from prefs_service.cli import main
from prefs_service.ledger import receipt_proof
from prefs_service.ledger.receipt_formats import BUILDERS, Controller, ReceiptFacts

from . import rfc9162_paths as rfc9162
from .receipt_support import schema_errors

SUBJECT = uuid.UUID("1b4e28ba-2fa1-11d2-883f-0016d3cca427")
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC = base64.b64encode(KEY.public_key().public_bytes_raw()).decode()


def _event(i: int) -> dict:
    return {
        "id": 100 + i,
        "subject_id": str(SUBJECT),
        "channel": "email",
        "purpose": "newsletter",
        "status": "granted" if i % 2 == 0 else "withdrawn",
        "source": "signup",
        "occurred_at": f"2026-03-0{1 + i % 9}T10:00:00.{i:06d}Z",
        "recorded_at": f"2026-03-0{1 + i % 9}T10:00:01Z",
        "policy_version": None if i == 3 else "2026-01",
        "recorded_by": "api_key:1",
    }


def _encode(event: dict, commitment: bytes | None) -> bytes:
    """The leaf, written out by hand from the README's description."""
    from datetime import UTC, datetime

    def us(text: str) -> bytes:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
        return str((delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds).encode()

    values = [str(event["id"]).encode(), SUBJECT.hex.encode(), b"email", b"newsletter", event["status"].encode(), b"signup",
              us(event["occurred_at"]), us(event["recorded_at"]),
              None if event["policy_version"] is None else event["policy_version"].encode(), b"api_key:1", commitment]  # fmt: skip
    return b"\x01" + b"".join(b"\xff\xff\xff\xff" if v is None else len(v).to_bytes(4, "big") + v for v in values)


def _log(size: int = 7):
    events = [_event(i) for i in range(size)]
    commitments = [bytes([i]) * 32 if i != 5 else None for i in range(size)]
    leaves = [_encode(e, c) for e, c in zip(events, commitments, strict=True)]
    root = base64.b64encode(rfc9162.mth(leaves)).decode()
    timestamp = 1_772_000_000_000
    body = f"prefs-ledger/v1\n{size}\n{root}\n{timestamp}\n".encode()
    checkpoint = {
        "origin": "prefs-ledger/v1",
        "tree_size": size,
        "root_hash": root,
        "timestamp": timestamp,
        "key_id": receipt_proof.key_id(KEY.public_key().public_bytes_raw()),
        "signature": base64.b64encode(KEY.sign(body)).decode(),
    }
    return events, commitments, leaves, checkpoint


def receipt(fmt: str, index: int = 4, size: int = 7) -> dict:
    events, commitments, leaves, checkpoint = _log(size)
    proof = {
        "status": "included",
        "event": events[index],
        "commitment": None if commitments[index] is None else base64.b64encode(commitments[index]).decode(),
        "leafIndex": index,
        "treeSize": size,
        "inclusionProof": [base64.b64encode(node).decode() for node in rfc9162.path(index, leaves)],
        "checkpoint": checkpoint,
        "publicKey": {"keyId": checkpoint["key_id"], "ed25519": PUBLIC},
    }
    controller = Controller("Example Ltd", "privacy@example.com", "https://prefs.example.com", "1 Quay St, Leeds", "+44 20 7946 0000")
    facts = ReceiptFacts(
        event=events[index], purpose_label="Newsletter", marketing=True, jurisdiction="GB", policy_url="https://example.com/privacy",
        controller=controller, withdraw_url="https://prefs.example.com/preferences", proof=proof,
    )  # fmt: skip
    return BUILDERS[fmt](facts)


def run(tmp_path: Path, document, *args: str):
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(document))
    return CliRunner().invoke(main, ["ledger", "verify-receipt", str(path), *args])


@pytest.mark.parametrize("fmt", ["iso27560", "kantara"])
@pytest.mark.parametrize(("index", "size"), [(0, 1), (4, 7), (6, 7), (5, 7), (3, 8)])
def test_a_genuine_receipt_verifies(tmp_path, fmt, index, size):
    document = receipt(fmt, index, size)
    assert schema_errors(fmt, document) == []
    result = run(tmp_path, document, "--key", PUBLIC)
    assert result.exit_code == 0, result.output
    assert f"event {100 + index} is leaf {index} of the log's tree of {size}" in result.output


def _kantara_status(doc):
    doc["consentStatus"] = "given" if doc["consentStatus"] == "withdrawn" else "withdrawn"


def _kantara_time(doc):
    doc["consentTimestamp"] += 3600


def _iso_status(doc):
    doc["dpv:hasConsentStatus"]["@type"] = "dpv:ConsentWithdrawn"


def _iso_time(doc):
    doc["dpv:hasConsentStatus"]["dpv:isIndicatedAtTime"] = "2026-03-05T11:00:00Z"


def _both_status(doc):  # the readable state and the ledger event, changed together
    proof = receipt_proof.proof_block(doc)
    assert proof["event"]["status"] == "granted"
    proof["event"]["status"] = "withdrawn"
    if "consentStatus" in doc:
        doc["consentStatus"] = "withdrawn"
    else:
        doc["dpv:hasConsentStatus"]["@type"] = "dpv:ConsentWithdrawn"


def _event_time(doc):
    receipt_proof.proof_block(doc)["event"]["recorded_at"] = "2026-03-05T10:00:02Z"


def _wrong_path(doc):
    proof = receipt_proof.proof_block(doc)
    proof["inclusionProof"][0] = base64.b64encode(b"\x07" * 32).decode()


def _short_path(doc):
    receipt_proof.proof_block(doc)["inclusionProof"].pop()


def _other_index(doc):
    receipt_proof.proof_block(doc)["leafIndex"] = 2


def _bad_signature(doc):
    checkpoint = receipt_proof.proof_block(doc)["checkpoint"]
    signature = bytearray(base64.b64decode(checkpoint["signature"]))
    signature[0] ^= 1
    checkpoint["signature"] = base64.b64encode(bytes(signature)).decode()


def _other_time_signed(doc):
    receipt_proof.proof_block(doc)["checkpoint"]["timestamp"] += 1


def _commitment(doc):
    receipt_proof.proof_block(doc)["commitment"] = base64.b64encode(b"\x09" * 32).decode()


TAMPERING = {
    "kantara": [_kantara_status, _kantara_time, _both_status, _event_time, _wrong_path, _short_path, _other_index, _bad_signature,
                _other_time_signed, _commitment],
    "iso27560": [_iso_status, _iso_time, _both_status, _event_time, _wrong_path, _short_path, _other_index, _bad_signature,
                 _other_time_signed, _commitment],
}  # fmt: skip


@pytest.mark.parametrize(
    ("fmt", "tamper"), [(fmt, t) for fmt, ts in TAMPERING.items() for t in ts], ids=lambda v: getattr(v, "__name__", v)
)
def test_a_changed_receipt_is_refused(tmp_path, fmt, tamper):
    document = copy.deepcopy(receipt(fmt))
    tamper(document)
    result = run(tmp_path, document, "--key", PUBLIC)
    assert result.exit_code == 1, result.output
    assert "NOT VALID" in result.output


def test_a_time_no_calendar_holds_is_not_valid_rather_than_a_crash(tmp_path):
    document = copy.deepcopy(receipt("kantara"))
    document["consentTimestamp"] = 10**20
    result = run(tmp_path, document)
    assert result.exit_code == 1 and "NOT VALID" in result.output and "malformed" in result.output, result.output


def test_a_receipt_signed_by_a_key_the_log_never_published_is_refused(tmp_path):
    result = run(tmp_path, receipt("kantara"), "--key", base64.b64encode(b"\x01" * 32).decode())
    assert result.exit_code == 1 and "not among the log's published keys" in result.output


def test_a_pending_proof_is_not_valid_and_says_so(tmp_path):
    document = receipt("kantara")
    document["ledgerProof"] = {"status": "pending"}
    result = run(tmp_path, document)
    assert result.exit_code == 1 and "proof pending" in result.output


def test_not_json_and_not_a_receipt_exit_1(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    assert CliRunner().invoke(main, ["ledger", "verify-receipt", str(bad)]).exit_code == 1
    assert run(tmp_path, {"hello": "world"}).exit_code == 1
    assert run(tmp_path, []).exit_code == 1


def test_an_array_of_receipts_names_the_bad_one(tmp_path):
    good, bad = receipt("kantara", 1), receipt("kantara", 2)
    _bad_signature(bad)
    result = run(tmp_path, [good, bad], "--key", PUBLIC)
    assert result.exit_code == 1
    assert "#1: valid" in result.output and "#2: NOT VALID" in result.output


def test_it_runs_with_no_database_reachable(tmp_path):
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt("iso27560")))
    env = {**os.environ, "PREFS_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "PREFS_VAR_DIR": str(tmp_path)}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "prefs"), "ledger", "verify-receipt", str(path), "--key", PUBLIC],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "valid: event 104" in done.stdout
