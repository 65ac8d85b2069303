"""The importer and the screening as one: an import is seen by the next check
in the same process, and a register's entries, counted cheaply from its
imports, equal its rows."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from prefs_service.cli import main
from prefs_service.extensions import db
from prefs_service.registers import status
from prefs_service.registers.models import RegisterEntry
from tests.registers.conftest import days_ago

from .helpers import MPS, UK, US, write

PHONE = {"channel": "phone", "purpose": "marketing"}
FAX = {"channel": "fax", "purpose": "marketing"}
MAIL = {"channel": "mail", "purpose": "marketing"}
# register -> (check fields, the check's key, [(a line of its file, the value a check names)] for two people)
FILES = {
    "tps": (PHONE, "phone", UK[:2]),
    "ctps": (PHONE, "phone", UK[2:4]),
    "fps": (FAX, "fax", UK[:2]),
    "dnc": (PHONE, "phone", US[:2]),
    "mps": (MAIL, "postal_address", MPS),
}


@pytest.mark.parametrize("register", list(FILES))
def test_each_register_from_its_file_to_the_check(app, api, tmp_path, register):
    """Imported from the file as published (full, then a delta), answered by checks:
    a listed person refused, one who granted allowed with the register named."""
    fields, key, [(line, value), (other_line, other)] = FILES[register]
    runner = app.test_cli_runner()
    _import(runner, register, write(tmp_path / "full", [line, other_line]), days_ago(1))
    assert api.check(**fields, **{key: value}).json == {"allowed": False, "reason": "register", "since": None, "register": register}
    subject_id = api.record(**fields, email=f"{register}@example.com").json["subject_id"]
    assert api.patch(f"/v1/subjects/{subject_id}", {key: other}).status_code == 200
    granted = api.check(**fields, **{key: other}).json
    assert (granted["allowed"], granted["reason"], granted["register"]) == (True, "granted", register)
    _import(runner, register, write(tmp_path / "delta", ["-" + line]), days_ago(0), delta=True)
    assert api.check(**fields, **{key: value}).json == {"allowed": False, "reason": "no_consent", "since": None}
    assert api.reasons([value, other], **fields) == ["no_consent", "granted"]


def _import(runner, register, path, list_date, *, delta=False):
    args = ["registers", "import", register, str(path), "--list-date", list_date.isoformat()] + (["--delta"] if delta else [])
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    return result


def test_a_cli_import_is_seen_by_the_next_check_at_once(app, api, tmp_path):
    runner = app.test_cli_runner()
    (number, e164), (other, other_e164) = UK[0], UK[1]
    assert api.check(**PHONE, phone=e164).json["reason"] == "no_consent"  # no list yet: the screening caches that
    _import(runner, "tps", write(tmp_path / "full.txt", [number]), days_ago(1))
    assert api.check(**PHONE, phone=e164).json["reason"] == "register"
    assert api.check(**PHONE, phone=other_e164).json["reason"] == "no_consent"
    _import(runner, "tps", write(tmp_path / "delta.txt", ["-" + number, other]), days_ago(0), delta=True)
    assert api.check(**PHONE, phone=e164).json["reason"] == "no_consent"
    assert api.check(**PHONE, phone=other_e164).json["reason"] == "register"


def test_an_api_import_is_seen_by_the_next_check_at_once(client, api, admin):
    url = "/v1/registers/dnc/imports?list_date="
    number, e164 = US[0]
    old = client.post(url + days_ago(40).isoformat(), data=f"{number}\r\n".encode(), headers={**admin, "Content-Type": "text/plain"})
    assert old.status_code == 201, old.json
    assert api.check(**PHONE, phone=e164).json["reason"] == "register_stale"
    fresh = client.post(url + days_ago(1).isoformat(), data=f"{US[2][0]}\r\n".encode(), headers={**admin, "Content-Type": "text/plain"})
    assert fresh.status_code == 201, fresh.json
    assert api.check(**PHONE, phone=e164).json["reason"] == "no_consent"
    assert api.check(**PHONE, phone=US[2][1]).json["reason"] == "register"


def _rows(list_id: int | None) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(RegisterEntry).where(RegisterEntry.list_id == list_id)) or 0


def _state(register: str) -> status.RegisterState:
    return next(s for s in status.states() if s.register == register)


def test_entries_counted_from_the_imports_equal_the_rows(app, client, admin, tmp_path):
    runner = app.test_cli_runner()
    a, b, c, d = (n for n, _ in UK)
    # A full list repeating numbers, written with and without the space.
    _import(runner, "tps", write(tmp_path / "full.txt", [a, a, b, a.replace(" ", ""), "nonsense"]), days_ago(3))
    with app.app_context():
        state = _state("tps")
        assert state.entries == _rows(state.list_id) == 2
    # A delta re-adding listed numbers, adding one twice, removing an unlisted
    # one, removing a listed one and adding it back, removing one twice.
    _import(
        runner, "tps", write(tmp_path / "d1.txt", [a, "+" + b, c, c, "-" + d, "-" + a, "+" + a, "-" + b, "-" + b]), days_ago(2), delta=True
    )
    with app.app_context():
        state = _state("tps")
        assert state.entries == _rows(state.list_id) == 2  # a and c
    _import(runner, "tps", write(tmp_path / "d2.txt", ["-" + c, "-" + c, d, d, a]), days_ago(1), delta=True)
    with app.app_context():
        state = _state("tps")
        assert state.entries == _rows(state.list_id) == 2  # a and d
    # The same count everywhere it is shown.
    (api_state,) = [s for s in client.get("/v1/registers", headers=admin).json if s["register"] == "tps"]
    (ready,) = [s for s in client.get("/readyz").json["registers"] if s["register"] == "tps"]
    assert api_state["entries"] == ready["entries"] == 2
    assert "tps   list of" in runner.invoke(main, ["registers", "list"]).output
    assert "2 entries" in runner.invoke(main, ["registers", "list"]).output
    # A new full list starts the count again; earlier deltas no longer count.
    _import(runner, "tps", write(tmp_path / "full2.txt", [b, b, c]), days_ago(0))
    with app.app_context():
        state = _state("tps")
        assert state.entries == _rows(state.list_id) == 2
