"""Yearly rights-request metrics, as CCPA/CPRA regulations §7102 ask a business to publish them.

A report covers one calendar year in UTC: from 1 January 00:00 UTC (inclusive) to the
next 1 January 00:00 UTC (exclusive). It counts the requests *received* in that year
(`created_at` in it), one row per request type in `TYPES`, and says what had become of
each by the end of the year:

    status                                  outcome
    completed                               complied with in whole or in part
    rejected                                denied (staff refused it, with the reason the requester is told)
    expired                                 denied, as not verifiable (never confirmed within 14 days)
    awaiting_verification, verified,
    awaiting_review, processing, failed     not answered (still open)

A finished request counts as answered only if it finished before the year ended; one
received in late December and answered in January is "received, not answered" in that
year's report, and is not counted again in the next year's (which counts what was
received then). For the year in progress, the end is now. The service records no
partial compliance apart: a completed request is "complied with in whole or in part".
`denied_unverified` is the part of `denied` that expired unconfirmed, which §7102(a)(3)
lets a business show apart.

Days to answer run from received (`created_at`) to answered (`finished_at`), in days of
24 hours, over the requests complied with or rejected before the year ended. Expired
requests are left out: nobody answered them. Median and mean are rounded to 0.1 day,
and are None where no request of that type was answered.

Everything is counted in one SQL statement, on SQLite and PostgreSQL alike: one grouped
count of the year's requests, joined to the days taken by the answered ones (their median
by window functions, which sort only those); no request row is loaded into Python.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from ..clock import utcnow
from ..db.backend import backend
from ..errors import Invalid
from ..extensions import db
from .models import COMPLETED, EXPIRED, OPEN, REJECTED, TYPES, RightsRequest

MIN_YEAR = 1970
MAX_YEAR = 9998  # the year after must still be a date Python can hold

COMPLIED = "complied"
DENIED = "denied"
NOT_ANSWERED = "not_answered"
# Each status's outcome, as in the table above (a status missing here counts as not answered;
# tests/rights/test_report.py fails until it is placed).
OUTCOMES: dict[str, str] = {COMPLETED: COMPLIED, REJECTED: DENIED, EXPIRED: DENIED, **dict.fromkeys(OPEN, NOT_ANSWERED)}
UNVERIFIED = (EXPIRED,)
# The statuses whose finish is an answer, timed for the median and mean.
ANSWERED = (COMPLETED, REJECTED)
SECONDS_PER_DAY = 86400


@dataclass(frozen=True)
class TypeFigures:
    """One request type's line of the report (the field names are the CSV and JSON columns)."""

    type: str
    received: int
    complied_in_whole_or_part: int
    denied: int
    denied_unverified: int
    not_answered: int
    median_days_to_answer: float | None
    mean_days_to_answer: float | None


COLUMNS = tuple(f.name for f in fields(TypeFigures))


@dataclass(frozen=True)
class RequestReport:
    year: int
    starts: datetime  # inclusive
    ends: datetime  # exclusive
    as_of: datetime  # the year's end, or now while it lasts
    complete: bool  # whether the year is over
    types: list[TypeFigures]

    def as_dict(self) -> dict[str, Any]:
        return {
            "year": self.year,
            "from": self.starts.isoformat(),
            "to": self.ends.isoformat(),
            "as_of": self.as_of.isoformat(),
            "complete": self.complete,
            "types": [dict(zip(COLUMNS, astuple(row), strict=True)) for row in self.types],
        }

    def as_csv(self) -> str:
        """A header line, then one line per type; the year in the first column, so years concatenate."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["year", *COLUMNS])
        for row in self.types:
            writer.writerow([self.year, *("" if value is None else value for value in astuple(row))])
        return out.getvalue()


def year_bounds(year: int) -> tuple[datetime, datetime]:
    """1 January of `year` and of the next, 00:00 UTC; Invalid for a year out of range."""
    if type(year) is not int or not MIN_YEAR <= year <= MAX_YEAR:
        raise Invalid("That year cannot be reported on.", errors={"year": [f"give a year from {MIN_YEAR} to {MAX_YEAR}"]})
    return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)


def _days(seconds: Any) -> float | None:
    return None if seconds is None else round(float(seconds) / SECONDS_PER_DAY, 1)


def request_report(*, year: int, now: datetime | None = None) -> RequestReport:
    """The §7102 figures for `year`, one line per request type (every type in TYPES, with
    zeros where none was received; any other type found in the table after them)."""
    starts, ends = year_bounds(year)
    now = now or utcnow()
    r = RightsRequest
    received_in_year = sa.and_(r.created_at >= starts, r.created_at < ends)
    finished_in_year = sa.and_(r.finished_at.is_not(None), r.finished_at < ends)

    def finished_as(statuses: Iterable[str]) -> sa.ColumnElement[bool]:
        return sa.and_(finished_in_year, r.status.in_(statuses))

    counts = (
        sa.select(
            r.type.label("type"),
            sa.func.count().label("received"),
            sa.func.count().filter(finished_as([s for s, o in OUTCOMES.items() if o == COMPLIED])).label("complied"),
            sa.func.count().filter(finished_as([s for s, o in OUTCOMES.items() if o == DENIED])).label("denied"),
            sa.func.count().filter(finished_as(UNVERIFIED)).label("unverified"),
        )
        .where(received_in_year)
        .group_by(r.type)
        .subquery()
    )
    # The answered requests alone, each type's in order of the time taken: the median is
    # the middle one (or the mean of the middle two) of `answered`.
    timed = (
        sa.select(r.type.label("type"), backend().seconds_between(r.created_at, r.finished_at).label("seconds"))
        .where(received_in_year, finished_as(ANSWERED))
        .subquery()
    )
    ranked = sa.select(
        timed.c.type,
        timed.c.seconds,
        sa.func.row_number().over(partition_by=timed.c.type, order_by=timed.c.seconds).label("position"),
        sa.func.count().over(partition_by=timed.c.type).label("answered"),
    ).subquery()
    middle = ranked.c.position.in_([(ranked.c.answered + 1) // 2, (ranked.c.answered + 2) // 2])
    days = (
        sa.select(
            ranked.c.type,
            sa.func.avg(ranked.c.seconds).filter(middle).label("median"),
            sa.func.avg(ranked.c.seconds).label("mean"),
        )
        .group_by(ranked.c.type)
        .subquery()
    )
    statement = sa.select(
        counts.c.type, counts.c.received, counts.c.complied, counts.c.denied, counts.c.unverified, days.c.median, days.c.mean
    ).outerjoin(days, days.c.type == counts.c.type)
    found: dict[str, TypeFigures] = {}
    for type_, count, complied, denied, unverified, median, mean in db.session.execute(statement):
        found[type_] = TypeFigures(type_, count, complied, denied, unverified, count - complied - denied, _days(median), _days(mean))
    rows = [found.pop(t) if t in found else TypeFigures(t, 0, 0, 0, 0, 0, None, None) for t in TYPES]
    rows += [found[t] for t in sorted(found)]
    return RequestReport(year=year, starts=starts, ends=ends, as_of=min(max(now, starts), ends), complete=now >= ends, types=rows)


def years_with_requests(*, now: datetime | None = None) -> list[int]:
    """From the year of the first request received to this year, newest first (this year alone when none)."""
    this_year = (now or utcnow()).year
    first = db.session.scalar(sa.select(sa.func.min(RightsRequest.created_at)))
    return list(range(this_year, min(first.year if first else this_year, this_year) - 1, -1))
