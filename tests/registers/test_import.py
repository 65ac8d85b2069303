"""Importing each register's files through the service function, on both backends."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from prefs_service.db import scopes
from prefs_service.errors import Conflict
from prefs_service.extensions import db
from prefs_service.registers import loader
from prefs_service.registers.models import CURRENT, FAILED, REPLACED, RegisterEntry, RegisterList

from .helpers import MPS, UK, US, fixed, listed, mail, number_hash, write

DAY = date(2026, 12, 1)


def run(path, register, *, delta=False, list_date=DAY, report=None):
    return loader.import_file(register=register, path=path, list_date=list_date, delta=delta, imported_by="test", report=report)


@pytest.mark.parametrize("register", ["tps", "ctps", "fps"])
def test_a_uk_register_full_then_delta(app, tmp_path, register):
    with app.app_context():
        lines = [fixed(UK[0][0]), fixed(UK[1][0].replace(" ", "")), UK[2][0]]
        summary = run(write(tmp_path / "full.txt", lines), register)
        assert (summary.status, summary.accepted, summary.rejected, summary.entries) == (CURRENT, 3, 0, 3)
        for _, e164 in UK[:3]:
            assert listed(register, number_hash(register, e164))
        assert not listed(register, number_hash(register, UK[3][1]))

        delta = run(write(tmp_path / "delta.txt", ["+" + UK[3][0], "-" + UK[0][0], UK[3][0]]), register, delta=True)
        assert (delta.accepted, delta.removed) == (3, 1)
        assert listed(register, number_hash(register, UK[3][1]))
        assert not listed(register, number_hash(register, UK[0][1]))
        assert listed(register, number_hash(register, UK[1][1]))


def test_a_fax_number_is_hashed_as_a_fax_not_a_phone(app, tmp_path):
    with app.app_context():
        run(write(tmp_path / "fps.txt", [UK[0][0]]), "fps")
        assert listed("fps", number_hash("fps", UK[0][1]))
        assert not listed("fps", number_hash("tps", UK[0][1]))


def test_dnc_full_and_change_list(app, tmp_path):
    with app.app_context():
        summary = run(write(tmp_path / "dnc.txt", [n for n, _ in US[:2]], crlf=False), "dnc")
        assert (summary.accepted, summary.rejected) == (2, 0)
        assert listed("dnc", number_hash("dnc", US[1][1]))
        delta = run(write(tmp_path / "change.txt", ["415,5550100,A", "201,5550123,D"]), "dnc", delta=True)
        assert (delta.accepted, delta.removed) == (2, 1)
        assert listed("dnc", number_hash("dnc", US[2][1]))
        assert not listed("dnc", number_hash("dnc", US[0][1]))


def test_mps_full_and_delta_keep_the_flag(app, tmp_path):
    with app.app_context():
        summary = run(write(tmp_path / "mps.csv", [MPS[0][0], MPS[1][0]]), "mps")
        assert (summary.accepted, summary.rejected) == (2, 0)
        flags = dict(db.session.execute(sa.select(RegisterEntry.key_hash, RegisterEntry.flag)).all())
        assert flags[mail(MPS[0][1])] == "P" and flags[mail(MPS[1][1])] == "X"
        delta = run(write(tmp_path / "mps-delta.csv", ["-" + MPS[1][0]]), "mps", delta=True)
        assert delta.removed == 1
        assert listed("mps", mail(MPS[0][1])) and not listed("mps", mail(MPS[1][1]))


def test_an_address_stays_listed_while_anyone_listed_there_remains(app, tmp_path):
    """MPS lists people at addresses and checks match the address: a delta taking
    one resident away leaves the address listed for the others."""
    john = MPS[0][0]
    jane = john.replace('"Mr","John"', '"Mrs","Jane"')
    lodger = john.replace('"Mr","John","Smith"', '"Ms","K","Patel"')
    with app.app_context():
        address = mail(MPS[0][1])
        full = run(write(tmp_path / "mps.csv", [john, jane, john]), "mps")
        assert (full.accepted, full.entries) == (3, 1)  # three lines, two people, one address
        gone = run(write(tmp_path / "d1.csv", ["-" + jane]), "mps", delta=True)
        assert gone.removed == 0 and listed("mps", address)
        # The same person however the name is written; a newcomer at the address keeps it listed.
        added = run(write(tmp_path / "d2.csv", ["+" + lodger, "-" + john.replace('"Mr","John"', '"MR.","JOHN"')]), "mps", delta=True)
        assert (added.entries, added.removed) == (0, 0) and listed("mps", address)
        last = run(write(tmp_path / "d3.csv", ["-" + lodger]), "mps", delta=True)
        assert last.removed == 1 and not listed("mps", address)
        # Listed again by a delta, and taken away by the same person's removal.
        run(write(tmp_path / "d4.csv", ["+" + jane]), "mps", delta=True)
        assert listed("mps", address)
        assert run(write(tmp_path / "d5.csv", ["-" + jane]), "mps", delta=True).removed == 1
        assert not listed("mps", address)


def test_rejected_lines_are_numbered_masked_and_do_not_stop_the_import(app, tmp_path):
    report = tmp_path / "report.txt"
    lines = [UK[0][0], "0207 00000", "hello", "", "-" + UK[1][0], "+33 1 42 68 53 00", UK[2][0]]
    with app.app_context(), report.open("w") as out:
        summary = run(write(tmp_path / "tps.txt", lines), "tps", report=out)
    assert (summary.accepted, summary.rejected) == (2, 4)
    assert [r.line_no for r in summary.rejections] == [2, 3, 5, 6]
    text = report.read_text()
    assert text.startswith("line 2: not a valid UK number: 0207 *****\n")
    assert "line 5: an addition or removal marker outside a delta import" in text
    assert "00000" not in text and "42 68 53" not in text


def test_mps_rejections_name_no_address(app, tmp_path):
    lines = [MPS[0][0], MPS[0][0].replace('"P"', '"I"'), MPS[0][0].replace("01022024", "31022024"), MPS[0][0].replace("LS1 4AP", "")]
    with app.app_context():
        summary = run(write(tmp_path / "mps.csv", lines), "mps")
    assert summary.accepted == 1
    reasons = [(r.line_no, r.reason) for r in summary.rejections]
    assert reasons == [
        (2, "the flag is not P (do not mail) or X (deceased)"),
        (3, "the date is not DDMMCCYY"),
        (4, "no address line with a UK postcode"),
    ]


def test_a_new_full_list_replaces_the_old_one_whole(app, tmp_path):
    with app.app_context():
        first = run(write(tmp_path / "a.txt", [UK[0][0], UK[1][0]]), "tps")
        second = run(write(tmp_path / "b.txt", [UK[2][0]]), "tps", list_date=date(2026, 12, 5))
        statuses = dict(db.session.execute(sa.select(RegisterList.id, RegisterList.status)).all())
        assert statuses == {first.list_id: REPLACED, second.list_id: CURRENT}
        assert not listed("tps", number_hash("tps", UK[0][1]))
        assert listed("tps", number_hash("tps", UK[2][1]))
        # The replaced list's entries stay a while, for processes that still hold it as current
        # (test_replaced_lists.py); checks here read the new list alone.
        counts = dict(db.session.execute(sa.select(RegisterEntry.list_id, sa.func.count()).group_by(RegisterEntry.list_id)).all())
        assert counts == {first.list_id: 2, second.list_id: 1}


def test_a_failed_full_import_keeps_the_old_list(app, tmp_path):
    with app.app_context():
        good = run(write(tmp_path / "a.txt", [UK[0][0]]), "tps")
        with pytest.raises(loader.ImportFailed) as failed:
            run(write(tmp_path / "b.txt", ["not a number", "nor this"]), "tps")
        assert failed.value.summary.rejected == 2
        statuses = dict(db.session.execute(sa.select(RegisterList.id, RegisterList.status)).all())
        assert statuses == {good.list_id: CURRENT, failed.value.summary.list_id: FAILED}
        assert listed("tps", number_hash("tps", UK[0][1]))


def test_a_delta_without_a_current_full_list_is_refused(app, tmp_path):
    with app.app_context():
        with pytest.raises(Conflict, match="no current full list"):
            run(write(tmp_path / "d.txt", [UK[0][0]]), "tps", delta=True)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(RegisterList)) == 0


def test_checks_see_the_old_list_while_a_full_list_loads(app, tmp_path):
    """A second connection reads the current list between the chunks of a loading list."""
    with app.app_context():
        run(write(tmp_path / "a.txt", [UK[0][0]]), "tps")
        old, new = number_hash("tps", UK[0][1]), number_hash("tps", UK[1][1])
        seen = []

        def progress(_done):
            with scopes.read_only(), db.engine.connect() as other:  # a check only reads
                status = other.execute(sa.select(RegisterList.status).order_by(RegisterList.id.desc()).limit(1)).scalar()
                seen.append((status, listed("tps", old, connection=other), listed("tps", new, connection=other)))

        loader.import_file(
            register="tps",
            path=write(tmp_path / "b.txt", [UK[1][0]] * 3),
            list_date=DAY,
            delta=False,
            imported_by="test",
            progress=progress,
        )
        assert seen and all(s == ("loading", True, False) for s in seen)
        assert listed("tps", new) and not listed("tps", old)


def test_a_number_listed_twice_is_one_entry(app, tmp_path):
    lines = [fixed(UK[0][0]), fixed(UK[0][0].replace(" ", "")), UK[1][0], UK[0][0]]
    with app.app_context():
        summary = run(write(tmp_path / "dup.txt", lines), "tps")
        assert (summary.accepted, summary.entries) == (4, 2)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(RegisterEntry)) == 2
