"""PostgreSQL keeps each full list's entries in a partition of their own
(registers/partitions.py): loaded unindexed, indexed once full, attached, and
dropped whole when no check can reach the list any more."""

from __future__ import annotations

import os
import uuid
from datetime import date

import psycopg
import pytest
import sqlalchemy as sa

from prefs_service.db import migrations
from prefs_service.extensions import db
from prefs_service.registers import loader, partitions
from prefs_service.registers.models import RegisterEntry
from tests.helpers import Api

from .helpers import UK, listed, number_hash, write
from .test_replaced_lists import entries_by_list, minutes_pass, upload

pytestmark = pytest.mark.postgresql_only


def tables(app) -> dict[str, int]:
    """{each list's table: its rows}, after checking that each is attached to the entries table."""
    with app.app_context():
        attached = set(
            db.session.scalars(
                sa.text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'register_entries'::regclass"
                )
            )
        )
        with db.session.connection().connection.cursor() as cursor:
            existing = set(partitions.tables(cursor))
        counts = {name: db.session.scalar(sa.text(f"SELECT count(*) FROM {name}")) for name in existing}
        db.session.rollback()
    assert existing == attached, f"tables of lists left unattached: {existing - attached}"
    return counts


def test_each_full_list_is_a_partition_of_its_own_and_a_delta_adds_to_it(app, tmp_path):
    with app.app_context():
        first = loader.import_file(
            register="tps", path=write(tmp_path / "a.txt", [UK[0][0], UK[1][0]]), list_date=date(2026, 12, 1), delta=False, imported_by="t"
        )
        second = loader.import_file(
            register="tps", path=write(tmp_path / "b.txt", [UK[2][0]]), list_date=date(2026, 12, 2), delta=False, imported_by="t"
        )
        loader.import_file(
            register="tps", path=write(tmp_path / "d.txt", ["+" + UK[3][0]]), list_date=date(2026, 12, 3), delta=True, imported_by="t"
        )
        assert listed("tps", number_hash("tps", UK[3][1])) and listed("tps", number_hash("tps", UK[2][1]))
        db.session.rollback()
    assert tables(app) == {
        partitions.table_of(first.list_id): 2,
        partitions.table_of(second.list_id): 2,  # the delta's number went into its full list's partition
    }


def test_a_number_listed_twice_is_one_entry_in_its_partition(app, tmp_path):
    lines = [UK[0][0], UK[0][0].replace(" ", ""), UK[1][0], UK[0][0]]
    with app.app_context():
        summary = loader.import_file(
            register="tps", path=write(tmp_path / "dup.txt", lines), list_date=date(2026, 12, 1), delta=False, imported_by="t"
        )
    assert (summary.accepted, summary.entries) == (4, 2)
    assert tables(app)[partitions.table_of(summary.list_id)] == 2


def test_a_failed_import_leaves_no_table_behind(app, tmp_path):
    with app.app_context(), pytest.raises(loader.ImportFailed) as failed:
        loader.import_file(
            register="tps",
            path=write(tmp_path / "bad.txt", ["not a number"]),
            list_date=date(2026, 12, 1),
            delta=False,
            imported_by="t",
        )
    assert partitions.table_of(failed.value.summary.list_id) not in tables(app)


def test_lists_no_check_can_reach_are_dropped_whole(app, admin):
    api = Api(app.test_client(), admin)
    first = upload(api, [UK[0][0], UK[1][0]], days=3)
    second = upload(api, [UK[2][0]], days=2)
    minutes_pass(app, 2)
    third = upload(api, [UK[3][0]], days=1)
    assert tables(app) == {partitions.table_of(second["list_id"]): 1, partitions.table_of(third["list_id"]): 1}
    assert first["list_id"] not in entries_by_list(app)


def test_a_list_kept_busy_by_a_reader_is_dropped_by_a_later_import(app, admin):
    """Dropping a partition waits for transactions that read the entries; one
    held past the timeout leaves the list (and its rows) for the next import."""
    api = Api(app.test_client(), admin)
    first = upload(api, [UK[0][0]], days=3)
    upload(api, [UK[1][0]], days=2)
    minutes_pass(app, 2)
    with app.app_context(), db.engine.connect() as reader:
        reader.execute(sa.select(sa.func.count()).select_from(RegisterEntry))  # holds its lock until it ends
        original, partitions.DROP_LOCK_TIMEOUT = partitions.DROP_LOCK_TIMEOUT, "200ms"
        try:
            upload(api, [UK[2][0]], days=1)
        finally:
            partitions.DROP_LOCK_TIMEOUT = original
        reader.rollback()
    assert entries_by_list(app)[first["list_id"]] == 1
    upload(api, [UK[3][0]], days=0)
    assert first["list_id"] not in entries_by_list(app)
    assert partitions.table_of(first["list_id"]) not in tables(app)


@pytest.fixture
def scratch_database():
    """A database of its own, for a migration run from an earlier revision."""
    url = os.environ["PREFS_TEST_DATABASE_URL"]
    name = f"prefs_partitions_{uuid.uuid4().hex[:12]}"
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_the_migration_moves_each_lists_entries_into_its_partition_and_back(scratch_database, make_app):  # dropped after the app empties it
    import flask_migrate

    app = make_app(database_url=scratch_database)
    migrations.register(app)
    keys = {1: [b"a" * 32, b"b" * 32], 2: [b"c" * 32], 3: []}  # 3: a current list that deltas emptied
    with app.app_context():
        flask_migrate.upgrade(revision="0015")
        for list_id, hashes in keys.items():
            db.session.execute(
                sa.text(
                    "INSERT INTO register_lists (id, register, kind, list_date, status, started_at, accepted, rejected, removed, imported_by) "
                    "VALUES (:id, 'tps', 'full', '2026-12-01', :status, now(), 0, 0, 0, 't')"
                ),
                {"id": list_id, "status": "replaced" if list_id == 1 else "current"},
            )
            if hashes:
                db.session.execute(sa.insert(RegisterEntry), [{"list_id": list_id, "key_hash": h, "flag": "P"} for h in hashes])
        db.session.commit()
        flask_migrate.upgrade()
        moved = tables(app)
        rows = set(db.session.execute(sa.select(RegisterEntry.list_id, RegisterEntry.key_hash, RegisterEntry.flag)).all())
        db.session.rollback()
        flask_migrate.downgrade(revision="0015")
        kind = db.session.scalar(sa.text("SELECT relkind::text FROM pg_class WHERE relname = 'register_entries'"))
        back = set(db.session.execute(sa.select(RegisterEntry.list_id, RegisterEntry.key_hash, RegisterEntry.flag)).all())
        db.session.rollback()
        flask_migrate.upgrade()  # every table again: the app's teardown empties them all
        db.engine.dispose()
    assert moved == {partitions.table_of(1): 2, partitions.table_of(2): 1, partitions.table_of(3): 0}
    assert rows == back == {(list_id, h, "P") for list_id, hashes in keys.items() for h in hashes}
    assert kind == "r"
