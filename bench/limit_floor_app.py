"""The limit floor for screening (issue 14): the least work a check can be.

A bare Flask app. It parses the bulk check's JSON, normalises each recipient
as the service's email channel does (a copy of its function), HMAC-hashes it as the
service does, and probes ONE ideal table keyed by the hash (build_table():
SQLite WITHOUT ROWID; PostgreSQL with a primary-key index, probed with
unnest(keys) JOIN), then answers with orjson. No ORM, no auth, no schemas, no
registers, one channel and purpose. `GET /check` is its single-probe floor for
single checks. Run under gunicorn: `gunicorn 'bench.limit_floor_app:create_app()'`
with BENCH_DATABASE_URL and BENCH_IDENTIFIER_KEY set.
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import os
import re
import threading
import time

import orjson
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from flask import Flask, Response, request

TABLE = "bench_limit_floor"
CHANNEL, PURPOSE = "email", "newsletter"

# One row per known key: the answer for email/newsletter, worked out once from
# the seeded tables by the same rules (suppressed beats any consent; granted
# is allowed; a person without an event has no_consent). A key without a row
# is a stranger: no_consent.
_SELECT_ANSWERS = f"""
SELECT i.value_hash,
       CASE WHEN s.value_hash IS NOT NULL THEN 'suppressed' ELSE COALESCE(cs.status, 'no_consent') END
FROM identifiers i
LEFT JOIN consent_state cs ON cs.subject_id = i.subject_id AND cs.channel = '{CHANNEL}' AND cs.purpose = '{PURPOSE}'
LEFT JOIN suppressions s ON s.value_hash = i.value_hash AND s.kind = 'email'
WHERE i.kind = 'email'
UNION ALL
SELECT s.value_hash, 'suppressed' FROM suppressions s
WHERE s.kind = 'email' AND NOT EXISTS (SELECT 1 FROM identifiers i WHERE i.value_hash = s.value_hash AND i.kind = 'email')
"""


def build_table(url: str) -> tuple[int, float]:
    """(Re)build the ideal table from the seeded data; (rows, seconds)."""
    started = time.perf_counter()
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.split(":///", 1)[1], isolation_level=None)
        conn.execute("BEGIN")
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(f"CREATE TABLE {TABLE} (key_hash BLOB PRIMARY KEY, reason TEXT NOT NULL) WITHOUT ROWID")
        conn.execute(f"INSERT INTO {TABLE} (key_hash, reason) SELECT * FROM ({_SELECT_ANSWERS}) ORDER BY 1")
        rows = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
        conn.execute("COMMIT")
        conn.execute(f"ANALYZE {TABLE}")
        conn.close()
    else:
        import psycopg

        with psycopg.connect(_pg(url), autocommit=True) as conn:
            with conn.transaction():
                conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
                conn.execute(f"CREATE TABLE {TABLE} (key_hash bytea PRIMARY KEY, reason text NOT NULL)")
                conn.execute(f"INSERT INTO {TABLE} (key_hash, reason) SELECT * FROM ({_SELECT_ANSWERS}) answers ORDER BY 1")
            conn.execute(f"VACUUM ANALYZE {TABLE}")
            rows = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
    return rows, time.perf_counter() - started


# The email channel's normalisation (prefs_service/channels/email.py), copied so
# that the floor's workers hold only Flask and a driver (importing the channel
# imports the whole service); the bench checks that the two agree
# (bench/screening.py, same_normalisation) before it measures.
_FAST_PATH = re.compile(
    r"(?P<local>[a-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*)"
    r"@(?P<domain>(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?P<tld>[a-z]{2,63}))",
    re.IGNORECASE | re.ASCII,
)


def normalize(value: str) -> str:
    value = value.strip()
    match = _FAST_PATH.fullmatch(value)
    if (
        match
        and len(value) <= 254
        and len(match["local"]) <= 64
        and "--" not in match["domain"]
        and match["tld"].lower() not in SPECIAL_USE_DOMAIN_NAMES
    ):
        return value.lower()
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None
    return f"{result.local_part}@{result.ascii_domain}".lower()


def _pg(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def create_app() -> Flask:
    url = os.environ["BENCH_DATABASE_URL"]
    base = hmac.new(os.environ["BENCH_IDENTIFIER_KEY"].encode(), digestmod=hashlib.sha256)
    local = threading.local()
    sqlite = url.startswith("sqlite")

    def connection():
        conn = getattr(local, "conn", None)
        if conn is None:
            if sqlite:
                import sqlite3

                conn = sqlite3.connect(url.split(":///", 1)[1], check_same_thread=False, isolation_level=None)
                conn.execute("PRAGMA cache_size=-2048")  # as the service's connections (db/backend.py)
                conn.execute("PRAGMA query_only=1")
            else:
                import psycopg

                conn = psycopg.connect(_pg(url), autocommit=True)
            local.conn = conn
        return conn

    def digest(recipient: object) -> bytes | None:
        """The service's email normalisation and keyed hash; None when invalid."""
        if not isinstance(recipient, str):
            return None
        try:
            canonical = normalize(recipient)
        except ValueError:
            return None
        mac = base.copy()
        mac.update(("email:" + canonical).encode())
        return mac.digest()

    def probe(keys: list[bytes]) -> dict[bytes, str]:
        """Each key's answer, from one statement, keys sorted (index order)."""
        if not keys:
            return {}
        keys = sorted(set(keys))
        conn = connection()
        if sqlite:  # one IN list: 82 ms for 10k keys in a 1M table where a probe each took 299 ms
            rows = conn.execute(f"SELECT key_hash, reason FROM {TABLE} WHERE key_hash IN ({','.join('?' * len(keys))})", keys).fetchall()
            return dict(rows)
        # Binary both ways: 72 ms for 10k keys in a 1M table, where the keys as hex text took 154 ms.
        with conn.cursor(binary=True) as cursor:
            rows = cursor.execute(
                f"SELECT f.key_hash, f.reason FROM unnest(%b::bytea[]) AS k(key_hash) JOIN {TABLE} f ON f.key_hash = k.key_hash", [keys]
            ).fetchall()
        return {bytes(k): reason for k, reason in rows}

    def one_of(channel: object, purpose: object) -> Response | None:
        if channel != CHANNEL or purpose != PURPOSE:
            return Response(b'{"title": "the limit floor answers email/newsletter only"}', status=400, mimetype="application/json")
        return None

    app = Flask(__name__)

    @app.get("/check")
    def check_one():
        args = request.args
        if refused := one_of(args.get("channel"), args.get("purpose")):
            return refused
        key = digest(args.get("email"))
        if key is None:
            reason = "invalid"
        else:
            row = connection().execute(f"SELECT reason FROM {TABLE} WHERE key_hash = {'?' if sqlite else '%s'}", (key,)).fetchone()
            reason = row[0] if row else "no_consent"
        return Response(orjson.dumps({"allowed": reason == "granted", "reason": reason}), mimetype="application/json")

    @app.post("/check")
    def check_many():
        body = orjson.loads(request.get_data())
        if refused := one_of(body.get("channel"), body.get("purpose")):
            return refused
        recipients = body["recipients"]
        keys = [digest(r) for r in recipients]
        answers = probe([k for k in keys if k is not None])
        results = []
        for recipient, key in zip(recipients, keys, strict=True):
            reason = "invalid" if key is None else answers.get(key, "no_consent")
            results.append({"recipient": recipient, "allowed": reason == "granted", "reason": reason})
        return Response(orjson.dumps({"results": results}), mimetype="application/json")

    gc.freeze()  # as wsgi.py does for the service
    return app
