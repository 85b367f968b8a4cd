"""Where ``sproutgate serve --workers N`` keeps prometheus-client's multiprocess files.

prometheus-client picks its multiprocess mode from ``PROMETHEUS_MULTIPROC_DIR`` when it is first
imported, so this module does not import it: ``serve`` prepares the directory and sets the
variable before anything loads the client, and its workers inherit both.

Each run gets a fresh private directory, ``<data dir>/metrics/<pid of serve>``: values never
carry over from an earlier run (Prometheus expects counters to restart with the process, not to
resume stale ones), and two servers sharing a data dir keep apart. The directory is removed when
``serve`` exits; one left behind by a server that was killed is removed by the next start. A
container restarting ``serve`` under the same pid finds its own old directory and empties it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sproutgate.private_files import private_dir

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def fresh_run_dir(data_dir: Path) -> Path:
    """An empty private directory for this run's metric files, ``<data_dir>/metrics/<pid>``;
    directories of earlier runs whose process is gone are removed on the way."""
    root = private_dir(data_dir / "metrics")
    own = os.getpid()
    for entry in root.iterdir():
        if not (entry.is_dir() and entry.name.isdigit()):
            continue
        pid = int(entry.name)
        if pid == own or not pid_alive(pid):
            shutil.rmtree(entry, ignore_errors=True)
    return private_dir(root / str(own))


def remove_run_dir(path: Path) -> None:
    """Remove a directory made by ``fresh_run_dir`` (at the end of the run)."""
    shutil.rmtree(path, ignore_errors=True)
