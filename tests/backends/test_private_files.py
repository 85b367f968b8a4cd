"""Secrets and files in the open (issue 11, item 12): whoever creates the data dir first (the
server, ``sproutgate migrate``, ``sproutgate import-sproutgate``) makes it 0700 and every file in
it 0600 (the SQLite database and its -wal/-shm files, keys, config, the admin token), under the
usual umask 022; and the admin token generated on a first start never reaches the server's
output, which says where the token is and how to show it instead."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.servers import ServerProcess

from .cluster import PASSWORD, server_env

pytestmark = pytest.mark.both_engines

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sproutgate-sample"


@contextlib.contextmanager
def usual_umask() -> Iterator[None]:
    """Child processes started inside inherit umask 022, the common default (a stricter umask
    where the tests run would hide a missing chmod)."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def not_private(data_dir: Path) -> list[str]:
    """Every entry of ``data_dir`` (itself included) whose mode is not 0700 (directories) or
    0600 (files), as "path mode"."""
    wrong = []
    entries = [data_dir, *sorted(data_dir.rglob("*"))]
    for entry in entries:
        try:
            mode = stat.S_IMODE(entry.lstat().st_mode)
        except FileNotFoundError:  # a temporary file gone meanwhile
            continue
        wanted = 0o700 if entry.is_dir() else 0o600
        if mode != wanted:
            wrong.append(f"{entry.relative_to(data_dir.parent)} {mode:o}")
    return wrong


def run_cli(data_dir: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    for key, value in server_env(data_dir, database_url).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    with usual_umask():
        done = subprocess.run(
            [sys.executable, "-m", "sproutgate", *args], env=env, capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 0, done.stderr
    return done


def test_a_first_start_keeps_the_data_dir_private_and_the_admin_token_out_of_the_log(tmp_path, database_url):
    data_dir = tmp_path / "fresh" / "data"  # its parent is new as well
    server = ServerProcess(server_env(data_dir, database_url), log_dir=tmp_path / "logs", name="first")
    with usual_umask():
        server.start()
    try:
        with httpx.Client(base_url=server.base_url, headers={"X-Forwarded-For": "10.9.8.7"}) as c:
            body = {"email": "files@example.com", "password": PASSWORD, "username": "files"}
            assert c.post("/api/v1/auth/verifications", json=body).status_code == 202
        names = {p.name for p in data_dir.iterdir()}
        if not database_url:  # SQLite: the database, in WAL mode while the server runs
            assert {"sproutgate.db", "sproutgate.db-wal", "sproutgate.db-shm"} <= names, names
        assert {"keys", "config"} <= names, names
        assert not_private(tmp_path / "fresh") == []

        admin_file = data_dir / "config" / "admin.json"
        token = json.loads(admin_file.read_text())["token"]
        log = server.log_text()
        assert token not in log
        notice = next(line for line in log.splitlines() if "admin token" in line)
        assert str(admin_file.resolve()) in notice and "sproutgate admin-token" in notice, notice
    finally:
        server.close()
    # The command it names shows the token.
    assert run_cli(data_dir, database_url, "admin-token").stdout.strip() == token


def test_sproutgate_migrate_on_a_fresh_data_dir_makes_only_private_files(tmp_path, database_url):
    data_dir = tmp_path / "data"
    run_cli(data_dir, database_url, "migrate")
    if not database_url:
        assert (data_dir / "sproutgate.db").is_file()
    if data_dir.exists():  # on PostgreSQL migrating writes nothing here
        assert not_private(data_dir) == []


def test_an_import_into_a_fresh_data_dir_makes_only_private_files(tmp_path, database_url):
    data_dir = tmp_path / "data"
    done = run_cli(data_dir, database_url, "import-sproutgate", str(SAMPLE))
    assert "admin token: adopted" in done.stdout
    assert {"admin.json", "auth.json", "email.json"} <= {p.name for p in (data_dir / "config").iterdir()}
    assert not_private(data_dir) == []


def test_a_command_that_generates_the_admin_token_says_where_it_is_not_what_it_is(tmp_path, database_url):
    data_dir = tmp_path / "data"
    done = run_cli(data_dir, database_url, "audit")
    token = json.loads((data_dir / "config" / "admin.json").read_text())["token"]
    assert token not in done.stdout + done.stderr
    assert "sproutgate admin-token" in done.stderr
    assert not_private(data_dir) == []


def loosen_like_an_older_version(data_dir: Path) -> list[Path]:
    """Give ``data_dir`` the modes a version before issue 11 left under umask 022 (0755
    directories, 0644 files, ``keys/`` included); the entries, data dir first."""
    entries = [data_dir, *sorted(data_dir.rglob("*"))]
    for entry in entries:
        entry.chmod(0o755 if entry.is_dir() else 0o644)
    return entries


def modes(entries: list[Path]) -> dict[str, str]:
    return {e.name: f"{stat.S_IMODE(e.stat().st_mode):o}" for e in entries if e.exists()}


@pytest.mark.parametrize("command", ["migrate", "import-sproutgate", "serve"])
def test_an_older_install_loses_what_others_could_read_and_is_told_the_rest(tmp_path, database_url, command):
    """What an older version left readable by other users is made private on the next start
    (``serve``, ``migrate``, ``import-sproutgate``), each path named in a warning; access for
    the group is kept (a backup group may need it) but named, with the command that removes
    it; once that command ran, starts are silent."""
    data_dir = tmp_path / "data"
    run_cli(data_dir, database_url, "import-sproutgate", str(SAMPLE))  # keys, config, the database
    entries = loosen_like_an_older_version(data_dir)
    admin_file = data_dir / "config" / "admin.json"
    assert oct(admin_file.stat().st_mode & 0o777) == "0o644"

    if command == "serve":
        server = ServerProcess(server_env(data_dir, database_url), log_dir=tmp_path / "logs", name="old")
        with usual_umask():
            server.start()
        try:
            said = server.log_text()
        finally:
            server.close()
    else:
        args = ["import-sproutgate", str(SAMPLE)] if command == "import-sproutgate" else [command]
        done = run_cli(data_dir, database_url, *args)
        said = done.stderr

    # Nothing is left to others; the group keeps read access (0640, 0750), keys/ is 0700 anyway.
    found = modes(entries)
    assert all(int(mode, 8) & 0o007 == 0 for mode in found.values()), found
    assert found["admin.json"] == "640" and found["data"] == "750"
    warned = [line for line in said.splitlines() if "data dir:" in line]
    assert len(warned) == 2, said
    removed, group = warned
    assert "access for other users removed" in removed
    assert f"{admin_file} (644 -> 640)" in removed and f"{data_dir} (755 -> 750)" in removed
    fix = f"chmod -R go-rwx {data_dir.resolve()}"
    assert "open to the group" in group and f"{admin_file} (640)" in group and group.endswith(fix)

    # The command it names makes everything private, and the next start says nothing.
    subprocess.run(fix.split(), check=True)
    assert not_private(data_dir) == []
    done = run_cli(data_dir, database_url, "migrate")
    assert "data dir:" not in done.stderr + done.stdout
