"""The `prefs` command: serve, worker, db, api-key, jobs, import, policy."""

from __future__ import annotations

import csv
import gc
import os
import signal
import sys
import tempfile
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import FlaskGroup, ScriptInfo, with_appcontext
from flask_migrate import cli as flask_migrate_cli

from . import consent, create_app, metrics
from .access import service as access
from .access.models import SCOPES
from .cli_common import CLI_ACTOR, NOT_MIGRATED, database_is_current, fail, require_migrated
from .cli_jobs import jobs_cli
from .cli_ledger import ledger_cli
from .cli_receipts import verify_receipt
from .cli_registers import registers_cli
from .cli_report import report_cli
from .cli_screen import screen
from .cli_screening import screening_cli
from .cli_staff import staff_cli
from .clock import utcnow
from .config import ConfigError, served_base_url
from .db import migrations
from .errors import DomainError
from .extensions import db
from .jobs.dispatch import jobs
from .subjects.refs import WRITE_KEYS


def _create_app():
    try:
        app = create_app()
    except ConfigError as exc:
        click.echo(f"prefs: configuration error: {exc}", err=True)
        sys.exit(2)
    migrations.register(app)  # the `db` commands and the migrated-database check
    return app


# --- the database: migrated before use, and never without a policy version ----------------

# The initial policy stands for whatever people were told before versions were
# recorded, so it is in force from the start of time: no event is stamped null.
INITIAL_POLICY_EFFECTIVE_AT = datetime(1970, 1, 1, tzinfo=UTC)


def _publish_initial_policy() -> None:
    if consent.list_policies():
        return
    version = current_app.config["PREFS"].initial_policy_version
    try:
        consent.publish_policy(version=version, last_updated=utcnow().date(), effective_at=INITIAL_POLICY_EFFECTIVE_AT, actor=CLI_ACTOR)
        db.session.commit()
    except sa.exc.IntegrityError:  # another `db upgrade` published it at the same moment
        db.session.rollback()
        return
    click.echo(
        f"Published the initial privacy-policy version {version!r}. "
        "Publish yours with: prefs policy publish VERSION --last-updated YYYY-MM-DD --url URL"
    )


_flask_migrate_upgrade = flask_migrate_cli.db.commands["upgrade"]


@click.pass_context
def _upgrade(ctx: click.Context, **options: Any) -> None:
    ctx.invoke(cast(Any, _flask_migrate_upgrade.callback), **options)
    if not options.get("sql") and database_is_current():  # not for --sql (it only prints) nor a partial upgrade
        _publish_initial_policy()


@with_appcontext
def _database_group(**options: Any) -> None:
    migrations.register(current_app)  # an app built elsewhere (a test's, a script's) may not have it yet
    cast(Any, flask_migrate_cli.db.callback)(**options)


# Flask-Migrate's `db` commands, with `upgrade` also publishing the first policy version.
database_commands = click.Group("db", callback=_database_group, params=flask_migrate_cli.db.params, help=flask_migrate_cli.db.help)
for _name, _command in flask_migrate_cli.db.commands.items():
    database_commands.add_command(_command, _name)
database_commands.add_command(
    click.Command(
        "upgrade",
        callback=with_appcontext(_upgrade),
        params=_flask_migrate_upgrade.params,
        help="Upgrade to a later version; a database without a privacy-policy version then gets the initial one.",
    )
)


class PrefsGroup(FlaskGroup):
    """The `prefs` group: our `db`, and one line instead of a traceback when a
    command meets a database that was never migrated (or is behind)."""

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name == "db":
            return database_commands  # before Flask's plugin loading, which registers Flask-Migrate's own
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except sa.exc.DBAPIError:
            app = ctx.ensure_object(ScriptInfo).load_app()
            with app.app_context():
                try:
                    current = database_is_current()
                except sa.exc.DBAPIError:
                    current = True  # the database is unreachable: the first error says more
            if current:
                raise
            click.echo(NOT_MIGRATED, err=True)
            sys.exit(2)


@click.group(cls=PrefsGroup, create_app=_create_app, add_default_commands=False, add_version_option=False)
def main():
    """prefs_service: consent, unsubscribe links and data-subject rights.

    Settings come from PREFS_* environment variables (see README)."""


# --- serve and worker ------------------------------------------------------------------


@main.command(with_appcontext=False)  # the metrics' mode is settled before the app is built
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256), help="Request threads per process.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Processes; needs PREFS_BROKER_URL.")
def serve(host, port, threads, workers):
    """Serve HTTP. Without PREFS_BROKER_URL it also runs the jobs in this process."""
    made_here = _multiprocess_metrics(workers)
    app = click.get_current_context().ensure_object(ScriptInfo).load_app()
    try:
        with app.app_context():
            _serve(app, host, port, threads, workers)
    finally:
        if made_here is not None:
            metrics.remove_multiprocess_directory(made_here)


def _multiprocess_metrics(workers: int) -> Path | None:
    """Several workers count into files that a scrape sums: in
    PROMETHEUS_MULTIPROC_DIR if set, else in a temporary folder made here
    (returned, to be removed at exit). Settled before prometheus_client is
    first imported, as it chooses its mode then; emptied, as a previous run's
    counts would add up."""
    given = os.environ.get(metrics.MULTIPROC_ENV)
    if not given and workers == 1:
        return None
    path = Path(given) if given else Path(tempfile.mkdtemp(prefix="prefs-metrics-"))
    metrics.prepare_multiprocess_directory(path)
    return None if given else path


def _serve(app, host: str, port: int, threads: int, workers: int) -> None:
    from gunicorn.app.base import BaseApplication

    settings = app.config["PREFS"]
    embedded = not settings.broker_url
    if embedded and workers > 1:
        raise click.UsageError("--workers > 1 needs PREFS_BROKER_URL: the embedded broker lives in one process.")
    require_migrated()
    links_to = served_base_url(host, port)
    if links_to is not None:  # PREFS_BASE_URL unset: mint links for the address served
        settings = replace(settings, base_url=links_to)
        app.config["PREFS"] = settings

    def post_fork(server, worker):
        db.engine.dispose(close=False)  # never share a connection with the parent

    def post_worker_init(worker):
        gc.freeze()  # the app built at start, out of the collector's full passes (as wsgi.py)
        if embedded:
            jobs().start(threads=settings.worker_threads)

    def worker_exit(server, worker):
        if embedded:
            jobs().stop()
        metrics.mark_process_dead(worker.pid)

    class Server(BaseApplication):
        def load_config(self):
            for key, value in {
                "bind": f"{host}:{port}",
                "workers": workers,
                "worker_class": "gthread",
                "threads": threads,
                "post_fork": post_fork,
                "post_worker_init": post_worker_init,
                "worker_exit": worker_exit,
                "accesslog": None,  # URLs carry signed tokens; never log them
                "logger_class": "prefs_service.gunicorn_logger.JsonLogger",  # its lines scrubbed, as JSON
                "loglevel": settings.log_level.lower(),
                "graceful_timeout": 30,
                "control_socket_disable": True,  # gunicorn ≥ 27 would open one under $HOME
            }.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self):
            return app

    mode = "with an in-process worker" if embedded else "(run `prefs worker` for jobs)"
    click.echo(f"prefs: serving on http://{host}:{port} {mode}; links in mail use {settings.base_url}", err=True)
    click.echo(f"prefs: data folder {settings.var_dir} (PREFS_VAR_DIR)", err=True)
    Server().run()


@main.command()
@click.option("--threads", type=click.IntRange(1, 256), help="Job threads (default PREFS_WORKER_THREADS).")
def worker(threads):
    """Run background jobs until SIGTERM or Ctrl-C.

    With PREFS_BROKER_URL it consumes the broker; without, it polls the database."""
    settings = current_app.config["PREFS"]
    require_migrated()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    system = jobs()
    system.start(threads=threads or settings.worker_threads)
    click.echo(f"prefs: worker running ({'broker' if settings.broker_url else 'polling the database'})", err=True)
    stop.wait()
    click.echo("prefs: worker stopping after the jobs in hand", err=True)
    system.stop()


# --- API keys ----------------------------------------------------------------------------


@main.group("api-key")
def api_key():
    """Create, list and revoke API keys."""


@api_key.command("create")
@click.option("--name", required=True, help="Which system uses the key.")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(SCOPES), help="Repeat for several.")
def api_key_create(name, scopes):
    """Create a key. It is printed once, alone on the last line."""
    try:
        key, plaintext = access.create_key(name=name, scopes=list(scopes), actor=CLI_ACTOR)
    except DomainError as exc:
        fail(exc)
    db.session.commit()
    click.echo(f"Created API key {key.prefix} ({key.name}) with scopes: {', '.join(key.scopes)}. Store it now; it is not shown again.")
    click.echo(plaintext)


@api_key.command("list")
def api_key_list():
    """Every key with its scopes; never the secret."""
    for key in access.list_keys():
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        used = f"{key.last_used_at:%Y-%m-%d}" if key.last_used_at else "never"
        click.echo(f"{key.prefix}  {key.name:<30} {state:<18} last used {used:<10}  {' '.join(key.scopes)}")


@api_key.command("revoke")
@click.argument("prefix")
def api_key_revoke(prefix):
    """Revoke the key with PREFIX (the part after pk_)."""
    try:
        key = access.revoke(prefix=prefix.removeprefix(access.KEY_PREFIX).split("_")[0], actor=CLI_ACTOR)
    except DomainError as exc:
        fail(exc)
    db.session.commit()
    click.echo(f"Revoked {key.prefix} ({key.name}).")


# --- privacy policy versions --------------------------------------------------------------


@main.group()
def policy():
    """Privacy-policy versions stamped on every consent event."""


@policy.command("publish")
@click.argument("version")
@click.option("--last-updated", required=True, type=click.DateTime(["%Y-%m-%d"]), help="The date shown to people.")
@click.option("--url", help="Where the policy text lives.")
def policy_publish(version, last_updated, url):
    """Publish VERSION, in force from now."""
    try:
        consent.publish_policy(version=version, last_updated=last_updated.date(), url=url, actor=CLI_ACTOR)
    except DomainError as exc:
        fail(exc)
    db.session.commit()
    click.echo(f"Published policy {version} (last updated {last_updated:%d %B %Y}).")


@policy.command("list")
def policy_list():
    """Every version, newest first."""
    for item in consent.list_policies():
        click.echo(f"{item.version:<20} last updated {item.last_updated:%Y-%m-%d}  in force from {item.effective_at:%Y-%m-%d %H:%M}Z")


# --- import --------------------------------------------------------------------------------

EVENT_COLUMNS = ("channel", "purpose", "status", "policy_version")
IMPORT_COLUMNS = (*WRITE_KEYS, *EVENT_COLUMNS, "occurred_at", "source", "ip", "user_agent", "note")
IMPORT_CHUNK = 5000


@main.group("import")
def import_():
    """Bulk imports."""


@import_.command("consents")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", default="import", show_default=True, type=click.Choice(consent.API_SOURCES), help="For rows without one.")
def import_consents(path: Path, source: str):
    """Import consent events from a CSV file of any size.

    Columns (header row): one of subject_id, external_ref, email, phone, fax; then
    channel, purpose, status; optional occurred_at (ISO 8601 with zone), source,
    policy_version, ip, user_agent, note. Every row is checked first: one bad
    row and nothing is written. Then rows are recorded in chunks of 5,000.
    """
    require_migrated()
    with path.open(newline="", encoding="utf-8-sig") as handle:
        header = csv.DictReader(handle).fieldnames or []
        total = sum(1 for _ in handle)
    unknown = [c for c in header if c not in IMPORT_COLUMNS]
    if unknown or not {"channel", "purpose", "status"} <= set(header):
        raise click.UsageError(
            f"{path.name}: the header must hold channel, purpose, status and one person column; "
            f"allowed columns: {', '.join(IMPORT_COLUMNS)}" + (f"; unknown: {', '.join(unknown)}" if unknown else "")
        )

    problems: list[str] = []
    with click.progressbar(length=total, label="Checking ", file=sys.stderr) as bar:
        for first_line, items in _csv_chunks(path, source):
            try:
                consent.validate_batch(items, known_subjects=True)
            except DomainError as exc:
                for index, errors in exc.errors.items():
                    problems.append(f"line {first_line + int(index)}: {_flatten(errors)}")
            bar.update(len(items))
            if len(problems) > 100:
                break
    if problems:
        for line in problems[:100]:
            click.echo(line, err=True)
        click.echo(f"prefs: {path.name} has invalid rows (first {min(len(problems), 100)} shown); nothing was imported.", err=True)
        sys.exit(1)

    recorded, skipped = 0, []
    with click.progressbar(length=total, label="Importing", file=sys.stderr) as bar:
        for first_line, items in _csv_chunks(path, source):
            try:
                count, erased = consent.record_batch(items=items, recorded_by=f"{CLI_ACTOR}:import")
            except DomainError as exc:  # the data changed since it was checked (a subject removed meanwhile)
                db.session.rollback()
                click.echo(f"\nprefs: stopped at the chunk starting on line {first_line}: {exc.message}", err=True)
                click.echo(f"prefs: {recorded} events before line {first_line} are imported; fix the file and import the rest.", err=True)
                sys.exit(1)
            db.session.commit()
            recorded += count
            skipped += [first_line + index for index in erased]
            bar.update(len(items))
    click.echo(f"Imported {recorded} consent events from {path.name}.")
    if skipped:
        click.echo(
            f"Skipped {len(skipped)} rows for people erased at their request (lines {', '.join(map(str, skipped[:20]))}{', …' if len(skipped) > 20 else ''})."
        )


def _csv_chunks(path: Path, source: str):
    """(line number of the chunk's first row, items) in chunks of IMPORT_CHUNK rows."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        items, first_line = [], 2
        for line_number, row in enumerate(reader, start=2):
            items.append(_row_to_item(row, source))
            if len(items) == IMPORT_CHUNK:
                yield first_line, items
                items, first_line = [], line_number + 1
        if items:
            yield first_line, items


def _row_to_item(row: dict, source: str) -> dict:
    value = {k: (v.strip() if isinstance(v, str) else v) or None for k, v in row.items() if k is not None}
    item = {k: value.get(k) for k in (*WRITE_KEYS, *EVENT_COLUMNS)}
    item["source"] = value.get("source") or source
    if value.get("occurred_at"):
        try:
            item["occurred_at"] = datetime.fromisoformat(str(value["occurred_at"]))
        except ValueError:
            item["occurred_at"] = value["occurred_at"]  # refused, with a message, by validation
    item["evidence"] = {k: value.get(k) for k in ("ip", "user_agent", "note")}
    return item


def _flatten(errors) -> str:
    if isinstance(errors, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in errors.items())
    if isinstance(errors, list):
        return ", ".join(map(str, errors))
    return str(errors)


if __name__ == "__main__":
    main()


main.add_command(staff_cli)  # prefs staff create|list|disable|enable|unlock|reset-password|set-role (cli_staff.py)
main.add_command(jobs_cli)  # prefs jobs list|retry|cancel (cli_jobs.py)
main.add_command(registers_cli)  # prefs registers import|list (cli_registers.py)
main.add_command(screening_cli)  # prefs screening rebuild (cli_screening.py)
main.add_command(report_cli)  # prefs report requests (cli_report.py)
main.add_command(ledger_cli)  # prefs ledger verify (cli_ledger.py)
main.add_command(screen)  # prefs screen FILE (cli_screen.py)
ledger_cli.add_command(verify_receipt)  # prefs ledger verify-receipt (cli_receipts.py)
