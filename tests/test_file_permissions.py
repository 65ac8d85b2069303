"""A development var/ folder is readable by the service's user only: var/ 0700, the
SQLite database with its -wal and -shm files and the generated keys 0600, also when
an older version left them readable by others. Always on SQLite: that is what var/ holds."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from prefs_service import create_app
from prefs_service.access import service as access
from prefs_service.config import load_settings
from prefs_service.extensions import db

USUAL_UMASK = 0o022  # what most systems start services with: without our modes, files would be 0644


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _prefs(var: Path, *args: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "PREFS_VAR_DIR": str(var), "PREFS_LOG_LEVEL": "WARNING"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "prefs"), *args], env=env, umask=USUAL_UMASK, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_a_fresh_var_folder_migrated_by_prefs_db_upgrade_is_private(tmp_path):
    var = tmp_path / "var"
    _prefs(var, "db", "upgrade")
    assert _mode(var) == 0o700
    assert {p.name: _mode(p) for p in var.iterdir()} == {
        "prefs.db": 0o600,
        "secret_key": 0o600,
        "identifier_key": 0o600,
        "ledger_signing_key": 0o600,
    }

    # While the app has the database open in WAL mode, SQLite's side files exist too.
    app = create_app(load_settings({"PREFS_VAR_DIR": str(var), "PREFS_LOG_LEVEL": "WARNING"}))
    with app.app_context():
        access.create_key(name="private", scopes=["consent:read"], actor="test")
        db.session.commit()
        assert db.session.scalar(sa.text("PRAGMA journal_mode")) == "wal"
        assert {p.name: _mode(p) for p in var.iterdir() if p.name.startswith("prefs.db")} == {
            "prefs.db": 0o600, "prefs.db-wal": 0o600, "prefs.db-shm": 0o600,
        }  # fmt: skip
        db.session.rollback()
        db.engine.dispose()


def test_a_var_folder_an_older_version_left_readable_is_tightened(tmp_path):
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    var.chmod(0o755)
    database = var / "prefs.db"
    sqlite3.connect(database).close()
    database.chmod(0o644)
    _prefs(var, "db", "upgrade")
    assert _mode(var) == 0o700 and _mode(database) == 0o600
