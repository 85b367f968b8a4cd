"""`sproutgate serve --workers 2`: /metrics adds up every worker (prometheus-client's
multiprocess mode), forgets the gauges of a worker that died, and starts afresh with each run."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from metrics_support import PASSWORD, scrape, server_env, value

from support.servers import SERVE_ARGV, ServerProcess

pytestmark = pytest.mark.slow

HEALTH = {"route": "/api/v1/health", "method": "GET", "status": "200"}
REQUESTS = "sproutgate_http_requests_total"


def _log_entries(proc: ServerProcess) -> list[dict]:
    return [json.loads(line) for line in proc.log_text().splitlines() if line.startswith("{")]


def _worker_pids(proc: ServerProcess) -> set[int]:
    """Workers that logged "Application startup complete" and have not finished since."""
    alive: set[int] = set()
    for entry in _log_entries(proc):
        if entry["message"].startswith("Application startup complete"):
            alive.add(entry["pid"])
        elif entry["message"].startswith("Finished server process"):
            alive.discard(entry["pid"])
    return alive


def _wait(predicate, what: str, timeout: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _run_dirs(data_dir: Path) -> list[Path]:
    root = data_dir / "metrics"
    return sorted(p for p in root.iterdir()) if root.is_dir() else []


def test_two_workers_are_counted_together_and_each_run_starts_afresh(tmp_path):
    data_dir = tmp_path / "data"
    env = server_env(data_dir, SPROUTGATE_LOG_FORMAT="json")
    argv = [*SERVE_ARGV, "--workers", "2"]
    proc = ServerProcess(env, cwd=tmp_path, log_dir=tmp_path, argv=argv, startup_timeout=120)
    with proc:
        _wait(lambda: len(_worker_pids(proc)) == 2, "both workers to start")
        # New connections until both workers have answered some (the access log names the pid).
        sent = 0
        answered_by: set[int] = set()
        while len(answered_by) < 2 or sent < 10:
            assert sent < 400, "one worker answered everything"
            assert httpx.get(proc.base_url + "/api/v1/health").status_code == 200
            sent += 1
            if sent % 10 == 0:
                answered_by = {e["pid"] for e in _log_entries(proc) if e.get("route") == "/api/v1/health"}
        for _ in range(3):
            r = httpx.post(
                proc.base_url + "/api/v1/auth/sessions",
                json={"email": "nobody@example.com", "password": PASSWORD},
            )
            assert r.status_code == 401
        series = scrape(proc.base_url)
        assert value(series, REQUESTS, **HEALTH) == sent
        assert value(series, "sproutgate_sign_ins_total", outcome="wrong_password") == 3
        # Per-process gauges add up the living workers: two pools.
        per_worker = value(series, "sproutgate_db_pool_connections_max") / 2
        assert per_worker > 0
        assert value(series, "sproutgate_rate_limits_local_processes") == 0

        # A worker that dies is replaced: its counts stay, its gauges go.
        (run_dir,) = _run_dirs(data_dir)
        assert run_dir.name == str(proc.pid)
        victim = min(_worker_pids(proc))
        os.kill(victim, signal.SIGKILL)
        _wait(lambda: _replaced(proc, victim), "the worker's death to be noticed")
        _wait(lambda: len(_worker_pids(proc) - {victim}) == 2, "a replacement worker")
        series = scrape(proc.base_url)
        assert value(series, REQUESTS, **HEALTH) == sent
        assert value(series, "sproutgate_db_pool_connections_max") == 2 * per_worker
        assert not list(run_dir.glob(f"gauge_livesum_{victim}.db"))
        assert list(run_dir.glob(f"counter_{victim}.db"))

        # A restart starts from zero, in a fresh directory: nothing carries over.
        proc.restart()
        assert not run_dir.exists()
        _wait(lambda: len(_worker_pids_since_last_start(proc)) == 2, "both workers to start again")
        series = scrape(proc.base_url)
        assert value(series, REQUESTS, **HEALTH) == 0
        assert value(series, "sproutgate_sign_ins_total", outcome="wrong_password") == 0
        assert value(series, "sproutgate_db_pool_connections_max") == 2 * per_worker
        assert [p.name for p in _run_dirs(data_dir)] == [str(proc.pid)]
    assert _run_dirs(data_dir) == []  # removed when serve exits


def _replaced(proc: ServerProcess, pid: int) -> bool:
    return any(e["message"] == f"Child process [{pid}] died" for e in _log_entries(proc))


def _worker_pids_since_last_start(proc: ServerProcess) -> set[int]:
    text = proc.log_text()
    last = text.rsplit("=== ", 1)[-1]
    alive: set[int] = set()
    for line in last.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry["message"].startswith("Application startup complete"):
                alive.add(entry["pid"])
    return alive


def test_a_stale_directory_of_a_killed_run_is_removed_at_the_next_start(tmp_path):
    data_dir = tmp_path / "data"
    stale = data_dir / "metrics" / "999999999"  # no such process
    stale.mkdir(parents=True)
    (stale / "counter_12345.db").write_bytes(b"\0" * 16)
    env = server_env(data_dir)
    argv = [*SERVE_ARGV, "--workers", "2"]
    with ServerProcess(env, cwd=tmp_path, log_dir=tmp_path, argv=argv, startup_timeout=120) as proc:
        assert not stale.exists()
        assert [p.name for p in _run_dirs(data_dir)] == [str(proc.pid)]
        assert value(scrape(proc.base_url), REQUESTS, **HEALTH) == 0
