"""The log in operation: the worker sequences and signs on its own, erasure
leaves it verifiable, a new signing key keeps old checkpoints checkable, a
witness receives every checkpoint, and the endpoints refuse bad input with a 4xx."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from prefs_service.db import scopes
from prefs_service.extensions import db
from prefs_service.ledger import leaves, sequencer
from tests.helpers import Api, eventually

from . import rfc9162

OTHER_KEY = base64.b64encode(b"another-ledger-signing-key-32-by").decode()


def _covered(client, headers, event_id: int) -> bool:
    return client.get("/v1/ledger/proofs/inclusion", query_string={"event_id": event_id}, headers=headers).status_code == 200


def test_the_worker_sequences_and_signs_new_events_on_its_own(app, writer, worker, verify):
    event_id = writer.record(email="ann@example.com").json["id"]
    eventually(lambda: _covered(writer.client, writer.headers, event_id), timeout=60, what="a signed checkpoint covering the event")
    proof = writer.get("/v1/ledger/proofs/inclusion", event_id=event_id).json
    with app.app_context():
        leaf = leaves.leaf_for(leaves.CONSENT_EVENT, event_id)
    assert rfc9162.verify_inclusion(
        proof["leaf_index"], proof["tree_size"], rfc9162.leaf_hash(leaf), [base64.b64decode(p) for p in proof["audit_path"]],
        base64.b64decode(proof["checkpoint"]["root_hash"]),
    )  # fmt: skip
    assert verify()[0] == 0


def test_erasure_redacts_the_evidence_and_the_log_still_verifies(app, client, api_key, worker, sequence, verify):
    headers = api_key("consent:read", "consent:write", "subjects:write", "requests:write", "requests:read")
    api = Api(client, headers)
    event_id = api.record(email="erin@example.com", evidence={"ip": "203.0.113.7", "user_agent": "UA", "note": "stall"}).json["id"]
    api.record(email="other@example.com")
    sequence()
    with app.app_context():
        before = leaves.leaf_for(leaves.CONSENT_EVENT, event_id)
    with app.app_context():
        subject = db.session.execute(sa.text("SELECT subject_id FROM consent_events WHERE id = :id"), {"id": event_id}).scalar()
    made = client.post(
        "/v1/requests", json={"type": "erasure", "subject_id": str(uuid.UUID(str(subject))), "verified": True}, headers=headers
    )
    assert made.status_code == 201, made.json
    worker.wait()
    assert client.get(f"/v1/requests/{made.json['id']}", headers=headers).json["status"] == "completed"
    with app.app_context():
        salt, ip = db.session.execute(
            sa.text("SELECT evidence_salt, evidence_ip FROM consent_events WHERE id = :id"), {"id": event_id}
        ).one()
        assert salt is None and ip is None
        assert leaves.leaf_for(leaves.CONSENT_EVENT, event_id) == before  # the leaf never held the evidence itself
    sequence()
    code, output = verify()
    assert code == 0, output
    assert "1 events redacted by erasure" in output
    proof = api.get("/v1/ledger/proofs/inclusion", event_id=event_id).json
    assert rfc9162.verify_inclusion(
        proof["leaf_index"], proof["tree_size"], rfc9162.leaf_hash(before), [base64.b64decode(p) for p in proof["audit_path"]],
        base64.b64decode(proof["checkpoint"]["root_hash"]),
    )  # fmt: skip


def test_a_new_signing_key_keeps_old_checkpoints_verifiable(app, make_app, writer, sequence, verify):
    writer.record(email="a@example.com")
    sequence()
    old = writer.get("/v1/ledger/checkpoints/latest").json
    rotated = make_app(ledger_signing_key=OTHER_KEY)
    rotated_api = Api(rotated.test_client(), writer.headers)
    rotated_api.record(email="b@example.com")
    sequence_with(rotated)
    new = rotated_api.get("/v1/ledger/checkpoints/latest").json
    assert new["key_id"] != old["key_id"] and new["tree_size"] > old["tree_size"]
    keys = {k["key_id"]: k for k in rotated_api.get("/v1/ledger/public-keys").json["keys"]}
    assert set(keys) == {old["key_id"], new["key_id"]}
    assert keys[new["key_id"]]["current"] and not keys[old["key_id"]]["current"]
    for checkpoint in (old, new):
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(keys[checkpoint["key_id"]]["public_key"]))
        signed = f"prefs-ledger/v1\n{checkpoint['tree_size']}\n{checkpoint['root_hash']}\n{checkpoint['timestamp']}\n".encode()
        assert signed == checkpoint["body"].encode()
        public.verify(base64.b64decode(checkpoint["signature"]), signed)  # raises if it does not verify
    code, output = verify()
    assert code == 0, output
    assert old["key_id"] in output and new["key_id"] in output


def sequence_with(app) -> None:
    def done() -> bool:
        with app.app_context(), scopes.writing():
            sequencer.sequence_all()
            return db.session.scalar(sa.text("SELECT count(*) FROM consent_events")) == db.session.scalar(
                sa.text("SELECT count(*) FROM ledger_leaves WHERE kind = 1")
            )

    eventually(done, timeout=60, what="every event in the log")


class _Witness(BaseHTTPRequestHandler):
    received: list[dict] = []  # noqa: RUF012 - one test's server

    def do_POST(self):
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def witness():
    server = HTTPServer(("127.0.0.1", 0), _Witness)
    _Witness.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/checkpoints", _Witness.received
    server.shutdown()


def test_a_witness_receives_each_checkpoint(make_app, api_key, witness):
    url, received = witness
    app = make_app(ledger_witness_url=url)
    app.extensions["prefs.jobs"].start(threads=1)
    api = Api(app.test_client(), api_key("consent:read", "consent:write"))
    event_id = api.record(email="w@example.com").json["id"]
    eventually(lambda: _covered(api.client, api.headers, event_id), timeout=60, what="a checkpoint covering the event")
    latest = api.get("/v1/ledger/checkpoints/latest").json
    eventually(lambda: latest in received, timeout=60, what="the witness to receive the latest checkpoint")


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/v1/ledger/proofs/inclusion", {}),
        ("/v1/ledger/proofs/inclusion", {"event_id": "x"}),
        ("/v1/ledger/proofs/inclusion", {"event_id": "0"}),
        ("/v1/ledger/proofs/inclusion", {"event_id": "1", "tree_size": "-1"}),
        ("/v1/ledger/proofs/inclusion", {"event_id": "1", "size": "3"}),
        ("/v1/ledger/proofs/consistency", {}),
        ("/v1/ledger/proofs/consistency", {"from": "1"}),
        ("/v1/ledger/proofs/consistency", {"to": "1"}),
        ("/v1/ledger/proofs/consistency", {"from": "3", "to": "2"}),
        ("/v1/ledger/proofs/consistency", {"from": "1.5", "to": "2"}),
    ],
)
def test_bad_queries_are_refused_with_a_problem(writer, path, query):
    response = writer.get(path, **query)
    assert response.status_code in (400, 422), response.json
    assert response.mimetype == "application/problem+json"


def test_sizes_the_log_does_not_have_are_refused(writer, sequence):
    event_id = writer.record(email="s@example.com").json["id"]
    assert writer.get("/v1/ledger/checkpoints/latest").status_code == 404  # nothing signed yet
    assert writer.get("/v1/ledger/proofs/inclusion", event_id=event_id).status_code == 404  # not sequenced yet
    sequence()
    size = writer.get("/v1/ledger/checkpoints/latest").json["tree_size"]
    assert writer.get("/v1/ledger/proofs/consistency", **{"from": 0, "to": size + 1}).status_code == 404
    assert writer.get("/v1/ledger/proofs/inclusion", event_id=event_id, tree_size=size + 1).status_code == 404
    assert writer.get("/v1/ledger/proofs/inclusion", event_id=event_id + 1000).status_code == 404
    assert writer.get("/v1/ledger/proofs/consistency", **{"from": size, "to": size}).json["proof"] == []


def test_the_endpoints_need_a_key_with_consent_read(client, api_key):
    assert client.get("/v1/ledger/checkpoints/latest").status_code == 401
    assert client.get("/v1/ledger/public-keys", headers=api_key("subjects:read")).status_code == 403
