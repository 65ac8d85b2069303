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
from prefs_service.db import migrations
from prefs_service.extensions import db
from prefs_service.models import db as models_db
from prefs_service.models import include_name


def test_models_and_migrations_do_not_drift(app):
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": include_name})
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


def test_postal_addresses_keep_their_people_and_suppressions_across_the_kind_rename(make_app, tmp_path):
    """0005 renames the kind `postal` to `postal_address`; the keyed hashes,
    all an erased person's suppression holds, stay valid."""
    import hashlib
    import hmac
    import uuid

    import flask_migrate

    from prefs_service.access import service as access

    app = make_app(database_url=f"sqlite:///{tmp_path / 'before-0005.db'}")
    migrations.register(app)
    held, erased = "1 HIGH STREET, LEEDS", "2 LOW ROAD, YORK"

    def hashed_before_0005(value: str) -> bytes:  # as the service hashed postal addresses then
        return hmac.new(app.config["PREFS"].identifier_key.encode(), f"postal:{value}".encode(), hashlib.sha256).digest()

    with app.app_context():
        flask_migrate.upgrade(revision="0004")
        person = uuid.uuid4()
        db.session.execute(
            sa.text("INSERT INTO subjects (id, created_at, updated_at) VALUES (:id, '2026-01-01', '2026-01-01')"), {"id": person.hex}
        )
        db.session.execute(
            sa.text(
                "INSERT INTO identifiers (subject_id, kind, value, value_hash, created_at) VALUES (:s, 'postal', :v, :h, '2026-01-01')"
            ),
            {"s": person.hex, "v": held, "h": hashed_before_0005(held)},
        )
        db.session.execute(
            sa.text(
                "INSERT INTO consent_events (id, txid, subject_id, channel, purpose, status, source, occurred_at, recorded_at, recorded_by) "
                "VALUES (1, 0, :s, 'mail', 'marketing', 'granted', 'api', '2026-01-01', '2026-01-01', 'test')"
            ),
            {"s": person.hex},
        )
        db.session.execute(
            sa.text(
                "INSERT INTO consent_state (subject_id, channel, purpose, status, occurred_at, event_id, source) "
                "VALUES (:s, 'mail', 'marketing', 'granted', '2026-01-01', 1, 'api')"
            ),
            {"s": person.hex},
        )
        db.session.execute(
            sa.text(
                "INSERT INTO suppressions (value_hash, kind, reason, created_at, created_by) VALUES (:h, 'postal', 'erasure', '2026-01-01', 'erasure')"
            ),
            {"h": hashed_before_0005(erased)},
        )
        db.session.commit()
        flask_migrate.upgrade()
        kinds = {
            table: db.session.scalars(sa.text(f"SELECT DISTINCT kind FROM {table}")).all() for table in ("identifiers", "suppressions")
        }
        _, key = access.create_key(name="test", scopes=["consent:read"], actor="test")
        db.session.commit()
        db.engine.dispose()
    assert kinds == {"identifiers": ["postal_address"], "suppressions": ["postal_address"]}

    def check(address: str) -> dict:
        query = {"channel": "mail", "purpose": "marketing", "postal_address": address}
        return app.test_client().get("/v1/consent/check", query_string=query, headers={"Authorization": f"Bearer {key}"}).json

    assert check("1 High Street, Leeds")["reason"] == "granted"  # the person, found by their address's hash
    assert check("2 Low Road, York")["reason"] == "erased"


def test_staff_accounts_that_exist_become_admins_and_new_ones_reviewers(make_app, tmp_path):
    """0006 adds roles: nobody who could manage accounts before is locked out of it."""
    import flask_migrate

    from prefs_service.access import service as access
    from prefs_service.access.models import StaffUser

    app = make_app(database_url=f"sqlite:///{tmp_path / 'before-0006.db'}")
    migrations.register(app)
    with app.app_context():
        flask_migrate.upgrade(revision="0005")
        db.session.execute(
            sa.text(
                "INSERT INTO staff_users (email, password_hash, active, failed_logins, session_version, created_at) "
                "VALUES ('old@example.com', 'x', 1, 0, 1, '2026-01-01')"
            )
        )
        db.session.commit()
        flask_migrate.upgrade()
        access.create_staff(email="new@example.com", password="a long enough password", actor="test")
        db.session.commit()
        roles = dict(db.session.execute(sa.select(StaffUser.email, StaffUser.role)).all())
        db.session.rollback()  # the read's transaction ends before the downgrade writes
        flask_migrate.downgrade(revision="0005")
        columns = {c["name"] for c in sa.inspect(db.engine).get_columns("staff_users")}
        flask_migrate.upgrade()  # back to head: the fixture empties every table the models declare
        db.engine.dispose()
    assert roles == {"old@example.com": "admin", "new@example.com": "reviewer"}
    assert "role" not in columns
