"""Logs and errors never carry a plain email address, a whole IP address, a secret or a token."""

from __future__ import annotations

import hashlib
import json
import logging
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from itsdangerous import URLSafeTimedSerializer

from prefs_service.extensions import db
from prefs_service.logs import JsonFormatter
from tests.conftest import free_port
from tests.helpers import eventually


def test_log_lines_are_json_with_emails_and_ips_masked():
    record = logging.LogRecord("prefs", logging.WARNING, __file__, 1, "refused %s from %s", ("jane.doe@example.com", "203.0.113.77"), None)
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "WARNING" and line["logger"] == "prefs"
    assert "jane.doe@example.com" not in line["msg"] and "203.0.113.77" not in line["msg"]
    assert line["msg"] == "refused j***@example.com from 203.0.113.x"


def test_sql_errors_do_not_quote_parameters(app):
    with app.app_context():
        with pytest.raises(sa.exc.DBAPIError) as caught:
            db.session.execute(sa.text("SELECT * FROM no_such_table WHERE x = :v"), {"v": "jane.doe@example.com"})
        db.session.rollback()
    assert "jane.doe@example.com" not in str(caught.value)


def test_an_unexpected_error_is_logged_without_the_address(app, client, api_key, capfd, monkeypatch):
    from prefs_service.consent import checks

    def explode(**kwargs):
        raise RuntimeError("boom while handling jane.doe@example.com")

    monkeypatch.setattr(checks, "check_many", explode)
    response = client.get(
        "/v1/consent/check",
        query_string={"channel": "email", "purpose": "offers", "email": "jane.doe@example.com"},
        headers=api_key("consent:read"),
    )
    assert response.status_code == 500 and response.content_type == "application/problem+json"
    assert "jane.doe" not in response.get_data(as_text=True)
    err = capfd.readouterr().err
    assert "unhandled error on GET /v1/consent/check" in err and "jane.doe@example.com" not in err


def scrubbed(text: str) -> str:
    record = logging.LogRecord("prefs", logging.INFO, __file__, 1, "%s", (text,), None)
    return json.loads(JsonFormatter().format(record))["msg"]


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("2001:db8:1:2::5", "2001:db8:1::/48"),
        ("2001:0db8:abcd:0012:0034:0056:0078:009a", "2001:db8:abcd::/48"),
        ("fe80::1%eth0", "fe80::/48"),
        ("::1", "::/48"),
        ("::ffff:203.0.113.7", "203.0.113.x"),
    ],
)
def test_ipv6_addresses_are_cut_to_their_network(address, masked):
    for text in (f"client {address} refused", f"from [{address}]:8443", f"ip={address}"):
        line = scrubbed(text)
        assert address not in line and masked in line


def test_clock_times_and_hardware_addresses_are_not_taken_for_ipv6():
    text = "at 22:05:46 (2026-12-01T22:23:48.411Z), interface 00:1a:2b:3c:4d:5e, std::string"
    assert scrubbed(text) == text


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("jürgen.müller@bücher.de", "j***@bücher.de"),
        ("用户@例子.广告", "用***@例子.广告"),
        ("θέμα@παράδειγμα.ελ", "θ***@παράδειγμα.ελ"),
        ("josé@xn--bcher-kva.de", "j***@xn--bcher-kva.de"),
    ],
)
def test_internationalised_email_addresses_are_masked(address, masked):
    line = scrubbed(f"refused <{address}>: mailbox unavailable")
    assert address not in line and f"<{masked}>" in line


def test_api_key_secrets_are_masked_and_the_prefix_kept(api_key):
    key = api_key("consent:read")["Authorization"].removeprefix("Bearer ")
    prefix, secret = key.removeprefix("pk_").split("_", 1)
    line = scrubbed(f"rejected key {key} from a client")
    assert secret not in line and line == f"rejected key pk_{prefix}_*** from a client"


def test_signed_link_tokens_are_masked_in_every_link_path(app):
    from prefs_service import links, tokens

    routes = {
        "unsubscribe": links.UNSUBSCRIBE_ROUTE,
        "preferences": links.PREFERENCES_ROUTE,
        "return": links.RETURN_ROUTE,
        "verify": links.VERIFY_ROUTE,
        "download": links.DOWNLOAD_ROUTE,
        "commission": links.COMMISSION_ROUTE,
        "set-password": links.SET_PASSWORD_ROUTE,
    }
    with app.app_context():
        for purpose, route in routes.items():
            token = tokens.sign(purpose, {"s": "0b4f6c1e-8a51-4f5e-9a3e-5f0e8e2a9d11", "o": 12345})
            for text in (
                f"GET {route.replace('<token>', token)}?x=1 HTTP/1.1",
                f"link https://prefs.example{route.replace('<token>', token[:12])}",
            ):
                line = scrubbed(text)
                assert token[:12] not in line and route.replace("<token>", "***") in line
            assert scrubbed(f"token={token};") == "token=***;"  # anywhere, by its shape
        compressed = tokens.sign("preferences", {"note": "x" * 400})  # itsdangerous compresses: a leading "."
        assert compressed.startswith(".") and scrubbed(f"got {compressed} back") == "got *** back"


def test_module_paths_and_versions_are_not_taken_for_tokens():
    text = "prefs_service.jobs.dispatch at dispatch.py:172, gunicorn 27.0.1, a.b.c.d"
    assert scrubbed(text) == text


def test_gunicorn_error_lines_are_scrubbed_json(tmp_path):
    """`prefs serve`: gunicorn's own lines (start-up, workers, a bad request
    naming the client's address and the URL it asked for) come out as our JSON,
    scrubbed."""
    prefs = str(Path(sys.executable).parent / "prefs")
    env = {"PATH": "/usr/bin:/bin", "PREFS_VAR_DIR": str(tmp_path / "data"), "PREFS_LOG_LEVEL": "INFO"}
    subprocess.run([prefs, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=120)
    port = free_port()
    server = subprocess.Popen([prefs, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(server.stderr), daemon=True)
    reader.start()
    try:
        eventually(lambda: _accepts(port), timeout=60, what="prefs serve to listen")
        token = URLSafeTimedSerializer("k" * 32, salt="prefs.unsubscribe.v1", signer_kwargs={"digest_method": hashlib.sha256}).dumps(
            {"s": "1"}
        )
        with socket.create_connection(("127.0.0.1", port)) as bad:
            bad.sendall(f"GET /u/{token}\r\nHost: x\r\n\r\n".encode())  # no HTTP version: the line is quoted back
            assert bad.recv(100).startswith(b"HTTP/1.1 400")
        eventually(lambda: any("Invalid request from ip=" in line for line in list(lines)), timeout=30, what="gunicorn's line")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
        reader.join(10)
    logged = [json.loads(line) for line in lines if not line.startswith("prefs: ")]  # the command's own messages
    invalid = next(entry for entry in logged if "Invalid request" in entry["msg"])
    assert invalid["logger"] == "gunicorn.error" and invalid["level"] == "WARNING"
    assert "ip=127.0.0.x" in invalid["msg"] and "/u/***" in invalid["msg"] and token not in invalid["msg"]
    assert any(entry["msg"].startswith("Booting worker") for entry in logged)
    assert any(entry["msg"] == f"Listening at: http://127.0.0.x:{port} ({server.pid})" for entry in logged)
    assert not [line for line in lines if "127.0.0.1" in line and not line.startswith("prefs: ")]


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
