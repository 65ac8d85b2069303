"""Transaction scopes: each view says whether it reads or writes, and a
read-only scope never waits for a writer."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from flask import Blueprint

from prefs_service.api import docs
from prefs_service.db import scopes
from prefs_service.extensions import db
from prefs_service.subjects.models import Subject


def test_every_view_declares_its_scope_and_one_that_does_not_is_refused(app):
    files = {"static", "pages.static", "api-docs.openapi_json", "api-docs.openapi_swagger_ui", docs.ASSETS_ENDPOINT}
    scopes.refuse_views_without_scope(app, exempt=files)

    undeclared = Blueprint("undeclared", __name__)
    undeclared.add_url_rule("/undeclared", "guess", lambda: "which?")
    app.register_blueprint(undeclared)
    with pytest.raises(RuntimeError, match=r"undeclared\.guess"):
        scopes.refuse_views_without_scope(app)


def test_a_scope_ends_with_its_block_and_nests():
    assert scopes.current() is scopes.WRITE
    with scopes.read_only():
        assert scopes.current() is scopes.READ
        with scopes.writing():
            assert scopes.current() is scopes.WRITE
        assert scopes.current() is scopes.READ
    assert scopes.current() is scopes.WRITE

    @scopes.reads
    def view():
        return scopes.current()

    assert view() is scopes.READ and scopes.declared(view) is scopes.READ
    assert scopes.current() is scopes.WRITE


def test_a_read_only_scope_reads_while_a_writer_holds_its_transaction_open(app):
    """SQLite: a writing scope takes the write lock when its transaction
    begins; a read-only one begins deferred and reads beside it (WAL)."""
    writing, done = threading.Event(), threading.Event()

    def writer():
        with app.app_context(), scopes.writing():
            db.session.add(Subject(name="Held open"))
            db.session.flush()
            writing.set()
            done.wait(30)
            db.session.rollback()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert writing.wait(30)
        with app.app_context(), scopes.read_only():
            assert db.session.scalar(sa.select(sa.func.count()).select_from(Subject)) == 0  # the writer's row is not committed
            db.session.rollback()
    finally:
        done.set()
        thread.join(30)
