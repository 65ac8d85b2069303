"""What every `prefs` command group shares: the actor name, failing in one line,
and the check that the database is migrated."""

from __future__ import annotations

import logging
import sys

import click
from flask import current_app

from .errors import DomainError
from .extensions import db

CLI_ACTOR = "cli"
NOT_MIGRATED = "prefs: the database is not up to date; run `prefs db upgrade` first."


def database_is_current() -> bool:
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from .db import migrations

    migrations.register(current_app)
    migrate = current_app.extensions["migrate"]
    head = ScriptDirectory.from_config(migrate.migrate.get_config()).get_current_head()
    migration_log = logging.getLogger("alembic.runtime.migration")
    level = migration_log.level
    migration_log.setLevel(logging.WARNING)  # its "Context impl" lines are noise before every command
    try:
        with db.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    finally:
        migration_log.setLevel(level)
        db.engine.dispose()
    return current == head


def require_migrated() -> None:
    """For commands that would start work first (a server, a worker, a long
    import, a password prompt); the others meet PrefsGroup.invoke's check."""
    if not database_is_current():
        click.echo(NOT_MIGRATED, err=True)
        sys.exit(2)


def fail(error: DomainError) -> None:
    click.echo(f"prefs: {error.message}", err=True)
    for field, messages in error.errors.items():
        click.echo(f"  {field}: {messages}", err=True)
    sys.exit(1)
