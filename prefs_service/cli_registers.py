"""`prefs registers`: import the national do-not-contact registers' files, and see their state."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click
from flask.cli import AppGroup

from .cli_common import CLI_ACTOR, fail, require_migrated
from .errors import DomainError
from .extensions import db
from .registers import REGISTERS, loader, status


@click.group("registers", cls=AppGroup)  # each command runs in the app context
def registers_cli():
    """National do-not-contact registers (TPS, CTPS, FPS, MPS, DNC)."""


def _list_date(_ctx, _param, value: str):
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise click.BadParameter("expected YYYY-MM-DD") from None


@registers_cli.command("import")
@click.argument("register", type=click.Choice(sorted(REGISTERS)))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--list-date", required=True, callback=_list_date, help="The date the register published the file (YYYY-MM-DD).")
@click.option("--delta", is_flag=True, help="Add the file's lines to the current list and take away those marked as removals.")
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the rejected lines, numbered (default: FILE.rejected.txt beside the file).",
)
def registers_import(register, file: Path, list_date, delta, report: Path | None):
    """Import a register's FILE: a full list replaces the register's contents
    at once; --delta adds and removes. Bad lines are reported, never fatal."""
    require_migrated()
    report = report or file.with_name(file.name + ".rejected.txt")
    size = file.stat().st_size
    with report.open("w", encoding="utf-8") as out, click.progressbar(length=size, label=f"Importing {register}", file=sys.stderr) as bar:
        try:
            summary = loader.import_file(
                register=register, path=file, list_date=list_date, delta=delta, imported_by=CLI_ACTOR, report=out, progress=bar.update
            )
        except loader.ImportFailed as exc:
            summary = exc.summary
            click.echo(f"prefs: {exc.message}", err=True)
            click.echo(f"  {summary.accepted} lines accepted, {summary.rejected} rejected; list {summary.list_id} marked failed.", err=True)
            _keep_report(report, summary.rejected)
            sys.exit(1)
        except DomainError as exc:
            db.session.rollback()
            fail(exc)
    _keep_report(report, summary.rejected)
    kind = "delta" if delta else "full list"
    line = f"Imported {register} {kind} of {list_date:%Y-%m-%d} (list {summary.list_id}): {summary.accepted} lines accepted, {summary.rejected} rejected"
    if delta:
        line += f", {summary.removed} entries removed"
    click.echo(f"{line}; {summary.seconds:.1f}s.")
    if summary.rejected:
        click.echo(f"Rejected lines, numbered: {report}")


def _keep_report(report: Path, rejected: int) -> None:
    if not rejected:
        report.unlink(missing_ok=True)


@registers_cli.command("list")
def registers_list():
    """Each register: its current list's date, entries and age, and its latest import."""
    for state in status.states():
        if state.list_date is None:
            current = "no list imported"
        else:
            rule = f" (rule: {state.stale_after_days})" if state.stale_after_days else ""
            current = f"list of {state.list_date:%Y-%m-%d}, {state.entries} entries, {state.age_days} days old{rule}"
        latest = f"; latest import {state.last_import_status}" if state.last_import_status else ""
        click.echo(f"{state.register:<5} {current}{latest}")
