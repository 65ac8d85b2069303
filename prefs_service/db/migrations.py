"""Alembic, through Flask-Migrate, for what migrates: the `prefs` command and
the tests that run migrations. A served app never registers it, so its
processes never load Alembic (11 MB a worker)."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Give `app` Flask-Migrate (the `db` commands, flask_migrate.upgrade()), once."""
    if "migrate" in app.extensions:
        return
    from flask_migrate import Migrate

    from ..extensions import db

    Migrate(app, db, directory=migrations_directory(), render_as_batch=True, compare_type=True)


def migrations_directory() -> str:
    """The Alembic folder shipped inside the installed package."""
    from importlib.util import find_spec

    spec = find_spec("prefs_service.migrations")
    assert spec is not None and spec.submodule_search_locations is not None
    return next(iter(spec.submodule_search_locations))
