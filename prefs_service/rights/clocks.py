"""The deadlines of a rights request, by the law of the person's jurisdiction.

GDPR and UK GDPR (GB, EU, other):
- answer within one calendar month of the confirmed request (a date the next
  month lacks is that month's last day); a deadline on a weekend or a public
  holiday moves to the next business day (the ICO's reading; for the EU,
  Regulation 1182/71 on periods);
- one extension, of 1 or 2 months, whose notice and reason go within the first month.

CCPA as amended by the CPRA (US-CA):
- acknowledge within 10 business days of receipt (we mail it on receipt);
- answer within 45 calendar days of receipt, however long verifying took;
- one extension of 45 days, whose notice and reason go within the first 45 days;
- opt-outs of sale/sharing and limits on sensitive data: applied within
  15 business days, with no identity verification (whatever the jurisdiction);
- after an opt-out of sale/sharing, wait 12 months before asking the person
  to opt back in (`ask_again_after`).

Business days follow calendar.py's holidays for the jurisdiction. Functions
here are pure: they take the moments they need.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..errors import Conflict, Invalid
from ..subjects.jurisdictions import OTHER, US_CA
from .calendar import add_business_days, add_months, next_business_day

GDPR = "GDPR"
CCPA = "CCPA"

# Request types a person may make without proving who they are: they only stop uses of their data.
NO_VERIFICATION = ("opt_out_sale_sharing", "limit_sensitive")

GDPR_ANSWER_MONTHS = 1
GDPR_EXTENSION_MONTHS = (1, 2)
CCPA_ACKNOWLEDGE_BUSINESS_DAYS = 10
CCPA_ANSWER_DAYS = 45
CCPA_EXTENSION_DAYS = 45
OPT_OUT_BUSINESS_DAYS = 15
ASK_AGAIN_AFTER_MONTHS = 12


def law(jurisdiction: str | None) -> str:
    return CCPA if jurisdiction == US_CA else GDPR


def _calendar_key(jurisdiction: str | None) -> str:
    # Requests made before jurisdictions were recorded keep GDPR's month, with weekends only.
    return jurisdiction or OTHER


def acknowledge_by(*, jurisdiction: str | None, type: str, received: datetime) -> datetime | None:
    """When the acknowledgement mail must have gone, or None if none is owed."""
    if law(jurisdiction) != CCPA or type in NO_VERIFICATION:
        return None
    return add_business_days(received, CCPA_ACKNOWLEDGE_BUSINESS_DAYS, US_CA)


def answer_due(
    *,
    jurisdiction: str | None,
    type: str,
    received: datetime,
    verified: datetime | None,
    extension_months: int | None = None,
    extension_days: int | None = None,
) -> datetime | None:
    """The request's due date, extension included; None while a request that
    needs confirming is unconfirmed under GDPR (its month starts then)."""
    if type in NO_VERIFICATION:
        return add_business_days(received, OPT_OUT_BUSINESS_DAYS, _calendar_key(jurisdiction))
    if law(jurisdiction) == CCPA:
        return received + timedelta(days=CCPA_ANSWER_DAYS + (extension_days or 0))
    if verified is None:
        return None
    due = add_months(verified, GDPR_ANSWER_MONTHS + (extension_months or 0))
    return next_business_day(due, _calendar_key(jurisdiction))


def check_extension(
    *,
    jurisdiction: str | None,
    type: str,
    received: datetime,
    verified: datetime | None,
    months: int | None,
    already_extended: bool,
    now: datetime,
) -> tuple[int | None, int | None]:
    """Whether the law allows this extension now: (extension_months, extension_days)
    to record, or Invalid (what to fix) / Conflict (why not at all)."""
    if type in NO_VERIFICATION:
        raise Conflict("An opt-out or a limit on sensitive data is applied within 15 business days; it cannot be extended.")
    ccpa = law(jurisdiction) == CCPA
    if ccpa and months is not None:
        raise Invalid("A CCPA request is extended by 45 days.", errors={"months": ["leave out for a US-CA request: it extends by 45 days"]})
    if not ccpa and months not in GDPR_EXTENSION_MONTHS:
        raise Invalid("The extension is not valid.", errors={"months": ["extend by 1 or 2 months"]})
    if already_extended:
        raise Conflict("This request was extended already; the law allows it once.")
    first_due = answer_due(jurisdiction=jurisdiction, type=type, received=received, verified=verified)
    if first_due is None:
        raise Conflict("Only a confirmed request can be extended.")
    if now > first_due:
        period = "45 days" if ccpa else "month"
        raise Conflict(
            f"The notice of an extension must go within the first {period}, which ended on {first_due:%-d %B %Y}; it is too late to extend."
        )
    return (None, CCPA_EXTENSION_DAYS) if ccpa else (months, None)


def ask_again_after(opted_out_at: datetime) -> datetime:
    """The earliest moment to ask a person who opted out of sale/sharing to opt back in."""
    return add_months(opted_out_at, ASK_AGAIN_AFTER_MONTHS)
