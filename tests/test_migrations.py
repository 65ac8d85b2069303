"""The migrations build exactly the schema the models describe, from any directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from prefs_service import channels
from prefs_service.consent.models import Purpose
from prefs_service.extensions import db
from prefs_service.models import db as models_db


def test_models_and_migrations_do_not_drift(app):
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, models_db.metadata)
    assert diff == []


def test_purposes_table_matches_the_channel_declarations(app):
    with app.app_context():
        stored = {(p.channel, p.name, p.marketing) for p in db.session.scalars(sa.select(Purpose))}
    declared = {(c.name, p.name, p.marketing) for c in channels.CHANNELS.values() for p in c.purposes}
    assert stored == declared


def test_prefs_db_upgrade_works_from_any_directory_and_downgrades(tmp_path):
    prefs = str(Path(sys.executable).parent / "prefs")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": "/usr/bin:/bin", "PREFS_VAR_DIR": str(tmp_path / "data"), "PREFS_LOG_LEVEL": "WARNING"}
    for args in (["db", "upgrade"], ["db", "downgrade", "base"], ["db", "upgrade"], ["db", "current"]):
        result = subprocess.run([prefs, *args], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
    assert "(head)" in result.stdout
    assert (tmp_path / "data" / "prefs.db").exists()
    assert not (elsewhere / "var").exists()
