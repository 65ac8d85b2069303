"""`prefs screening`: the decisions read model every check probes."""

from __future__ import annotations

import sys

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from .consent import decisions
from .extensions import db
from .subjects.models import Subject, Suppression


@click.group("screening", cls=AppGroup)  # each command runs in the app context
def screening_cli():
    """The decisions read model checks and screening read."""


@screening_cli.command("rebuild")
def screening_rebuild():
    """Compute the read model again from the ledger's current state, the
    identifiers and the suppressions, in one transaction and bounded memory.
    Writers wait for it; checks go on reading the rows it replaces."""
    people = db.session.scalar(sa.select(sa.func.count()).select_from(Subject)) or 0
    keys = db.session.scalar(sa.select(sa.func.count()).select_from(Suppression)) or 0
    with click.progressbar(length=people + keys, label="Rebuilding the decisions", file=sys.stderr) as bar:
        written = decisions.rebuild(progress=bar.update)
    db.session.commit()
    click.echo(f"Rebuilt the decisions: {written} rows for {people} people and {keys} suppressed keys.")
