"""Each register's state: its current full list (date, entries, age, staleness)
and its latest import. The one place that says so: `prefs registers list`,
`GET /v1/registers`, `/readyz` and the metrics all read `states()`.

Entries are counted from the imports' own counts, never by counting rows (a
count(*) of 17M rows is too slow for a readiness probe or a scrape): the full
list's `accepted` (entries written: a number listed twice is one), plus each
delta applied to it since, its `accepted` (entries it added that were not
listed) less its `removed` (listed entries it took away). The loader keeps
those exact (tests/registers/test_importer_and_screening.py checks them against the rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from ..clock import utcnow
from ..extensions import db
from . import REGISTERS
from .models import APPLIED, CURRENT, DELTA, FULL, RegisterList


@dataclass
class RegisterState:
    register: str
    label: str
    channel: str
    stale_after_days: int | None
    list_id: int | None = None
    list_date: date | None = None
    imported_at: datetime | None = None
    entries: int = 0
    age_days: int | None = None
    # Older than the register's rule: checks answer register_stale (or warn).
    stale: bool = False
    # The newest import of any kind (full or delta) and how it ended.
    last_import_status: str | None = None
    last_import_at: datetime | None = None

    def age_seconds(self, now: datetime) -> float | None:
        """Seconds since the start (UTC) of the list's date; None before the first import."""
        if self.list_date is None:
            return None
        start = datetime(self.list_date.year, self.list_date.month, self.list_date.day, tzinfo=now.tzinfo)
        return max(0.0, (now - start).total_seconds())


def states(*, today: date | None = None) -> list[RegisterState]:
    """Every register, in REGISTERS order: three statements, whatever the lists' sizes."""
    today = today or utcnow().date()
    lists = RegisterList.__table__
    current = {
        row.register: row
        for row in db.session.execute(
            sa.select(lists.c.register, lists.c.id, lists.c.list_date, lists.c.finished_at, lists.c.accepted)
            .where(lists.c.kind == FULL, lists.c.status == CURRENT)
            .order_by(lists.c.list_date, lists.c.id)  # the newest wins, should two ever be current (as screening does)
        )
    }
    # A delta applies to the list current when it ran, and none runs while a
    # full list loads (loader._start refuses it), so the deltas applied to a
    # current list are exactly the later ones.
    current_ids = (
        sa.select(lists.c.register.label("register"), lists.c.id.label("id"))
        .where(lists.c.kind == FULL, lists.c.status == CURRENT)
        .subquery()
    )
    deltas: dict[str, int] = {
        register: int(total)
        for register, total in db.session.execute(
            sa.select(lists.c.register, sa.func.coalesce(sa.func.sum(lists.c.accepted - lists.c.removed), 0))
            .select_from(lists)
            .join(current_ids, current_ids.c.register == lists.c.register)
            .where(lists.c.kind == DELTA, lists.c.status == APPLIED, lists.c.id > current_ids.c.id)
            .group_by(lists.c.register)
        )
    }
    newest = sa.select(sa.func.max(lists.c.id)).group_by(lists.c.register).scalar_subquery()
    latest = {
        row.register: row
        for row in db.session.execute(
            sa.select(lists.c.register, lists.c.status, lists.c.finished_at, lists.c.started_at).where(lists.c.id.in_(newest))
        )
    }
    found = []
    for register in REGISTERS.values():
        state = RegisterState(register.name, register.label, register.channel, register.stale_after_days)
        row = current.get(register.name)
        if row is not None:
            state.list_id, state.list_date, state.imported_at = row.id, row.list_date, row.finished_at
            state.age_days = (today - row.list_date).days
            state.stale = register.stale_after_days is not None and state.age_days > register.stale_after_days
            state.entries = max(0, row.accepted + int(deltas.get(register.name, 0)))
        last = latest.get(register.name)
        if last is not None:
            state.last_import_status, state.last_import_at = last.status, last.finished_at or last.started_at
        found.append(state)
    return found
