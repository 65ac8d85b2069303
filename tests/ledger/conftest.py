from __future__ import annotations

import pytest
import sqlalchemy as sa

from prefs_service.cli import main
from prefs_service.db import scopes
from prefs_service.extensions import db
from prefs_service.ledger import sequencer
from tests.helpers import Api, eventually


@pytest.fixture
def writer(client, api_key) -> Api:
    return Api(client, api_key("consent:write", "consent:read"))


@pytest.fixture
def sequence(app):
    """Run the sequencer until every committed row is in the log (as the
    worker's loop does). On PostgreSQL a row waits while any older transaction
    runs, in any database of the server (other test runs share it): so retry.
    `everything=False`: one pass, for a test that holds a transaction open."""

    def in_log() -> bool:
        with app.app_context():
            rows = db.session.scalar(sa.text("SELECT (SELECT count(*) FROM consent_events) + (SELECT count(*) FROM audit_events)"))
            leaves = db.session.scalar(sa.text("SELECT count(*) FROM ledger_leaves"))
            db.session.rollback()
        return rows == leaves

    def run(everything: bool = True) -> int:
        added = 0

        def once() -> bool:
            nonlocal added
            with app.app_context(), scopes.writing():
                added += sequencer.sequence_all()
            return not everything or in_log()

        eventually(once, timeout=60, interval=0.05, what="every committed row in the log")
        return added

    return run


@pytest.fixture
def verify(app):
    """`prefs ledger verify` -> (exit code, output)."""

    def run() -> tuple[int, str]:
        with app.app_context():
            db.engine.dispose()
        result = app.test_cli_runner().invoke(main, ["ledger", "verify"])
        return result.exit_code, result.output

    return run
