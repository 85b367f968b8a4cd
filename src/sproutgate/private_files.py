"""The data dir is private to the user the service runs as: the directory and every directory in it
mode 0700, every file in it 0600 (the SQLite database and its -wal/-shm files, keys, config, the
admin token, lock files). Whoever creates something there first (the server, ``sproutgate
migrate``, ``sproutgate import-sproutgate``, any other command) goes through these functions, and
they set the mode right after creating, so the umask cannot widen it (nor narrow it to unusable).

What already exists is left as it is: an operator may have chosen other modes on purpose."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """``path`` as a directory; created with mode 0700 when missing, and so are its missing
    parents (a file in ``data/config`` may be the first thing made in a fresh data dir).
    Returns ``path``."""
    if path.is_dir():
        return path
    if path.parent != path and not path.parent.is_dir():
        private_dir(path.parent)
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:
        return path  # another process made it first, through this function too
    os.chmod(path, DIR_MODE)
    return path


def open_private(path: Path, flags: int = os.O_RDWR) -> int:
    """``os.open(path, flags | O_CREAT)`` for a file that is created with mode 0600 when missing.
    Returns the descriptor; the caller closes it."""
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return os.open(path, flags)
    with contextlib.suppress(OSError):
        os.fchmod(fd, FILE_MODE)
    return fd


def private_file(path: Path) -> Path:
    """Create ``path`` empty with mode 0600 when missing (an empty file is an empty SQLite
    database: SQLite then gives its -wal, -shm and -journal files the same mode). Returns it."""
    if not path.exists():
        private_dir(path.parent)
        os.close(open_private(path, os.O_WRONLY))
    return path
