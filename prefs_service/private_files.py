"""Files holding personal data or secrets (exports, mail, the SQLite database, the
development keys) are readable by the service's own user only: files 0600 in
folders 0700, set where they are created, whatever the umask.

The SQLite database file is created this way by db/backend.py.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def private_folder(folder: Path) -> Path:
    """Create `folder` (and any missing parents) 0700, and tighten it if it exists
    looser; a folder someone else owns (an operator's shared mount) is left alone."""
    _create_missing(folder)
    info = folder.stat()
    if stat.S_IMODE(info.st_mode) != FOLDER_MODE and info.st_uid == os.geteuid():
        os.chmod(folder, FOLDER_MODE)
    return folder


def _create_missing(folder: Path) -> None:
    # Path.mkdir(parents=True) would give the parents the umask's mode.
    if folder.is_dir():
        return
    _create_missing(folder.parent)
    try:
        folder.mkdir(mode=FOLDER_MODE)
    except FileExistsError:  # another process made it just now, or a file is in the way
        if not folder.is_dir():
            raise


def create_private_file(path: Path) -> int:
    """A new file (never an existing one) open for writing, 0600 from its first moment."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)


def _tighten_file(path: Path) -> None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    if stat.S_IMODE(info.st_mode) & 0o077 and info.st_uid == os.geteuid():
        os.chmod(path, FILE_MODE)


def private_sqlite_database(path: Path) -> None:
    """Create the database file 0600 before SQLite opens it: SQLite gives its -wal
    and -shm files the main file's mode. Files an older version left readable
    by others are tightened."""
    _create_missing(path.parent)
    try:
        os.close(create_private_file(path))
    except FileExistsError:
        for existing in (path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal"))):
            _tighten_file(existing)
