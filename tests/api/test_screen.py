"""POST /v1/consent/screen: a whole list, streamed back line by line in its own
format and order, agreeing with the bulk check; bad requests refused before the
body is read; a long list answered in constant memory."""

from __future__ import annotations

import csv
import http.client
import io
import json
import socket
import threading
import tracemalloc
from datetime import UTC, datetime

import pytest
from werkzeug.serving import make_server

from prefs_service.consent import lists
from prefs_service.extensions import db
from tests.conftest import on_postgresql
from tests.helpers import Api

SCREEN = "/v1/consent/screen"
CSV_TYPE = {"Content-Type": "text/csv"}
NDJSON_TYPE = {"Content-Type": "application/x-ndjson"}


@pytest.fixture
def headers(api_key):
    return api_key("consent:read", "consent:write")


def screen(client, headers, body: bytes, content_type: dict, **query):
    return client.post(
        SCREEN, query_string={"channel": "email", "purpose": "newsletter", **query}, data=body, headers={**headers, **content_type}
    )


def csv_rows(response) -> list[dict]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    assert text.startswith("recipient,allowed,reason,register,register_stale\n")
    return list(csv.DictReader(io.StringIO(text)))


def ndjson_rows(response) -> list[dict]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/x-ndjson"
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]


def bulk(api: Api, recipients: list, **fields) -> list[dict]:
    response = api.bulk(recipients, **fields)
    assert response.status_code == 200, response.json
    return response.json["results"]


def as_csv(row: dict) -> dict:
    """A bulk check's result as a screening's CSV writes it."""
    return {
        "recipient": row["recipient"],
        "allowed": "true" if row["allowed"] else "false",
        "reason": row["reason"],
        "register": row.get("register", ""),
        "register_stale": "true" if row.get("register_stale") else "",
    }


@pytest.fixture
def people(client, headers, api):
    """One person of each answer the email newsletter can give."""
    api.record(email="granted@example.com")
    api.record(email="withdrawn@example.com", status="withdrawn")
    api.record(email="suppressed@example.com")
    assert client.post("/v1/suppressions", json={"email": "suppressed@example.com", "reason": "bounce"}, headers=headers).status_code == 201
    return ["granted@example.com", "withdrawn@example.com", "suppressed@example.com", "nobody@example.com"]


def test_a_csv_list_is_answered_in_order_as_the_bulk_check_answers_it(client, headers, api, people):
    recipients = [*people, "not an address", "GRANTED@example.com", *reversed(people)]
    body = "".join(f"{r}\n" for r in recipients).encode()
    rows = csv_rows(screen(client, headers, body, CSV_TYPE))
    assert rows == [as_csv(r) for r in bulk(api, recipients)]
    assert [r["reason"] for r in rows[:6]] == ["granted", "withdrawn", "suppressed", "no_consent", "invalid", "granted"]


def test_crlf_a_bom_a_quoted_line_and_no_final_line_break(client, headers, people):
    body = b'\xef\xbb\xbfgranted@example.com\r\n"withdrawn@example.com"\r\nnobody@example.com'
    rows = csv_rows(screen(client, headers, body, CSV_TYPE))
    assert [(r["recipient"], r["reason"]) for r in rows] == [
        ("granted@example.com", "granted"),
        ("withdrawn@example.com", "withdrawn"),
        ("nobody@example.com", "no_consent"),
    ]


def test_a_named_csv_column_is_read_from_each_row(client, headers, api, people):
    body = (
        b'name,"E-mail, work",city\n'
        b"Ann,granted@example.com,Leeds\n"
        b'"Smith, Bob","withdrawn@example.com","York"\n'
        b"Cy\n"  # a row without the column
        b'Di,"suppressed@example.com",Hull\n'
    )
    rows = csv_rows(screen(client, headers, body, CSV_TYPE, column="E-mail, work"))
    assert [(r["recipient"], r["reason"]) for r in rows] == [
        ("granted@example.com", "granted"),
        ("withdrawn@example.com", "withdrawn"),
        ("", "invalid"),
        ("suppressed@example.com", "suppressed"),
    ]


def test_a_column_the_header_lacks_is_422_before_any_answer(client, headers):
    response = screen(client, headers, b"name,mail\nAnn,a@example.com\n", CSV_TYPE, column="email")
    assert response.status_code == 422 and response.content_type == "application/problem+json"
    assert "column" in response.json["errors"] and "'mail'" in response.json["errors"]["column"][0]


def test_an_ndjson_list_takes_strings_and_objects_and_answers_as_the_bulk_check(client, headers, api, people):
    lines = [
        '"granted@example.com"',
        '{"recipient": "withdrawn@example.com", "name": "W"}',
        "12",
        '{"name": "no recipient field"}',
        '"suppressed@example.com"',
        '"nobody@example.com"',
    ]
    rows = ndjson_rows(screen(client, headers, "\n".join(lines).encode() + b"\n", NDJSON_TYPE))
    checked = ["granted@example.com", "withdrawn@example.com", 12, None, "suppressed@example.com", "nobody@example.com"]
    assert rows == bulk(api, checked)
    assert [r["reason"] for r in rows] == ["granted", "withdrawn", "invalid", "invalid", "suppressed", "no_consent"]


def test_an_ndjson_column_names_the_objects_field(client, headers, people):
    body = b'{"mail": "granted@example.com"}\n{"recipient": "granted@example.com"}\n"granted@example.com"\n'
    rows = ndjson_rows(screen(client, headers, body, NDJSON_TYPE, column="mail"))
    assert rows == [
        {"recipient": "granted@example.com", "allowed": True, "reason": "granted"},
        {"recipient": None, "allowed": False, "reason": "invalid"},
        {"recipient": "granted@example.com", "allowed": True, "reason": "granted"},
    ]


def test_lines_that_cannot_be_read_are_answered_invalid_and_none_is_dropped(client, headers, people):
    too_long = b"x" * (lists.MAX_LINE_BYTES + 1) + b"@example.com"
    far_too_long = b"y" * 700_000  # longer than a block read at once
    lines = [b"granted@example.com", b"caf\xe9@example.com", too_long, b"", b'"unclosed@example.com', far_too_long, b"granted@example.com"]
    rows = csv_rows(screen(client, headers, b"\n".join(lines) + b"\n", CSV_TYPE))
    assert [r["reason"] for r in rows] == ["granted", "invalid", "invalid", "invalid", "invalid", "invalid", "granted"]
    assert rows[1]["recipient"] == "caf\ufffd@example.com" and rows[2]["recipient"] == ""
    nd = [b'"granted@example.com"', b"granted@example.com", b"{", too_long, b"[1,2]", b'"granted@example.com"']
    answers = ndjson_rows(screen(client, headers, b"\n".join(nd), NDJSON_TYPE))
    assert [a["reason"] for a in answers] == ["granted", "invalid", "invalid", "invalid", "invalid", "granted"]
    assert [a["recipient"] for a in answers[1:5]] == ["granted@example.com", "{", None, [1, 2]]


def test_a_register_has_its_say_as_in_the_bulk_check(client, headers, api, admin):
    listed, clear = "+442073787244", "+441635506160"
    today = datetime.now(UTC).date().isoformat()
    imported = client.post(
        f"/v1/registers/tps/imports?list_date={today}", data=b"02073787244 \r\n", headers={**admin, "Content-Type": "text/plain"}
    )
    assert imported.status_code == 201, imported.json
    for number in (listed, clear):
        api.record(phone=number, channel="phone", purpose="marketing")
    phone = {"channel": "phone", "purpose": "marketing"}
    rows = ndjson_rows(screen(client, headers, f'"{listed}"\n"{clear}"\n'.encode(), NDJSON_TYPE, **phone))
    assert rows == bulk(api, [listed, clear], **phone)
    assert rows[0]["register"] == "tps" and "register" not in rows[1]
    as_text = csv_rows(screen(client, headers, f"{listed}\n{clear}\n".encode(), CSV_TYPE, **phone))
    assert as_text == [as_csv(r) for r in rows]


class Tripwire(io.BytesIO):
    """A request body that records whether anything read it."""

    def __init__(self):
        super().__init__(b"granted@example.com\n")
        self.touched = False

    def _touch(self, read, *args):
        self.touched = True
        return read(*args)

    def read(self, *args):
        return self._touch(super().read, *args)

    def read1(self, *args):
        return self._touch(super().read1, *args)

    def readinto(self, *args):
        return self._touch(super().readinto, *args)

    def readline(self, *args):
        return self._touch(super().readline, *args)


@pytest.mark.parametrize(
    ("query", "content_type", "status", "field"),
    [
        ({"channel": "sms", "purpose": "newsletter"}, "text/csv", 422, "channel"),
        ({"channel": "email", "purpose": "marketing"}, "text/csv", 422, "purpose"),
        ({"channel": "email"}, "text/csv", 422, "purpose"),
        ({"channel": "email", "purpose": "newsletter", "identifier_type": "nickname"}, "text/csv", 422, "identifier_type"),
        ({"channel": "partner", "purpose": "share_for_marketing"}, "text/csv", 422, "identifier_type"),
        ({"channel": "email", "purpose": "newsletter", "column": "a\nb"}, "text/csv", 422, "column"),
        ({"channel": "email", "purpose": "newsletter", "colum": "email"}, "text/csv", 422, "colum"),
        ({"channel": "email", "purpose": "newsletter"}, "text/plain", 415, None),
        ({"channel": "email", "purpose": "newsletter"}, "application/json", 415, None),
        ({"channel": "email", "purpose": "newsletter"}, "text/csv; charset=latin-1", 415, None),
    ],
)
def test_bad_requests_are_refused_before_the_body_is_read(client, headers, query, content_type, status, field):
    body = Tripwire()
    response = client.post(
        SCREEN, query_string=query, input_stream=body, headers={**headers, "Content-Type": content_type, "Content-Length": "20"}
    )
    assert response.status_code == status, response.json
    assert response.content_type == "application/problem+json"
    if field:
        assert field in response.json["errors"], response.json
    assert not body.touched


def test_a_key_without_consent_read_is_refused_before_the_body_is_read(client, api_key):
    for headers, status in ((api_key("consent:write", "subjects:read"), 403), ({}, 401)):
        body = Tripwire()
        response = client.post(
            SCREEN,
            query_string={"channel": "email", "purpose": "newsletter"},
            input_stream=body,
            headers={**headers, "Content-Type": "text/csv", "Content-Length": "20"},
        )
        assert response.status_code == status and response.content_type == "application/problem+json"
        assert not body.touched


def test_an_empty_list_has_an_empty_answer(client, headers):
    assert csv_rows(screen(client, headers, b"", CSV_TYPE)) == []
    assert ndjson_rows(screen(client, headers, b"", NDJSON_TYPE)) == []
    assert screen(client, headers, b"", CSV_TYPE, column="email").json["errors"]["column"] == [
        "no column 'email' in the header row; its columns: none"
    ]


def crm_export(rows: int) -> bytes:
    """The address beside other columns, about 1,000 bytes a row."""
    filler = "x" * 940
    return b"id,name,email,notes\n" + b"".join(f"{n},Person {n},p{n}@example.com,{filler}\n".encode() for n in range(rows))


def screened_in(client, headers, body: bytes) -> tuple[int, dict, bytes | None]:
    """(peak bytes allocated while the list is screened, answers by reason, the answer of row 25,000)."""
    tracemalloc.start()
    try:
        response = client.post(
            SCREEN + "?channel=email&purpose=newsletter&column=email", data=body, headers={**headers, **CSV_TYPE}, buffered=False
        )
        assert response.status_code == 200
        count, reasons, pending, sample = -1, {}, b"", None  # the header row is not an answer
        for block in response.response:
            lines = (pending + block).split(b"\n")
            pending = lines.pop()
            for line in lines:
                if count == 25_000:
                    sample = line
                reason = line.split(b",")[2]
                reasons[reason] = reasons.get(reason, 0) + 1
                count += 1
        response.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert pending == b""
    return peak, reasons, sample


def test_a_long_list_streams_past_the_body_limit_in_constant_memory(make_app, api_key):
    app = make_app(max_body_bytes=1024)
    client = app.test_client()
    headers = api_key("consent:read", "consent:write")
    client.post(
        "/v1/consents",
        json={"email": "p25000@example.com", "channel": "email", "purpose": "newsletter", "status": "granted"},
        headers=headers,
    )
    short, long = crm_export(2 * lists.CHUNK), crm_export(60_000)
    assert client.post("/v1/consent/check", data=short, headers={**headers, "Content-Type": "application/json"}).status_code == 413
    # Statements are compiled once per batch size and kept: compile them before measuring.
    warm = b"".join(f"w{n}@example.com\n".encode() for n in range(lists.CHUNK))
    assert (
        client.post(SCREEN + "?channel=email&purpose=newsletter", data=warm, headers={**headers, **CSV_TYPE}).get_data().count(b"\n")
        == lists.CHUNK + 1
    )

    short_peak, short_reasons, _ = screened_in(client, headers, short)
    long_peak, long_reasons, sample = screened_in(client, headers, long)
    assert short_reasons == {b"reason": 1, b"no_consent": 2 * lists.CHUNK}
    assert long_reasons == {b"reason": 1, b"granted": 1, b"no_consent": 59_999}
    assert sample == b"p25000@example.com,true,granted,,"
    # Three times the list, the same memory: one chunk's worth, whatever the length.
    assert long_peak < 1.25 * short_peak, f"peak {long_peak:,} bytes for 60,000 rows, {short_peak:,} for 20,000"
    assert long_peak < len(long) / 4, f"peak {long_peak:,} bytes for a {len(long):,}-byte list"


def test_nothing_is_held_between_chunks_so_writers_go_on_and_later_chunks_see_them(app, client, headers, api):
    """A stream outlives its view's scope: were its chunks checked in a writing
    scope, SQLite's write lock (or an open PostgreSQL transaction) would be held
    until the last line is sent."""
    api.record(email="late@example.com")
    body = b"".join(f"q{n}@example.com\n".encode() for n in range(lists.CHUNK)) + b"late@example.com\n"
    response = client.post(SCREEN + "?channel=email&purpose=newsletter", data=body, headers={**headers, **CSV_TYPE}, buffered=False)
    blocks = iter(response.response)
    first = next(blocks) + next(blocks)  # the header and the first chunk
    assert first.count(b"\n") == lists.CHUNK + 1

    def withdraw():
        other = app.test_client()
        answered["status"] = Api(other, headers).record(email="late@example.com", status="withdrawn", expect=None).status_code
        if on_postgresql():
            with app.app_context():
                answered["open"] = db.session.execute(
                    db.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'"
                    )
                ).scalar()
                db.session.rollback()

    answered: dict = {}
    writer = threading.Thread(target=withdraw)
    writer.start()
    writer.join(timeout=10)
    assert not writer.is_alive(), "the write waited on the screening"
    assert answered["status"] == 201
    assert answered.get("open", 0) == 0
    rest = b"".join(blocks)
    response.close()
    assert rest == b"late@example.com,false,withdrawn,,\n"


def test_a_client_that_sends_its_whole_list_before_reading_gets_every_answer(app, headers):
    """Python's http.client (and requests, httpx) read nothing until the body is
    sent. Were answers written while the list is still arriving, they would fill
    the sockets' buffers (kept small here) and both ends would wait for ever."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):  # accepted connections inherit them
        server.socket.setsockopt(socket.SOL_SOCKET, option, 4096)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        body = b"".join(f"h{n}@example.com\n".encode() for n in range(2 * lists.CHUNK))
        sock = socket.socket()
        for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, 4096)
        sock.settimeout(30)
        sock.connect(("127.0.0.1", server.server_port))
        connection = http.client.HTTPConnection("127.0.0.1", server.server_port)
        connection.sock = sock
        connection.request("POST", SCREEN + "?channel=email&purpose=newsletter", body=body, headers={**headers, **CSV_TYPE})
        response = connection.getresponse()
        answer = response.read()
        connection.close()
    finally:
        server.shutdown()
        serving.join(10)
    assert response.status == 200
    assert answer.count(b"\n") == 2 * lists.CHUNK + 1 and answer.endswith(b"h19999@example.com,false,no_consent,,\n")


def test_recipients_are_echoed_exactly_whatever_they_hold(client, headers):
    odd = ['quote"d@example.com', "back\\slash@example.com", "tab\t@example.com", "ünï@exämple.com", "line\u2028sep", "a,b@example.com", ""]
    nd = "".join(json.dumps({"recipient": r}) + "\n" for r in odd).encode()
    response = screen(client, headers, nd, NDJSON_TYPE)
    assert [json.loads(line)["recipient"] for line in response.get_data(as_text=True).split("\n")[:-1]] == odd
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([("n", "email"), *[(str(i), r) for i, r in enumerate(odd)]])
    rows = csv_rows(screen(client, headers, out.getvalue().encode(), CSV_TYPE, column="email"))
    assert [r["recipient"] for r in rows] == odd


def test_a_nul_in_a_recipient_is_invalid_on_every_backend(client, headers, api):
    api.record(external_ref="CRM-1")
    by_ref = {"identifier_type": "external_ref"}
    nd = b'"CRM-1"\n"CRM\\u0000-1"\n{"recipient": "\\u0000"}\n'
    assert [r["reason"] for r in ndjson_rows(screen(client, headers, nd, NDJSON_TYPE, **by_ref))] == ["granted", "invalid", "invalid"]
    rows = csv_rows(screen(client, headers, b"CRM-1\nCRM\x00-1\n", CSV_TYPE, **by_ref))
    assert [(r["recipient"], r["reason"]) for r in rows] == [("CRM-1", "granted"), ("CRM\x00-1", "invalid")]
