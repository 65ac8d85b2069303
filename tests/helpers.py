"""Small helpers shared by tests."""

from __future__ import annotations

import sqlalchemy as sa

from prefs_service.extensions import db
from prefs_service.notices import service as notices
from prefs_service.notices.models import Notice
from prefs_service.outbox import Job


def queue_preferences_mail(app, *, key: str = "prefs-link-1", recipient: str = "reader@example.com") -> int:
    """Queue one real notice through the notices service, committed."""
    with app.app_context():
        notice_id = notices.queue(
            kind="preferences_link",
            recipient=recipient,
            template="preferences_link",
            context={"preferences_url": "https://prefs.example/preferences/abc", "valid_days": 30},
            idempotency_key=key,
        )
        db.session.commit()
        return notice_id


def jobs_of(app, kind: str | None = None) -> list[Job]:
    with app.app_context():
        stmt = sa.select(Job).order_by(Job.id)
        if kind:
            stmt = stmt.where(Job.kind == kind)
        rows = list(db.session.scalars(stmt))
        db.session.close()  # detach loaded, not expired
        return rows


def notice(app, notice_id: int) -> Notice:
    with app.app_context():
        row = db.session.get(Notice, notice_id)
        db.session.close()
        return row
