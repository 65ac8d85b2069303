"""`prefs jobs`: failed and retrying jobs, and retrying or cancelling one."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from . import job_queue
from .cli_common import CLI_ACTOR, fail
from .errors import DomainError
from .extensions import db


@click.group("jobs", cls=AppGroup)  # each command runs in the app context
def jobs_cli():
    """Durable jobs that failed or wait to retry."""


@jobs_cli.command("list")
@click.option("--status", "states", multiple=True, type=click.Choice(job_queue.STATES), help="Repeat for both (the default).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, job_queue.MAX_PAGE))
def jobs_list(states, limit):
    """Failed and retrying jobs, newest first: id, state, kind, attempts, next run, request, last error."""
    items, more = job_queue.list_jobs(states=tuple(states) or job_queue.STATES, limit=limit)
    for job in items:
        next_run = f"{job.next_run_at:%Y-%m-%d %H:%M:%S}" if job.next_run_at else "-"
        request = job.request_reference or (f"request {job.request_id}" if job.request_id else "-")
        click.echo(f"{job.id}\t{job.state}\t{job.kind}\t{job.attempts}/{job.max_attempts}\t{next_run}\t{request}\t{job.last_error or '-'}")
    if not items:
        click.echo("No job is failing.", err=True)
    elif more:
        click.echo(f"(more: raise --limit above {limit})", err=True)


@jobs_cli.command("retry")
@click.argument("job_id", type=click.IntRange(1))
def jobs_retry(job_id):
    """Queue a failed job again, with three more attempts."""
    try:
        job = job_queue.retry(job_id=job_id, actor=CLI_ACTOR)
    except DomainError as exc:
        fail(exc)
    db.session.commit()
    click.echo(f"Job {job.id} ({job.kind}) is queued again: {job.attempts} of {job.max_attempts} attempts used.")


@jobs_cli.command("cancel")
@click.argument("job_id", type=click.IntRange(1))
def jobs_cancel(job_id):
    """Stop a failed or queued job for good."""
    try:
        job = job_queue.cancel(job_id=job_id, actor=CLI_ACTOR)
    except DomainError as exc:
        fail(exc)
    db.session.commit()
    click.echo(f"Job {job.id} ({job.kind}) is cancelled.")
