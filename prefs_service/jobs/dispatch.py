"""Running durable jobs: send after commit, claim atomically, retry, sweep.

A job row (see outbox.py) is the truth; a broker message only says "look at
row N". So a message may be lost (the sweeper re-sends), duplicated (the claim
lets one through) or delivered to a worker that dies (its lease expires and
another worker takes over; the dead one's work was never committed).
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import dramatiq
import sqlalchemy as sa
from flask import Flask, current_app
from flask_sqlalchemy.session import Session

from .. import job_queue, outbox
from ..clock import utcnow
from ..db import scopes
from ..db.backend import affected_rows, backend
from ..errors import DomainError
from ..extensions import db
from ..job_kinds import JobKind
from ..outbox import DONE, FAILED, QUEUED, RUNNING, Job
from ..redact import describe_exception
from . import broker as brokers

log = logging.getLogger(__name__)

QUEUE_NAME = "prefs"
ACTOR_NAME = "prefs_run_job"
SWEEP_BATCH = 500


@dataclass(frozen=True)
class Handler:
    kind: JobKind
    fn: Callable[[dict], object]
    lease: timedelta | None
    on_failure: Callable[[dict], object] | None = None
    prepare: Callable[[dict], object] | None = None


HANDLERS: dict[str, Handler] = {}


def handler(
    kind: JobKind,
    *,
    lease: timedelta | None = None,
    on_failure: Callable[[dict], object] | None = None,
    prepare: Callable[[dict], object] | None = None,
):
    """Register `fn(payload)` as the work for jobs of `kind`. It must be idempotent
    in effect and must not commit: the runner commits its work and the job's
    completion together. `lease` overrides PREFS_JOB_LEASE_SECONDS for long work;
    `on_failure(payload)` runs (and is committed) when the job gives up for good.
    A DomainError (the input breaks a rule) fails the job at once: retrying
    would not change the answer.

    Long work that only reads (an export) goes in `prepare(payload)`, run in a
    read transaction that takes no write lock; `fn(payload, prepared)` then
    records the outcome in a short write transaction."""

    def register(fn):
        if kind in HANDLERS:
            raise RuntimeError(f"a second handler for job kind {kind!r}")
        HANDLERS[kind] = Handler(kind, fn, lease, on_failure, prepare)
        return fn

    return register


@dataclass(frozen=True)
class Periodic:
    name: str
    kind: JobKind
    every: timedelta


PERIODIC: list[Periodic] = []


def every(interval: timedelta, *, name: str, kind: JobKind) -> None:
    """Schedule `kind` once per `interval`, however many sweepers run."""
    PERIODIC.append(Periodic(name, kind, interval))


def backoff(attempts: int) -> timedelta:
    seconds = min(5 * 2 ** (attempts - 1), 3600)
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not a secret


def describe_error(exc: BaseException) -> str:
    """A short error for the job row and the log: the class, a scrubbed message
    naming the folder or host involved (never personal data), and where it happened."""
    return describe_exception(exc)


class JobSystem:
    """The broker, the one actor, and the sweeper for one app."""

    def __init__(self, app: Flask, broker: dramatiq.Broker):
        self.app = app
        self.broker = broker
        settings = app.config["PREFS"]
        self.resend_after = timedelta(seconds=settings.job_resend_after_seconds)
        self.sweep_interval = settings.sweep_interval_seconds
        self.default_lease = timedelta(seconds=settings.job_lease_seconds)
        self.actor = dramatiq.actor(
            broker=broker,
            actor_name=ACTOR_NAME,
            queue_name=QUEUE_NAME,
            max_retries=0,  # retries are ours, recorded on the row
            time_limit=24 * 3600 * 1000,
            max_age=None,
        )(self._run)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.worker: dramatiq.Worker | None = None

    # --- sending ---------------------------------------------------------
    def send(self, job_ids, *, delay: timedelta | None = None) -> None:
        """Tell the broker about jobs; a failure is logged and left to the sweeper."""
        for job_id in job_ids:
            try:
                self.actor.send_with_options(args=(job_id,), delay=int(delay.total_seconds() * 1000) if delay else None)
            except Exception as exc:  # noqa: BLE001 - broker down: the row is safe, the sweeper re-sends
                log.warning("broker unavailable, job %s left for the sweeper: %s", job_id, describe_error(exc))
                return

    # --- running ---------------------------------------------------------
    def _run(self, job_id: int) -> None:
        with self.app.app_context():
            self.execute(job_id)

    def execute(self, job_id: int) -> str | None:
        """Claim and run one job; returns its new status, or None if it was not ours to run."""
        job = self._claim(job_id)
        if job is None:
            return None
        token = job.claim_token
        assert token is not None  # set by the claim
        spec = HANDLERS.get(job.kind)
        try:
            if spec is None:
                raise LookupError(f"no handler for job kind {job.kind!r}")
            prepared: tuple[object, ...] = ()
            if spec.prepare is not None:
                with scopes.read_only(), outbox.renewing_with(self._renewer(job)):
                    prepared = (spec.prepare(dict(job.payload)),)
                    db.session.rollback()
            with scopes.writing():
                spec.fn(dict(job.payload), *prepared)
                now = utcnow()
                finished = affected_rows(
                    sa.update(Job)
                    .where(Job.id == job_id, Job.claim_token == token, Job.status == RUNNING)
                    .values(status=DONE, finished_at=now, updated_at=now, lease_expires_at=None, last_error=None),
                    synchronize_session=False,
                )
                if not finished:
                    # Our lease ran out and another worker took the job: its run counts, ours must not.
                    db.session.rollback()
                    log.warning("job %s (%s) lost its lease; work rolled back", job_id, job.kind)
                    return None
                db.session.commit()
            log.info("job %s (%s) done after %s attempt(s)", job_id, job.kind, job.attempts)
            return DONE
        except Exception as exc:  # noqa: BLE001 - any failure of the work is recorded on the job and retried
            db.session.rollback()
            with scopes.writing():
                return self._record_failure(job, token, exc)

    def _renewer(self, job: Job):
        """Extends the lease of `job` (while our claim holds) at most every third
        of a lease, on a connection of its own. Only long read-only work calls
        it: on SQLite a write transaction of ours would hold the lock it needs."""
        spec = HANDLERS.get(job.kind)
        lease = (spec.lease if spec else None) or self.default_lease
        last = [time.monotonic()]

        def renew() -> None:
            if time.monotonic() - last[0] < lease.total_seconds() / 3:
                return
            if backend().serialises_writers and scopes.current() is not scopes.READ:
                return  # our own write transaction would hold the lock this needs
            with db.engine.begin() as conn:
                conn.execute(
                    sa.update(Job)
                    .where(Job.id == job.id, Job.claim_token == job.claim_token, Job.status == RUNNING)
                    .values(lease_expires_at=utcnow() + lease)
                )
            last[0] = time.monotonic()

        return renew

    def _claim(self, job_id: int) -> Job | None:
        now = utcnow()
        # Most messages for a job that is not ours to run are duplicates (the
        # sweeper re-sent it); find that out in a read, which on SQLite takes
        # no write lock, before trying the claim.
        with scopes.read_only():
            row = db.session.execute(sa.select(Job.kind, Job.status, Job.run_after, Job.lease_expires_at).where(Job.id == job_id)).first()
            db.session.rollback()
        if row is None or not _claimable(row, now):
            return None
        spec = HANDLERS.get(row.kind)
        lease = (spec.lease if spec else None) or self.default_lease
        token = secrets.token_hex(16)
        with scopes.writing():
            return self._claim_row(job_id, token, lease, now)

    def _claim_row(self, job_id: int, token: str, lease: timedelta, now) -> Job | None:
        claimed = affected_rows(
            sa.update(Job)
            .where(
                Job.id == job_id,
                sa.or_(
                    sa.and_(Job.status == QUEUED, Job.run_after <= now),
                    sa.and_(Job.status == RUNNING, Job.lease_expires_at < now),
                ),
            )
            .values(
                status=RUNNING,
                attempts=Job.attempts + 1,
                claim_token=token,
                lease_expires_at=now + lease,
                updated_at=now,
            ),
            synchronize_session=False,
        )
        # Load the row inside the claiming transaction: reading it after the
        # commit would open a new (write-intent) transaction the work then sits in.
        job = db.session.get(Job, job_id, populate_existing=True) if claimed else None
        db.session.commit()
        return job

    def _record_failure(self, job: Job, token: str, exc: Exception) -> str | None:
        error = describe_error(exc)
        log.error("job %s (%s) attempt %s of %s failed: %s", job.id, job.kind, job.attempts, job.max_attempts, error)
        now = utcnow()
        final = job.attempts >= job.max_attempts or isinstance(exc, DomainError)
        run_after = now + backoff(job.attempts)
        updated = affected_rows(
            sa.update(Job)
            .where(Job.id == job.id, Job.claim_token == token)
            .values(
                status=FAILED if final else QUEUED,
                run_after=run_after,
                dispatched_at=run_after,
                lease_expires_at=None,
                last_error=error,
                updated_at=now,
                finished_at=now if final else None,
            ),
            synchronize_session=False,
        )
        spec = HANDLERS.get(job.kind)
        if updated and final:
            if spec and spec.on_failure:
                spec.on_failure(dict(job.payload))
            job_queue.tell_staff_of_failure(job_id=job.id)  # once per job: the mails' keys name it
        db.session.commit()
        if not updated:
            return None
        if not final:
            self.send([job.id], delay=run_after - now)
        return FAILED if final else QUEUED

    # --- sweeping --------------------------------------------------------
    def sweep(self) -> list[int]:
        """Re-send jobs whose message was lost or whose worker died, and queue
        due periodic jobs. Safe to run in every process at once."""
        waiting = self._waiting()  # before any statement: SQLite's write lock is not held over network calls
        now = utcnow()
        for periodic in PERIODIC:
            slot = int(now.timestamp() // periodic.every.total_seconds())
            outbox.defer_once(periodic.kind, {"slot": slot}, dedupe_key=f"{periodic.name}:{slot}")
        abandoned = sa.and_(Job.status == RUNNING, Job.lease_expires_at < now)
        ids = list(db.session.scalars(sa.select(Job.id).where(abandoned).order_by(Job.id).limit(SWEEP_BATCH)))
        room = min(SWEEP_BATCH - len(ids), self._messages_missing(waiting, now))
        if room > 0:
            stale = sa.and_(
                Job.status == QUEUED,
                Job.run_after <= now,
                sa.or_(Job.dispatched_at.is_(None), Job.dispatched_at <= now - self.resend_after),
            )
            # Longest without a message first: repeated shortfalls go through every candidate.
            order = (Job.dispatched_at.asc().nulls_first(), Job.id)
            ids += db.session.scalars(sa.select(Job.id).where(stale).order_by(*order).limit(room))
        if ids:
            db.session.execute(
                sa.update(Job).where(Job.id.in_(ids)).values(dispatched_at=now),
                execution_options={"synchronize_session": False},
            )
        db.session.commit()  # the after-commit hook sends the periodic jobs just queued
        if ids:
            log.info("sweeper re-sending %d job(s)", len(ids))
            self.send(ids)
        return ids

    def _waiting(self) -> int | None:
        try:
            return brokers.waiting(self.broker, QUEUE_NAME)
        except Exception as exc:  # noqa: BLE001 - broker down: what it held is unknown
            log.warning("cannot count the broker's messages: %s", describe_error(exc))
            return None

    def _messages_missing(self, waiting: int | None, now) -> int:
        """How many due jobs the broker holds no message for, at most.

        A backlog longer than PREFS_JOB_RESEND_AFTER_SECONDS is not lost: re-sending
        it would only pile duplicates (each a claim to refuse) in front of the
        work. So queued jobs are re-sent only while fewer messages wait than
        jobs are due, e.g. all of them after the broker lost its messages.
        Messages are counted before jobs, so a race errs towards re-sending."""
        if waiting is None:
            return SWEEP_BATCH
        due = db.session.scalar(sa.select(sa.func.count()).select_from(Job).where(Job.status == QUEUED, Job.run_after <= now)) or 0
        return max(due - waiting, 0)

    # --- in-process workers ------------------------------------------------
    def start(self, *, threads: int, sweep: bool = True) -> None:
        """Start a dramatiq worker (and the sweeper) in this process."""
        self._stop.clear()
        self.worker = dramatiq.Worker(self.broker, queues={QUEUE_NAME}, worker_threads=threads, worker_timeout=100)
        self.worker.start()
        if sweep:
            thread = threading.Thread(target=self._sweep_forever, name="prefs-sweeper", daemon=True)
            thread.start()
            self._threads.append(thread)
            from .ledger import sequence_forever  # the log's sequencer runs beside the sweeper

            sequencer = threading.Thread(target=sequence_forever, args=(self.app, self._stop), name="prefs-ledger", daemon=True)
            sequencer.start()
            self._threads.append(sequencer)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        if self.worker is not None:
            self.worker.stop()
            self.worker = None

    def _sweep_forever(self) -> None:
        while not self._stop.wait(self.sweep_interval):
            try:
                with self.app.app_context(), scopes.writing():
                    self.sweep()
            except Exception as exc:  # noqa: BLE001 - keep sweeping through a database or broker outage
                log.warning("sweep failed: %s", describe_error(exc))

    def ping(self) -> None:
        brokers.ping(self.broker)


def _claimable(row, now) -> bool:
    """The claim's own condition (see _claim), for a row read beforehand."""
    if row.status == QUEUED:
        return row.run_after <= now
    return row.status == RUNNING and row.lease_expires_at is not None and row.lease_expires_at < now


def jobs() -> JobSystem:
    return current_app.extensions["prefs.jobs"]


def _send_after_commit(session):
    job_ids = session.info.pop(outbox.PENDING_KEY, None)
    if job_ids:
        current_app.extensions["prefs.jobs"].send(job_ids)


def _forget_after_rollback(session):
    session.info.pop(outbox.PENDING_KEY, None)


def init_app(app: Flask) -> JobSystem:
    from . import ledger, maintenance, notices, orders, rights  # noqa: F401 - each registers the handlers of its job kinds

    # Jobs written in a transaction go to the broker once it commits. Sessions
    # are shared by every app: listen once.
    for name, listener in (("after_commit", _send_after_commit), ("after_rollback", _forget_after_rollback)):
        if not sa.event.contains(Session, name, listener):
            sa.event.listen(Session, name, listener)
    system = JobSystem(app, brokers.create_broker(app.config["PREFS"].broker_url))
    app.extensions["prefs.jobs"] = system
    return system
