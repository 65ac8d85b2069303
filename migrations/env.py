"""Alembic environment: the app's engine and metadata (run via `prefs db …`)."""

import logging

from alembic import context
from flask import current_app

from prefs_service import models

logger = logging.getLogger("alembic.env")
config = context.config


def run_migrations_offline():
    context.configure(
        url=str(models.db.engine.url),
        target_metadata=models.db.metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    def skip_empty(context, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")

    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", skip_empty)
    with models.db.engine.connect() as connection:
        conf_args.setdefault("include_name", models.include_name)
        context.configure(connection=connection, target_metadata=models.db.metadata, **conf_args)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
