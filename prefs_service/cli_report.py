"""`prefs report`: figures the service publishes, printed to standard output."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from .db.scopes import read_only
from .rights import report as request_metrics


@click.group("report", cls=AppGroup)  # each command runs in the app context
def report_cli():
    """Reports printed to standard output."""


@report_cli.command("requests")
@click.option("--year", required=True, type=click.IntRange(request_metrics.MIN_YEAR, request_metrics.MAX_YEAR), help="Calendar year (UTC).")
@click.option("--format", "format_", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
def report_requests(year: int, format_: str):
    """Rights requests received in YEAR, per type: complied with in whole or in part,
    denied, not answered by the year's end, and the median and mean days to answer
    (CCPA §7102). The README says how each status is counted."""
    with read_only():
        figures = request_metrics.request_report(year=year)
    if format_ == "json":
        click.echo(json.dumps(figures.as_dict(), indent=2))
    else:
        click.echo(figures.as_csv(), nl=False)
