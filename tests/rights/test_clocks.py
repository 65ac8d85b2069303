"""Each jurisdiction's clocks (rights/clocks.py) over its business days and
public holidays (rights/calendar.py, from the `holidays` package)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from prefs_service.errors import Conflict, Invalid
from prefs_service.rights import clocks
from prefs_service.rights.calendar import add_business_days, add_months, is_business_day, next_business_day


def at(day: str, time: str = "15:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{time}:00").replace(tzinfo=UTC)


def due(jurisdiction, received, verified=None, type="access", **extension):
    return clocks.answer_due(jurisdiction=jurisdiction, type=type, received=at(received), verified=at(verified or received), **extension)


# --- the calendars ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "jurisdiction", "business"),
    [
        ("2026-12-28", "GB", False),  # Boxing Day (observed): 26 December is a Saturday
        ("2026-12-28", "US-CA", True),
        ("2026-11-27", "US-CA", False),  # California's day after Thanksgiving
        ("2026-11-27", "GB", True),
        ("2026-05-01", "EU", False),  # TARGET closes on Labour Day
        ("2026-05-01", "GB", True),
        ("2026-05-04", "GB", False),  # England's early May bank holiday
        ("2026-05-04", "EU", True),
        ("2026-12-25", "other", True),  # no holidays elsewhere: only weekends
        ("2026-12-26", "other", False),  # a Saturday
    ],
)
def test_each_jurisdiction_has_its_own_holidays(day, jurisdiction, business):
    assert is_business_day(date.fromisoformat(day), jurisdiction) is business


def test_business_days_count_from_the_day_after_and_keep_the_time():
    assert add_business_days(at("2026-12-05", "09:30"), 1, "GB") == at("2026-12-07", "09:30")  # a Saturday: Monday is day 1
    assert add_business_days(at("2026-12-07"), 0, "GB") == at("2026-12-07")
    with pytest.raises(ValueError, match="must not be negative"):
        add_business_days(at("2026-12-07"), -1, "GB")
    with pytest.raises(ValueError, match="unknown jurisdiction 'Mars'"):
        add_business_days(at("2026-12-07"), 1, "Mars")


def test_a_deadline_on_a_holiday_moves_to_the_next_business_day():
    assert next_business_day(at("2027-03-26"), "GB") == at("2027-03-30")  # Good Friday, the weekend, Easter Monday
    assert next_business_day(at("2027-03-25"), "GB") == at("2027-03-25")


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [("2026-01-31", 1, "2026-02-28"), ("2028-01-31", 1, "2028-02-29"), ("2026-10-31", 1, "2026-11-30"), ("2026-12-31", 2, "2027-02-28")],
)
def test_calendar_months_clamp_to_the_month_end(start, months, end):
    assert add_months(at(start), months) == at(end)


# --- GDPR and UK GDPR ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jurisdiction", "verified", "answer_by"),
    [
        ("GB", "2026-12-24", "2027-01-25"),  # 24 January 2027 is a Sunday
        ("GB", "2026-01-31", "2026-03-02"),  # clamped to Saturday 28 February, then Monday
        ("GB", "2028-01-31", "2028-02-29"),  # a leap year's last day, a Tuesday
        ("GB", "2027-02-26", "2027-03-30"),  # Good Friday, the weekend and Easter Monday pass
        ("GB", "2026-04-01", "2026-05-01"),  # a Friday, working in England
        ("EU", "2026-04-01", "2026-05-04"),  # TARGET is closed on 1 May
        ("other", "2026-04-01", "2026-05-01"),
        ("other", "2026-11-26", "2026-12-28"),  # Saturday 26 December: the Monday
        (None, "2026-12-24", "2027-01-25"),  # a request from before jurisdictions: weekends only
    ],
)
def test_gdpr_one_calendar_month_from_the_confirmed_request(jurisdiction, verified, answer_by):
    assert due(jurisdiction, "2026-01-01", verified) == at(answer_by)
    assert clocks.acknowledge_by(jurisdiction=jurisdiction, type="access", received=at(verified)) is None


def test_gdpr_waits_for_confirmation_to_start_its_month():
    assert clocks.answer_due(jurisdiction="GB", type="erasure", received=at("2026-12-01"), verified=None) is None


def test_gdpr_extension_by_one_or_two_months_counts_from_the_confirmed_request():
    assert due("GB", "2026-12-24", extension_months=2) == at("2027-03-24")  # a Wednesday
    assert due("GB", "2026-11-01", extension_months=1) == at("2027-01-04")  # New Year's Day, then the weekend
    assert due("EU", "2026-10-26", extension_months=1) == at("2026-12-28")  # 26 December: TARGET closed, then a Sunday


def extension(jurisdiction, *, received="2026-12-01", verified="2026-12-01", now, months=None, already=False, type="access"):
    return clocks.check_extension(
        jurisdiction=jurisdiction,
        type=type,
        received=at(received),
        verified=at(verified),
        months=months,
        already_extended=already,
        now=at(now),
    )


def test_gdpr_extends_once_by_at_most_two_months_within_the_first_month():
    assert extension("GB", months=2, now="2027-01-01") == (2, None)
    assert extension("EU", months=1, now="2026-12-02") == (1, None)
    with pytest.raises(Invalid) as bad:
        extension("GB", months=3, now="2026-12-02")
    assert bad.value.errors == {"months": ["extend by 1 or 2 months"]}
    with pytest.raises(Invalid):
        extension("GB", months=None, now="2026-12-02")
    with pytest.raises(Conflict, match="extended already"):
        extension("GB", months=1, now="2026-12-02", already=True)
    # The month ran out on 1 January 2027, a holiday, so the last day to tell them was Monday 4 January.
    assert extension("GB", months=1, now="2027-01-04") == (1, None)
    with pytest.raises(Conflict, match="within the first month, which ended on 4 January 2027"):
        extension("GB", months=1, now="2027-01-05")


# --- CCPA / CPRA -----------------------------------------------------------------------------


def test_ccpa_acknowledgement_within_ten_business_days_across_thanksgiving():
    # Thanksgiving (26 Nov) and California's day after (27 Nov) are not business days.
    assert clocks.acknowledge_by(jurisdiction="US-CA", type="access", received=at("2026-11-20")) == at("2026-12-08")


def test_ccpa_acknowledgement_within_ten_business_days_across_christmas_and_new_year():
    assert clocks.acknowledge_by(jurisdiction="US-CA", type="erasure", received=at("2026-12-18")) == at("2027-01-05")
    # No acknowledgement is owed for an opt-out: it is applied instead.
    assert clocks.acknowledge_by(jurisdiction="US-CA", type="opt_out_sale_sharing", received=at("2026-12-18")) is None


def test_ccpa_answers_within_45_calendar_days_of_receipt_however_long_verifying_took():
    assert due("US-CA", "2026-11-20", verified="2026-12-03") == at("2027-01-04")
    assert due("US-CA", "2026-11-20", verified="2026-12-03", extension_days=45) == at("2027-02-18")


def test_ccpa_extends_once_by_45_days_within_the_first_45():
    assert extension("US-CA", received="2026-11-20", now="2027-01-04") == (None, 45)
    with pytest.raises(Invalid) as bad:
        extension("US-CA", months=1, now="2026-12-02")
    assert "45 days" in bad.value.errors["months"][0]
    with pytest.raises(Conflict, match="extended already"):
        extension("US-CA", now="2026-12-02", already=True)
    with pytest.raises(Conflict, match="within the first 45 days, which ended on 4 January 2027"):
        extension("US-CA", received="2026-11-20", now="2027-01-05")


@pytest.mark.parametrize(
    ("jurisdiction", "applied_by"),
    [
        ("US-CA", "2027-01-12"),  # Christmas Day and New Year's Day off
        ("GB", "2027-01-13"),  # also Boxing Day (observed) on 28 December
        ("other", "2027-01-08"),
    ],
)
@pytest.mark.parametrize("type", ["opt_out_sale_sharing", "limit_sensitive"])
def test_opt_outs_are_applied_within_15_business_days_and_never_extended(jurisdiction, applied_by, type):
    assert clocks.answer_due(jurisdiction=jurisdiction, type=type, received=at("2026-12-18"), verified=None) == at(applied_by)
    with pytest.raises(Conflict, match="cannot be extended"):
        extension(jurisdiction, type=type, now="2026-12-19", months=1)


def test_the_12_month_wait_after_an_opt_out():
    assert clocks.ask_again_after(at("2026-12-06", "20:15")) == at("2027-12-06", "20:15")
    assert clocks.ask_again_after(at("2028-02-29")) == at("2029-02-28")
