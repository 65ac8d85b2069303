"""Calendar-month deadlines."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from prefs_service.rights.service import add_months


@pytest.mark.parametrize(
    ("start", "months", "due"),
    [
        ("2026-01-15", 1, "2026-02-15"),
        ("2026-01-31", 1, "2026-02-28"),
        ("2028-01-31", 1, "2028-02-29"),
        ("2026-03-31", 1, "2026-04-30"),
        ("2026-12-10", 1, "2027-01-10"),
        ("2026-08-31", 2, "2026-10-31"),
        ("2026-12-31", 2, "2027-02-28"),
    ],
)
def test_one_calendar_month_is_the_same_day_or_the_last_day(start, months, due):
    moment = datetime.fromisoformat(start + "T10:30:00").replace(tzinfo=UTC)
    assert add_months(moment, months) == datetime.fromisoformat(due + "T10:30:00").replace(tzinfo=UTC)
