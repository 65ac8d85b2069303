"""Files that belong to a transaction: written before it commits, gone if it never does.

A row that names a file must never outlive the file, and a file must not
outlive the transaction that would have named it. So `write_private` writes the
file (0600, never over an existing one) before the commit, and remembers it on
the session; if the session's transaction then ends any way but a commit (a
rollback, a commit that failed, a session closed mid-transaction by a request
that raised), the file is removed. A process killed between the write and the
commit leaves the file behind, as it would any half-done work.

The listeners are bound to every session once (sessions are shared by every app).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session, SessionTransaction

from ..extensions import db
from ..private_files import create_private_file

log = logging.getLogger(__name__)

_PENDING = "prefs.files_until_commit"


def write_private(path: Path, data: bytes) -> None:
    """Write `path` as part of db.session's transaction: kept if it commits, removed otherwise."""
    session = db.session()
    descriptor = create_private_file(path)
    session.info.setdefault(_PENDING, []).append(path)  # before writing: a failed write is cleaned up too
    with open(descriptor, "wb") as handle:
        handle.write(data)


def _kept(session: Session) -> None:
    # A savepoint's release is a commit too; only the whole transaction's keeps the files.
    if not session.in_nested_transaction():
        session.info.pop(_PENDING, None)


def _removed(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:  # a savepoint or subtransaction: the outer transaction decides
        return
    for path in session.info.pop(_PENDING, ()):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            log.info("removed %s: its transaction did not commit", path.name)


def listen() -> None:
    for name, listener in (("after_commit", _kept), ("after_transaction_end", _removed)):
        if not sa.event.contains(Session, name, listener):
            sa.event.listen(Session, name, listener)
