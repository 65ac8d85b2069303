"""A fixed set of rights requests across 2024 and 2025, and what the yearly report must say of it."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from prefs_service.extensions import db
from prefs_service.rights import service as rights
from prefs_service.rights.models import TYPES, RightsRequest


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (type, received, status, finished): each request is taken by the service, then moved to
# its status and times (the work itself is not what the report is about).
REQUESTS = [
    # 2025, access: answered in 3.5, 10 and 20 days; one expired; three open at the year's end
    ("access", "2025-01-10 00:00", "completed", "2025-01-20 00:00"),
    ("access", "2025-03-01 12:00", "completed", "2025-03-05 00:00"),
    ("access", "2025-06-01 00:00", "rejected", "2025-06-21 00:00"),
    ("access", "2025-07-01 00:00", "expired", "2025-07-15 00:00"),
    ("access", "2025-12-20 00:00", "completed", "2026-01-10 00:00"),  # answered after the year ended
    ("access", "2025-11-01 00:00", "processing", None),
    ("access", "2025-05-05 00:00", "failed", None),
    # 2025, erasure: 1, 2, 6 and 9 days (an even count: the median is the mean of the middle two)
    ("erasure", "2025-01-01 00:00", "completed", "2025-01-02 00:00"),  # the year's first instant
    ("erasure", "2025-02-10 00:00", "completed", "2025-02-12 00:00"),
    ("erasure", "2025-04-01 00:00", "rejected", "2025-04-07 00:00"),
    ("erasure", "2025-12-22 00:00", "completed", "2025-12-31 00:00"),
    # 2024: one received in its last second and answered in 2025, one rejected after 30 days
    ("access", "2024-12-31 23:59:59", "completed", "2025-01-02 00:00"),
    ("erasure", "2024-03-01 00:00", "rejected", "2024-03-31 00:00"),
    ("correction", "2024-09-01 00:00", "awaiting_review", None),
    # 2026's first instant belongs to 2026
    ("erasure", "2026-01-01 00:00", "awaiting_verification", None),
]

ZERO = {
    "received": 0,
    "complied_in_whole_or_part": 0,
    "denied": 0,
    "denied_unverified": 0,
    "not_answered": 0,
    "median_days_to_answer": None,
    "mean_days_to_answer": None,
}
EXPECTED = {
    2025: {
        "access": {
            "received": 7,
            "complied_in_whole_or_part": 2,
            "denied": 2,
            "denied_unverified": 1,
            "not_answered": 3,
            "median_days_to_answer": 10.0,
            "mean_days_to_answer": 11.2,  # (3.5 + 10 + 20) / 3
        },
        "erasure": {
            "received": 4,
            "complied_in_whole_or_part": 3,
            "denied": 1,
            "denied_unverified": 0,
            "not_answered": 0,
            "median_days_to_answer": 4.0,
            "mean_days_to_answer": 4.5,
        },
    },
    2024: {
        "access": {**ZERO, "received": 1, "not_answered": 1},
        "erasure": {**ZERO, "received": 1, "denied": 1, "median_days_to_answer": 30.0, "mean_days_to_answer": 30.0},
        "correction": {**ZERO, "received": 1, "not_answered": 1},
    },
}


def expected_rows(year: int) -> list[dict]:
    """One row per request type, in TYPES' order, zeros where none was received."""
    return [{"type": t, **EXPECTED.get(year, {}).get(t, ZERO)} for t in TYPES]


def make_requests(app) -> None:
    with app.app_context():
        for n, (type_, received, status, finished) in enumerate(REQUESTS):
            changes = {"name": f"Name {n}"} if type_ == "correction" else None
            item = rights.submit(type=type_, email=f"r{n}@example.com", changes=changes, verified=True, actor="test")
            values = {"status": status, "created_at": at(received), "finished_at": at(finished) if finished else None}
            db.session.execute(sa.update(RightsRequest).where(RightsRequest.id == item.id).values(**values))
        db.session.commit()
