"""The raw floor for consent-check benchmarks: the same lookups with plain SQL.

No ORM, no auth, no validation, no schemas; just normalise, hash, query, answer.
It is what the service could do at best on this machine in the same run.
Run under gunicorn: `gunicorn 'bench.floor_app:create_app()'` with
BENCH_DATABASE_URL and BENCH_IDENTIFIER_KEY set.
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import os
import threading
from datetime import UTC, datetime

import orjson
from flask import Flask, Response, request

CONSENT_SQL = (
    "SELECT i.value_hash, cs.status FROM identifiers i LEFT JOIN consent_state cs "
    "ON cs.subject_id = i.subject_id AND cs.channel = {p} AND cs.purpose = {p} WHERE i.value_hash {match}"
)
SUPPRESSION_SQL = "SELECT value_hash FROM suppressions WHERE value_hash {match}"


def create_app() -> Flask:
    url = os.environ["BENCH_DATABASE_URL"]
    key = os.environ["BENCH_IDENTIFIER_KEY"].encode()
    base = hmac.new(key, digestmod=hashlib.sha256)
    local = threading.local()
    sqlite = url.startswith("sqlite")

    def connection():
        conn = getattr(local, "conn", None)
        if conn is None:
            if sqlite:
                import sqlite3

                conn = sqlite3.connect(url.split(":///", 1)[1], check_same_thread=False, isolation_level=None)
                conn.execute("PRAGMA cache_size=-65536")
            else:
                import psycopg

                conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
            local.conn = conn
        return conn

    def digest(email: str) -> bytes:
        mac = base.copy()
        mac.update(("email:" + email.strip().lower()).encode())
        return mac.digest()

    def lookup(channel: str, purpose: str, hashes: list[bytes]):
        conn = connection()
        if sqlite:
            marks = ",".join("?" * len(hashes))
            rows = conn.execute(CONSENT_SQL.format(p="?", match=f"IN ({marks})"), [channel, purpose, *hashes]).fetchall()
            suppressed = conn.execute(SUPPRESSION_SQL.format(match=f"IN ({marks})"), hashes).fetchall()
        else:
            rows = conn.execute(CONSENT_SQL.format(p="%s", match="= ANY(%s)"), [channel, purpose, hashes]).fetchall()
            suppressed = conn.execute(SUPPRESSION_SQL.format(match="= ANY(%s)"), [hashes]).fetchall()
        return {bytes(h): s for h, s in rows}, {bytes(h) for (h,) in suppressed}

    def reason(h, states, suppressed):
        if h in suppressed:
            return False, "suppressed"
        status = states.get(h)
        return (True, "granted") if status == "granted" else (False, status or "no_consent")

    app = Flask(__name__)

    @app.get("/check")
    def check_one():
        args = request.args
        h = digest(args["email"])
        states, suppressed = lookup(args["channel"], args["purpose"], [h])
        allowed, why = reason(h, states, suppressed)
        return Response(orjson.dumps({"allowed": allowed, "reason": why}), mimetype="application/json")

    @app.post("/check")
    def check_many():
        body = orjson.loads(request.get_data())
        recipients = body["recipients"]
        hashes = [digest(r) for r in recipients]
        states, suppressed = lookup(body["channel"], body["purpose"], hashes)
        results = []
        for r, h in zip(recipients, hashes, strict=True):
            allowed, why = reason(h, states, suppressed)
            results.append({"recipient": r, "allowed": allowed, "reason": why})
        return Response(orjson.dumps({"results": results}), mimetype="application/json")

    from itsdangerous import URLSafeTimedSerializer

    unsubscribe_tokens = URLSafeTimedSerializer(
        os.environ.get("BENCH_SECRET_KEY", "x" * 40), salt="prefs.unsubscribe.v1", signer_kwargs={"digest_method": hashlib.sha256}
    )

    @app.post("/u/<token>")
    def one_click(token):
        """Verify the link, then append the withdrawal and update the state in one transaction."""
        payload = unsubscribe_tokens.loads(token, max_age=400 * 86400)
        subject = payload["s"].replace("-", "") if sqlite else payload["s"]
        conn = connection()
        now = datetime.now(UTC)
        if sqlite:
            stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
            conn.execute("BEGIN IMMEDIATE")
            state = conn.execute(
                "SELECT status FROM consent_state WHERE subject_id = ? AND channel = ? AND purpose = ?",
                (subject, payload["c"], payload["p"]),
            ).fetchone()
            if not state or state[0] != "withdrawn":
                event_id = conn.execute(
                    "INSERT INTO consent_events (txid, subject_id, channel, purpose, status, source, occurred_at, recorded_at, recorded_by) "
                    "VALUES (0, ?, ?, ?, 'withdrawn', 'one_click', ?, ?, 'subject')",
                    (subject, payload["c"], payload["p"], stamp, stamp),
                ).lastrowid
                conn.execute(
                    "INSERT INTO consent_state (subject_id, channel, purpose, status, occurred_at, event_id, source) "
                    "VALUES (?, ?, ?, 'withdrawn', ?, ?, 'one_click') ON CONFLICT (subject_id, channel, purpose) DO UPDATE SET "
                    "status = excluded.status, occurred_at = excluded.occurred_at, event_id = excluded.event_id, source = excluded.source",
                    (subject, payload["c"], payload["p"], stamp, event_id),
                )
            conn.execute("COMMIT")
        else:
            with conn.transaction():
                state = conn.execute(
                    "SELECT status FROM consent_state WHERE subject_id = %s AND channel = %s AND purpose = %s FOR UPDATE",
                    (subject, payload["c"], payload["p"]),
                ).fetchone()
                if not state or state[0] != "withdrawn":
                    event_id = conn.execute(
                        "INSERT INTO consent_events (subject_id, channel, purpose, status, source, occurred_at, recorded_at, recorded_by) "
                        "VALUES (%s, %s, %s, 'withdrawn', 'one_click', %s, %s, 'subject') RETURNING id",
                        (subject, payload["c"], payload["p"], now, now),
                    ).fetchone()[0]
                    conn.execute(
                        "INSERT INTO consent_state (subject_id, channel, purpose, status, occurred_at, event_id, source) "
                        "VALUES (%s, %s, %s, 'withdrawn', %s, %s, 'one_click') ON CONFLICT (subject_id, channel, purpose) DO UPDATE SET "
                        "status = excluded.status, occurred_at = excluded.occurred_at, event_id = excluded.event_id, source = excluded.source",
                        (subject, payload["c"], payload["p"], now, event_id),
                    )
        return Response(b"Unsubscribed", mimetype="text/plain")

    preference_tokens = URLSafeTimedSerializer(
        os.environ.get("BENCH_SECRET_KEY", "x" * 40), salt="prefs.preferences.v1", signer_kwargs={"digest_method": hashlib.sha256}
    )

    @app.post("/unsubscribe-links")
    def mint():
        """Sign the two links for a subject id; no lookup, no auth."""
        body = orjson.loads(request.get_data())
        url = "https://prefs.example/u/" + unsubscribe_tokens.dumps({"s": body["subject_id"], "c": "email", "p": body["purpose"]})
        preferences = "https://prefs.example/preferences/" + preference_tokens.dumps({"s": body["subject_id"]})
        payload = {"url": url, "preferences_url": preferences,
                   "headers": {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}}  # fmt: skip
        return Response(orjson.dumps(payload), mimetype="application/json", status=201)

    gc.freeze()  # as wsgi.py does for the service
    return app


def create_webhook_floor() -> Flask:
    """Verify the Stripe signature and record the event id with plain SQL; nothing else."""
    import stripe

    url = os.environ["BENCH_DATABASE_URL"]
    secret = os.environ["BENCH_WEBHOOK_SECRET"]
    local = threading.local()
    sqlite = url.startswith("sqlite")
    app = Flask(__name__)

    def connection():
        conn = getattr(local, "conn", None)
        if conn is None:
            if sqlite:
                import sqlite3

                conn = sqlite3.connect(url.split(":///", 1)[1], check_same_thread=False, isolation_level=None, timeout=30)
            else:
                import psycopg

                conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
            local.conn = conn
        return conn

    @app.post("/webhooks/stripe")
    def webhook():
        body = request.get_data()
        stripe.WebhookSignature.verify_header(body.decode(), request.headers.get("Stripe-Signature"), secret, tolerance=300)
        event = orjson.loads(body)
        mark = "?" if sqlite else "%s"
        connection().execute(
            f"INSERT INTO stripe_events (id, type, received_at) VALUES ({mark}, {mark}, {mark}) ON CONFLICT DO NOTHING",
            (event["id"], event["type"], datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else datetime.now(UTC)),
        )
        return Response(b'{"received": true}', mimetype="application/json")

    gc.freeze()  # as wsgi.py does for the service
    return app
