"""The families read from the database when /metrics is scraped. One copy,
whichever worker answers: they are never written to multiprocess files.

Each is one small statement: jobs are counted per kind and state (done jobs
are pruned, see jobs/maintenance.py); the queue age and overdue requests use
the (status, run_after) and (status, due_at) indexes; escalations the
(resolved_at, kind) index. The oldest pending notice uses the (status, created_at)
index (migration 0008).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .. import outbox
from ..clock import utcnow
from ..extensions import db
from ..job_kinds import JobKind
from ..notices import service as notices
from ..orders import watchdog
from ..outbox import Job
from ..registers import status as register_status
from ..rights import queue as request_queue
from . import families


class DatabaseCollector(Collector):
    """Collects in the app context of the /metrics request."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = utcnow()
        yield _jobs()
        yield _age(families.OLDEST_QUEUED_JOB_AGE, _oldest_due_job(now), now)
        yield _age(families.OLDEST_UNSENT_NOTICE_AGE, notices.oldest_unsent_at(), now)
        yield _overdue_requests(now)
        yield _open_escalations()
        yield from _registers(now)


def _jobs() -> GaugeMetricFamily:
    counts = {(kind.value, status): 0 for kind in JobKind for status in outbox.STATUSES}
    for kind, status, count in db.session.execute(sa.select(Job.kind, Job.status, sa.func.count()).group_by(Job.kind, Job.status)):
        counts[(kind, status)] = count
    family = GaugeMetricFamily(*families.JOBS, labels=["kind", "state"])
    for (kind, status), count in sorted(counts.items()):
        family.add_metric([kind, status], count)
    return family


def _oldest_due_job(now: datetime) -> datetime | None:
    return db.session.scalar(sa.select(sa.func.min(Job.run_after)).where(Job.status == outbox.QUEUED, Job.run_after <= now))


def _age(definition: tuple[str, str], oldest: datetime | None, now: datetime) -> GaugeMetricFamily:
    age = 0.0 if oldest is None else max(0.0, (now - _aware(oldest)).total_seconds())
    return GaugeMetricFamily(*definition, value=age)


def _overdue_requests(now: datetime) -> GaugeMetricFamily:
    return GaugeMetricFamily(*families.OVERDUE_REQUESTS, value=request_queue.deadline_counts(now=now, soon=timedelta(0))["overdue"])


def _open_escalations() -> GaugeMetricFamily:
    counts = watchdog.open_escalation_counts()
    family = GaugeMetricFamily(*families.OPEN_ESCALATIONS, labels=["kind"])
    for kind, count in sorted(counts.items()):
        family.add_metric([kind], count)
    return family


def _registers(now: datetime) -> Iterator[GaugeMetricFamily]:
    """Only registers ever imported: one never imported is not consulted."""
    listed_on = GaugeMetricFamily(*families.REGISTER_LIST_DATE, labels=["register"])
    age = GaugeMetricFamily(*families.REGISTER_LIST_AGE, labels=["register"])
    days = GaugeMetricFamily(*families.REGISTER_LIST_AGE_DAYS, labels=["register"])
    entries = GaugeMetricFamily(*families.REGISTER_ENTRIES, labels=["register"])
    stale = GaugeMetricFamily(*families.REGISTER_STALE, labels=["register"])
    for state in register_status.states(today=now.date()):
        seconds = state.age_seconds(now)
        if seconds is None or state.age_days is None or state.list_date is None:
            continue
        start = datetime(state.list_date.year, state.list_date.month, state.list_date.day, tzinfo=UTC)
        listed_on.add_metric([state.register], start.timestamp())
        age.add_metric([state.register], seconds)
        days.add_metric([state.register], state.age_days)
        entries.add_metric([state.register], state.entries)
        stale.add_metric([state.register], 1 if state.stale else 0)
    yield from (listed_on, age, days, entries, stale)


def _aware(moment: datetime) -> datetime:
    """An aggregate's type is its column's, so UTC-aware; naive would be UTC too."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
