"""A replaced list stays readable while another process may still hold it as
current (each caches the current lists for screening.CACHE_SECONDS), and is
deleted by a later import once none can: a register keeps its current list and
the one it replaced, not every list it ever had."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from prefs_service.extensions import db
from prefs_service.registers.models import CURRENT, REPLACED, RegisterEntry, RegisterList
from tests.helpers import Api
from tests.registers.conftest import days_ago

from .helpers import UK, fixed

PHONE = {"channel": "phone", "purpose": "marketing"}


def upload(api: Api, numbers: list[str], days: int) -> dict:
    body = "".join(fixed(n) + "\r\n" for n in numbers).encode()
    answer = api.client.post(
        f"/v1/registers/tps/imports?list_date={days_ago(days).isoformat()}",
        data=body,
        headers={**api.headers, "Content-Type": "text/plain"},
    )
    assert answer.status_code == 201, answer.json
    return answer.json


def entries_by_list(app) -> dict[int, int]:
    with app.app_context():
        counts = db.session.execute(sa.select(RegisterEntry.list_id, sa.func.count()).group_by(RegisterEntry.list_id)).all()
        db.session.rollback()
    return dict(counts)


def minutes_pass(app, minutes: int) -> None:
    """Time passes for the register's lists (the way tests/jobs/ let it pass: the rows' times move back)."""
    with app.app_context():
        for row in db.session.scalars(sa.select(RegisterList).where(RegisterList.finished_at.is_not(None))):
            row.finished_at -= timedelta(minutes=minutes)
        db.session.commit()


def test_a_process_that_still_holds_the_replaced_list_answers_register(make_app, app, admin):
    importer = Api(app.test_client(), admin)
    other = make_app()  # another web process: its own cache of the current lists
    checker = Api(other.test_client(), admin)
    on_both, on_old_only = UK[0], UK[1]

    upload(importer, [on_both[0], on_old_only[0]], days=3)
    listed = {"allowed": False, "reason": "register", "since": None, "register": "tps"}
    assert checker.check(**PHONE, phone=on_both[1]).json == listed  # the other process now holds the first list

    second = upload(importer, [on_both[0], UK[2][0]], days=1)
    assert second["status"] == "current"
    # Within its cache the other process still probes the replaced list: the number it lists is listed.
    assert checker.check(**PHONE, phone=on_both[1]).json == listed
    assert checker.check(**PHONE, phone=on_old_only[1]).json == listed
    assert checker.bulk([on_both[1]], **PHONE).json["results"] == [
        {"recipient": on_both[1], "allowed": False, "reason": "register", "register": "tps"}
    ]
    # The importing process answers from the new list at once.
    assert importer.check(**PHONE, phone=on_both[1]).json == listed
    assert importer.check(**PHONE, phone=on_old_only[1]).json["reason"] == "no_consent"
    # What the register is said to hold is the current list alone, the replaced list's entries kept or not.
    [tps] = [s for s in importer.get("/v1/registers").json if s["register"] == "tps"]
    assert (tps["list_date"], tps["entries"], tps["last_import_status"]) == (days_ago(1).isoformat(), 2, "current")


def test_a_later_import_deletes_the_lists_no_process_can_hold_any_more(app, admin):
    api = Api(app.test_client(), admin)
    first = upload(api, [UK[0][0], UK[1][0]], days=4)
    second = upload(api, [UK[2][0]], days=3)
    third = upload(api, [UK[3][0]], days=2)  # the second went live moments ago: the first may still be cached
    assert entries_by_list(app) == {first["list_id"]: 2, second["list_id"]: 1, third["list_id"]: 1}

    minutes_pass(app, 2)  # no process holds the first or the second list now
    fourth = upload(api, [UK[0][0], UK[2][0]], days=1)
    # Only the list replaced just now is kept beside the current one.
    assert entries_by_list(app) == {third["list_id"]: 1, fourth["list_id"]: 2}
    with app.app_context():
        statuses = dict(db.session.execute(sa.select(RegisterList.id, RegisterList.status)).all())
        db.session.rollback()
    assert statuses == {
        first["list_id"]: REPLACED,
        second["list_id"]: REPLACED,
        third["list_id"]: REPLACED,
        fourth["list_id"]: CURRENT,
    }
    [tps] = [s for s in api.get("/v1/registers").json if s["register"] == "tps"]
    assert (tps["list_date"], tps["entries"]) == (days_ago(1).isoformat(), 2)
