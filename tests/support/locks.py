"""One lock per machine for set-up steps that pytest-xdist's workers (and concurrent runs) may
reach at the same moment: installing Debian packages (dpkg takes one installer at a time, and a
second ``apt-get`` fails at once on its lock) and filling the npm cache outside the tree (two
``npm ci`` in one directory remove each other's files)."""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def machine_lock(name: str) -> Iterator[None]:
    """Hold the exclusive lock ``name`` (a ``flock`` on ``<temp dir>/sproutgate-tests-NAME.lock``)
    for the ``with`` block, waiting for whichever process holds it. The kernel drops the lock
    when its holder exits, so a killed run never leaves it taken."""
    path = Path(tempfile.gettempdir()) / f"sproutgate-tests-{name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock
