"""Each register's state: its current full list (date, entries, age) and its latest import."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from ..clock import utcnow
from ..extensions import db
from . import REGISTERS
from .models import CURRENT, FULL, RegisterEntry, RegisterList


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
    # The newest import of any kind (full or delta) and how it ended.
    last_import_status: str | None = None
    last_import_at: datetime | None = None


def states() -> list[RegisterState]:
    today = utcnow().date()
    found = []
    for register in REGISTERS.values():
        state = RegisterState(register.name, register.label, register.channel, register.stale_after_days)
        current = db.session.scalars(
            sa.select(RegisterList).where(RegisterList.register == register.name, RegisterList.status == CURRENT, RegisterList.kind == FULL)
        ).first()
        if current is not None:
            state.list_id, state.list_date, state.imported_at = current.id, current.list_date, current.finished_at
            state.age_days = (today - current.list_date).days
            state.entries = (
                db.session.scalar(sa.select(sa.func.count()).select_from(RegisterEntry).where(RegisterEntry.list_id == current.id)) or 0
            )
        latest = db.session.scalars(
            sa.select(RegisterList).where(RegisterList.register == register.name).order_by(RegisterList.id.desc()).limit(1)
        ).first()
        if latest is not None:
            state.last_import_status, state.last_import_at = latest.status, latest.finished_at or latest.started_at
        found.append(state)
    return found
