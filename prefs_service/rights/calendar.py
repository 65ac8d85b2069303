"""Calendar arithmetic for the rights clocks: calendar months (clamped to the
month's end) and business days under each jurisdiction's public holidays.

The holidays come from the `holidays` package:
- GB: England's bank holidays (the UK calendar, subdivision ENG);
- EU: the days the Eurosystem's TARGET system is closed (New Year's Day, Good
  Friday, Easter Monday, 1 May, 25 and 26 December): the holidays the Union
  shares, as no one member state's calendar speaks for all of it;
- US-CA: US federal holidays plus California's (subdivision CA);
- other: none, so only Saturdays and Sundays are not business days.

Dates are read in UTC: a request's day is its UTC calendar day.
"""

from __future__ import annotations

import calendar as _calendar
from datetime import date, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING

from ..subjects.jurisdictions import EU, GB, OTHER, US_CA

if TYPE_CHECKING:
    import holidays


@cache
def _calendar_of(jurisdiction: str) -> holidays.HolidayBase | None:
    import holidays  # on first use: a worker that computes no deadline need not hold the calendars

    if jurisdiction == GB:
        return holidays.country_holidays("GB", subdiv="ENG")
    if jurisdiction == US_CA:
        return holidays.country_holidays("US", subdiv="CA")
    if jurisdiction == EU:
        return holidays.financial_holidays("XECB")
    if jurisdiction == OTHER:
        return None
    raise ValueError(f"unknown jurisdiction {jurisdiction!r}")


def holiday_name(day: date, jurisdiction: str) -> str | None:
    """The public holiday `day` is in that jurisdiction, or None."""
    found = _calendar_of(jurisdiction)
    return found.get(day) if found is not None else None


def is_business_day(day: date, jurisdiction: str) -> bool:
    """Monday to Friday, and not a public holiday there."""
    return day.weekday() < 5 and holiday_name(day, jurisdiction) is None


def add_business_days(start: datetime, n: int, jurisdiction: str) -> datetime:
    """The n-th business day after the day of `start` (that day itself does not
    count, whatever it is), at the same time of day."""
    if n < 0:
        raise ValueError("n must not be negative")
    day = start.date()
    left = n
    while left:
        day += timedelta(days=1)
        if is_business_day(day, jurisdiction):
            left -= 1
    return start.replace(year=day.year, month=day.month, day=day.day)


def next_business_day(moment: datetime, jurisdiction: str) -> datetime:
    """`moment`, or the first business day after it when its day is a weekend
    or a public holiday (a deadline falling there moves to that day)."""
    day = moment.date()
    while not is_business_day(day, jurisdiction):
        day += timedelta(days=1)
    return moment.replace(year=day.year, month=day.month, day=day.day)


def add_months(moment: datetime, months: int) -> datetime:
    """The same day `months` later, or the last day of that month when it has no such day
    (31 January + 1 month = 28 or 29 February): the ICO's "one calendar month"."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, _calendar.monthrange(year, month)[1]))
