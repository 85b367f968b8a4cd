"""The data dir is private to the user the service runs as: the directory and every directory in it
mode 0700, every file in it 0600 (the SQLite database and its -wal/-shm files, keys, config, the
admin token, lock files). Whoever creates something there first (the server, ``sproutgate
migrate``, ``sproutgate import-sproutgate``, any other command) goes through these functions, and
they set the mode right after creating, so the umask cannot widen it (nor narrow it to unusable).

What already exists (a data dir made by a version before these rules, under umask 022: 0755
directories and 0644 files) is looked at on every start (``loose_modes``, run by the migration
step that the server, ``migrate``, ``import-sproutgate`` and every other command go through):
access for *others* is never a choice anyone needs for a directory of password hashes and signing
keys, so it is removed from what this process owns and named in a warning, as OpenSSH refuses a
key others can read; access for the *group* is kept, as PostgreSQL allows a group-readable data
dir (a backup group, say), but named in a warning with the command that removes it. Nothing else
is changed and nothing refuses to start: an upgrade must not become an outage.
(docs/decisions/data-dir-modes-of-older-installs.md)"""

from __future__ import annotations

import contextlib
import os
import shlex
import stat
from dataclasses import dataclass, field
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


# Shown in a warning at most this many at a time; the command covers the rest.
_NAMED = 10


@dataclass
class LooseModes:
    """What ``loose_modes`` found in a data dir: ``tightened`` (path, mode before, mode after)
    had access for others removed here; ``open_to_others`` still grant it (owned by another
    user, or the change failed); ``open_to_group`` grant the group access (kept on purpose)."""

    data_dir: Path
    tightened: list[tuple[Path, int, int]] = field(default_factory=list)
    open_to_others: list[tuple[Path, int]] = field(default_factory=list)
    open_to_group: list[tuple[Path, int]] = field(default_factory=list)

    def fix_command(self) -> str:
        """The shell command that makes the whole data dir private (0700/0600 from 07xx/06xx)."""
        return f"chmod -R go-rwx {shlex.quote(str(self.data_dir.resolve()))}"

    def warnings(self) -> list[str]:
        """One line per kind of finding, naming the paths (at most ten each) and their modes;
        empty when everything is private."""
        lines = []
        if self.tightened:
            named = _listed([(p, f"{before:o} -> {after:o}") for p, before, after in self.tightened])
            lines.append(f"data dir: access for other users removed (they could read it): {named}")
        if self.open_to_others:
            named = _listed([(p, f"{mode:o}") for p, mode in self.open_to_others])
            paths = " ".join(shlex.quote(str(p)) for p, _ in self.open_to_others)
            lines.append(
                f"data dir: readable by other users and not ours to change: {named}; "
                f"as their owner (or root) run: chmod o-rwx {paths}"
            )
        if self.open_to_group:
            named = _listed([(p, f"{mode:o}") for p, mode in self.open_to_group])
            lines.append(
                f"data dir: open to the group: {named}; unless a group (backups) needs it, run: "
                f"{self.fix_command()}"
            )
        return lines


def _listed(found: list[tuple[Path, str]]) -> str:
    shown = ", ".join(f"{path} ({mode})" for path, mode in found[:_NAMED])
    return shown + (f" and {len(found) - _NAMED} more" if len(found) > _NAMED else "")


def loose_modes(data_dir: Path) -> LooseModes:
    """Look at the data dir, itself and everything in it (symbolic links are not followed):
    remove access for others from what this process's user owns (``chmod o-rwx``), and report
    what still grants others or the group any access. A missing data dir has nothing to report.
    Start-up work only (a few dozen entries); never on a request's path."""
    found = LooseModes(data_dir)
    if not data_dir.is_dir():
        return found
    me = os.geteuid()
    _look(data_dir, me, found)
    for root, dirs, files in os.walk(data_dir):
        dirs.sort()
        for name in [*dirs, *sorted(files)]:
            _look(Path(root) / name, me, found)
    return found


def _look(path: Path, me: int, found: LooseModes) -> None:
    try:
        st = path.lstat()
    except FileNotFoundError:  # a temporary file gone meanwhile
        return
    if stat.S_ISLNK(st.st_mode):
        return
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o007:
        if st.st_uid == me:
            try:
                os.chmod(path, mode & ~0o007)
                found.tightened.append((path, mode, mode & ~0o007))
                mode &= ~0o007
            except OSError:
                found.open_to_others.append((path, mode))
        else:
            found.open_to_others.append((path, mode))
    if mode & 0o070:
        found.open_to_group.append((path, mode))
