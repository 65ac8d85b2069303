"""Binding the database to an app: the backend object, and the listeners every
connection needs, on this app's own engine."""

from __future__ import annotations

from flask import Flask

from ..extensions import db
from . import files, outage
from .backend import for_dialect


def init_app(app: Flask) -> None:
    """After db.init_app: bind the backend's listeners to `db.engine` before
    its first connection, and keep the backend for `backend()`."""
    with app.app_context():
        engine = db.engine
    chosen = for_dialect(engine.dialect.name)
    chosen.bind(engine)
    outage.listen(engine)
    files.listen()  # a transaction's files go with it when it does not commit
    app.extensions["prefs.backend"] = chosen
