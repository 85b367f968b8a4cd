"""Debian packages that some tests need (Chromium, Apache with mod_auth_openidc, zbar-tools...),
installed on first use with apt-get when the tests run as root.

A package that is missing and cannot be installed (not root, no apt-get, the package archive not
reachable) skips the test with the reason; one that apt-get reports installed but that still does
not provide the file the test needs fails it, as a broken set-up is not a reason to skip."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from .locks import machine_lock

__all__ = ["apt_install", "ensure_debian_packages"]


# apt-get waits this long for dpkg's lock held by another program (unattended upgrades, a
# person) instead of failing at once; the tests' own installs queue on machine_lock("apt").
APT_LOCK_WAIT = ("-o", "DPkg::Lock::Timeout=600")


def apt_install(*packages: str) -> subprocess.CompletedProcess[str]:
    """``apt-get install -y --no-install-recommends PACKAGES``; when that fails (an out-of-date
    package list), ``apt-get update`` and once more. Returns the last apt-get run.

    One at a time on the machine (pytest-xdist's workers set up Chromium, Apache and the QR
    tools at the same moment on a fresh machine; a second apt-get would fail on dpkg's lock)."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", *APT_LOCK_WAIT, "install", "-y", "--no-install-recommends", *packages]
    with machine_lock("apt"):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            subprocess.run(["apt-get", *APT_LOCK_WAIT, "update"], env=env, capture_output=True)
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    return done


def _present(need: str) -> bool:
    return Path(need).exists() if need.startswith("/") else shutil.which(need) is not None


def ensure_debian_packages(needs: Mapping[str, str]) -> None:
    """Make every file or executable in ``needs`` (a path, or a command looked up on PATH,
    mapped to the Debian package providing it) present, installing the missing packages.

    Skips the calling test when they cannot be installed (not root, no apt-get, apt-get failed:
    typically no network), with apt-get's own last words; fails it when apt-get succeeded but
    a file is still missing."""
    missing = sorted({pkg for need, pkg in needs.items() if not _present(need)})
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip(f"needs the Debian package(s) {', '.join(missing)}, and cannot install them (not root)")
    done = apt_install(*missing)
    still = [need for need in needs if not _present(need)]
    if done.returncode != 0 and still:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        pytest.skip(f"`apt-get install {' '.join(missing)}` failed (no package archive?): {' / '.join(tail)}")
    if still:
        pytest.fail(f"`apt-get install {' '.join(missing)}` did not provide {', '.join(still)}")
