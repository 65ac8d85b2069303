"""Every kind of job a domain can defer has exactly one handler to run it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from prefs_service import outbox
from prefs_service.extensions import db
from prefs_service.job_kinds import JobKind
from prefs_service.jobs.dispatch import HANDLERS, PERIODIC
from prefs_service.outbox import Job


def test_every_kind_has_a_handler_and_every_handler_a_kind(app):
    assert set(HANDLERS) == set(JobKind)
    assert all(isinstance(kind, JobKind) for kind in HANDLERS)


def test_every_periodic_job_is_a_kind_with_a_handler(app):
    assert PERIODIC
    for periodic in PERIODIC:
        assert periodic.kind in HANDLERS, periodic.name


@pytest.mark.parametrize("defer", [lambda kind: outbox.defer(kind, {}), lambda kind: outbox.defer_once(kind, {}, dedupe_key="x")])
def test_a_kind_nobody_handles_is_refused_before_anything_is_written(app, defer):
    with app.app_context():
        with pytest.raises(ValueError, match=r"orders\.no_such_kind"):
            defer("orders.no_such_kind")
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Job)) == 0
        db.session.rollback()
