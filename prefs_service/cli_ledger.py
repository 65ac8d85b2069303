"""`prefs ledger verify`: recompute the transparency log and check it."""

from __future__ import annotations

import sys
import time

import click
from flask.cli import with_appcontext

from .cli_common import require_migrated
from .ledger import verify as verifying


@click.group("ledger")
def ledger_cli():
    """The transparency log over the consent ledger."""


@ledger_cli.command("verify")
@with_appcontext
def verify():
    """Recompute every leaf and node from the database and check every checkpoint.
    Exit 0 when intact; 1 naming the first event, node or checkpoint that fails."""
    require_migrated()
    started = time.monotonic()

    def progress(done: int) -> None:
        click.echo(f"... {done} leaves checked ({done / max(time.monotonic() - started, 1e-9):,.0f}/s)", err=True)

    outcome = verifying.verify(progress)
    elapsed = time.monotonic() - started
    if not outcome.intact:
        click.echo(f"ledger verify: FAILED after {outcome.leaves} leaves: {outcome.problem}", err=True)
        sys.exit(1)
    click.echo(
        f"ledger verify: intact. {outcome.leaves} leaves, {outcome.checkpoints} checkpoints "
        f"(keys: {', '.join(sorted(outcome.keys)) or 'none'}), {outcome.redacted} events redacted by erasure, "
        f"{outcome.pending} rows waiting for the sequencer; {elapsed:.1f} s"
    )
