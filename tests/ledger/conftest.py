from __future__ import annotations

import pytest

from prefs_service.cli import main
from prefs_service.db import scopes
from prefs_service.extensions import db
from prefs_service.ledger import sequencer
from tests.helpers import Api


@pytest.fixture
def writer(client, api_key) -> Api:
    return Api(client, api_key("consent:write", "consent:read"))


@pytest.fixture
def sequence(app):
    """Run the sequencer until nothing waits (as the worker's loop does)."""

    def run() -> int:
        with app.app_context(), scopes.writing():
            return sequencer.sequence_all()

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
