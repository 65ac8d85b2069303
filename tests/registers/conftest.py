"""Registers as the screening tests need them: a current full list loaded
straight into the tables, with any list date, so that a test sets up exactly
the list it screens against. The importer's own path from file to check is
tested in test_importer_and_screening.py (each register) and test_import.py."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from prefs_service import channels
from prefs_service.clock import utcnow
from prefs_service.extensions import db
from prefs_service.registers import MPS, REGISTERS, partitions, screening
from prefs_service.registers.keys import mail_hash
from prefs_service.registers.models import CURRENT, FULL, REPLACED, RegisterEntry, RegisterList
from prefs_service.subjects.identifiers import identifier_hash


def days_ago(days: int) -> date:
    return utcnow().date() - timedelta(days=days)


@pytest.fixture
def headers(api_key):
    return api_key("consent:read", "consent:write", "subjects:read", "subjects:write", "requests:read", "requests:write")


@pytest.fixture
def load_register(app) -> Callable[..., int]:
    """load_register("tps", ["020 7946 0001", ...], list_date=days_ago(3)) -> the list's id.

    Makes that list the register's current full list (the one before it
    replaced), as a full import leaves it. MPS takes postal addresses."""

    def load(name: str, values: Iterable[str], list_date: date | None = None) -> int:
        register = REGISTERS[name]
        with app.app_context():
            hashes = set()
            for value in values:
                if register is MPS:
                    key = mail_hash(value)
                    assert key is not None, value
                else:
                    key = identifier_hash(register.identifier_kind, channels.normalize(register.identifier_kind, value))
                hashes.add(key)
            db.session.execute(
                sa.update(RegisterList).where(RegisterList.register == name, RegisterList.status == CURRENT).values(status=REPLACED)
            )
            listed = RegisterList(
                register=name,
                kind=FULL,
                list_date=list_date or utcnow().date(),
                status=CURRENT,
                finished_at=utcnow(),
                accepted=len(hashes),
                imported_by="test",
            )
            db.session.add(listed)
            db.session.flush()
            if db.engine.dialect.name == "postgresql":
                with db.session.connection().connection.cursor() as cursor:
                    partitions.add_empty(cursor, listed.id)
            flag = "P" if register is MPS else None
            if hashes:
                db.session.execute(sa.insert(RegisterEntry), [{"list_id": listed.id, "key_hash": h, "flag": flag} for h in hashes])
            db.session.commit()
            screening.forget_current_lists()
            return listed.id

    return load
