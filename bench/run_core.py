"""Core API benchmark: starts SproutGate itself and measures, in one run on the same cores,

(a) login throughput next to the physical bound, a tight argon2id verify loop (one thread per
    server core) with the same parameters, and next to the verify rate through asyncio.to_thread,
(b) GET /api/v1/users/me throughput next to a bare FastAPI endpoint that only verifies the JWT,
(c) refresh throughput, each client chaining its own refresh tokens,
(d) /api/v1/users/search latency over 1,000,000 generated users,

then writes the figures, ratios, targets and the machine into docs/benchmarks.md (sections
"Core API" and "Method"; other sections of that file are kept).

    .venv/bin/python bench/run_core.py            # full run (about 5 minutes), writes the docs
    .venv/bin/python bench/run_core.py --quick    # smoke run; prints the report only
    .venv/bin/python bench/run_core.py --only login,me,refresh --no-inline-driver
                                                  # SQLite through plain aiosqlite (prints only)

Everything runs on loopback; every load phase is bounded in time and the servers are stopped
at the end. The server processes are pinned to the "server" cores and this process (the load
generator) to the others, so the two do not steal CPU from each other.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unicodedata
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import argon2
import httpx
from loadgen import (
    FixedClient,
    LoadResult,
    install_uvloop,
    percentile,
    request_bytes,
    run_load,
    run_sequence,
)
from machine_info import cpu_model, package_version

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
DOCS = ROOT / "docs" / "benchmarks.md"
PASSWORD = "Sprout#2026-bench-pw"
ARGON2 = (2, 19456, 1)  # OWASP: t=2, m=19 MiB, p=1

# Targets, as ratios (absolute figures vary between machines).
LOGIN_MIN_RATIO = 0.9
ME_MIN_RATIO = 0.6
REFRESH_PER_CORE = 8 * 120  # 8x Keycloak's published 120 refreshes/s per vCPU
SEARCH_P95_MS = 10.0


# -- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any SPROUTGATE_* the caller's shell may carry, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPROUTGATE_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class Process:
    """A server subprocess pinned to ``cpus``, in its own process group, logging to a file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cpus: set[int], log: Path) -> None:
        self.name, self.argv, self.env, self.cpus, self.log = name, argv, env, cpus, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, port: int, health: str, timeout: float = 90.0) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.log.parent,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # Pinned before the interpreter has started any thread; threads inherit the mask.
        os.sched_setaffinity(self.proc.pid, self.cpus)
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{port}{health}"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:  # loopback only
                    if r.status in (200, 401):
                        return
            except urllib.error.HTTPError as exc:
                if exc.code in (200, 401):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer {url}:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def server_env(data_dir: Path, port: int, inline_driver: bool = True) -> dict[str, str]:
    """SproutGate's defaults (SQLite, in-process limits, dev mailbox) with real argon2 costs;
    ``inline_driver=False`` turns the SQLite inline driver off (plain aiosqlite).

    Rate limits stay on; the two that a benchmark trips by design (refreshes per IP, searches
    per user) are raised so that the run measures throughput, not the limit. Clients present
    their own address through X-Forwarded-For from the trusted loopback proxy, as the tests do.
    """
    t, m, p = ARGON2
    return clean_env(
        SPROUTGATE_DATA_DIR=str(data_dir),
        SPROUTGATE_PUBLIC_URL=f"http://127.0.0.1:{port}",
        SPROUTGATE_TRUSTED_PROXIES="127.0.0.1",
        SPROUTGATE_ARGON2_TIME_COST=str(t),
        SPROUTGATE_ARGON2_MEMORY_KIB=str(m),
        SPROUTGATE_ARGON2_PARALLELISM=str(p),
        SPROUTGATE_LIMIT_REFRESH_PER_IP="1000000/5 minutes",
        SPROUTGATE_LIMIT_SEARCH_PER_USER="1000000/minute",
        SPROUTGATE_SQLITE_INLINE_DRIVER="true" if inline_driver else "false",
    )


def sproutgate_server(
    data_dir: Path, cpus: set[int], work: Path, inline_driver: bool = True
) -> tuple[Process, int]:
    port = free_port()
    argv = [sys.executable, "-m", "sproutgate", "serve", "--host", "127.0.0.1", "--port", str(port)]
    env = server_env(data_dir, port, inline_driver)
    proc = Process("sproutgate", argv, env, cpus, work / f"server-{port}.log")
    proc.start(port, "/health")
    return proc, port


def bare_server(data_dir: Path, cpus: set[int], work: Path) -> tuple[Process, int]:
    port = free_port()
    argv = [sys.executable, str(BENCH / "bare_jwt.py"), str(data_dir), str(port)]
    proc = Process("bare-jwt", argv, clean_env(), cpus, work / f"bare-{port}.log")
    proc.start(port, "/me")
    return proc, port


# -- setup through the API -------------------------------------------------------------------


def fake_ip(n: int) -> str:
    """A client address for X-Forwarded-For (a header value only: no traffic goes there)."""
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{(n & 255) or 1}"


def sign_up(base: str, email: str, username: str, ip: str) -> dict[str, Any]:
    """Sign up through the runtime API, reading the code from the dev mailbox."""
    headers = {"X-Forwarded-For": ip}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
        r = c.post(
            "/api/v1/auth/verifications", json={"email": email, "password": PASSWORD, "username": username}
        )
        r.raise_for_status()
        code = None
        for _ in range(100):
            # The mailbox answers loopback callers only: no forwarded address on this one.
            box = c.get("/dev/mailbox", params={"to": email}, headers={"X-Forwarded-For": ""})
            box.raise_for_status()
            for m in box.json():
                found = re.search(r"\b(\d{6})\b", m["subject"])
                if found:
                    code = found.group(1)
                    break
            if code:
                break
            time.sleep(0.05)
        if code is None:
            raise RuntimeError(f"no code mailed to {email}")
        r = c.post("/api/v1/auth/verifications/verify", json={"email": email, "token": code})
        r.raise_for_status()
        return r.json()


# -- load clients ----------------------------------------------------------------------------


@dataclass
class LoginClient:
    """Signs in again and again with a correct password; keeps the sessions it gets."""

    email: str
    ip: str
    sessions: list[dict[str, Any]] = field(default_factory=list)

    def next_request(self) -> bytes:
        return request_bytes(
            "POST",
            "/api/v1/auth/sessions",
            headers={"X-Forwarded-For": self.ip},
            body={"email": self.email, "password": PASSWORD},
        )

    def on_response(self, status: int, body: bytes) -> bool:
        if status != 200:
            return False
        self.sessions.append(json.loads(body))
        return True


@dataclass
class RefreshClient:
    """Owns one session and always presents the refresh token it got last."""

    refresh_token: str
    ip: str
    broken: bool = False

    def next_request(self) -> bytes:
        return request_bytes(
            "POST",
            "/api/v1/auth/sessions/refresh",
            headers={"X-Forwarded-For": self.ip},
            body={"refresh_token": self.refresh_token},
        )

    def on_response(self, status: int, body: bytes) -> bool:
        if status != 200:
            self.broken = True
            return False
        self.refresh_token = json.loads(body)["refresh_token"]
        return True


def bearer_get(path: str, token: str, ip: str) -> bytes:
    return request_bytes("GET", path, headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": ip})


# -- the 1,000,000 users ---------------------------------------------------------------------

SYLLABLES = (
    "a an ba bo chen da de el fa fei gu ha hao jo ka ke lan li lin lu ma mei mi mo na ne no "
    "ou pa pe qi ra ri ro sa shu si ta te to ul va ve wei xi ya yu za zhu"
).split()
SURNAMES_CJK = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN_CJK = "小明华伟芳娜静丽强磊军洋勇艳杰涛超秀英敏晨宇浩然欣怡子轩"


def generated_name(rng: random.Random) -> str:
    """A display name: mostly romanised syllables in a few common shapes, some Chinese."""
    if rng.random() < 0.1:
        return rng.choice(SURNAMES_CJK) + "".join(rng.choice(GIVEN_CJK) for _ in range(rng.randint(1, 2)))
    first = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3)))
    last = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3)))
    shape = rng.random()
    if shape < 0.4:
        return f"{first.title()} {last.title()}"
    if shape < 0.6:
        return f"{first}_{last}"
    if shape < 0.8:
        return f"{first}{last}{rng.randint(1, 999)}"
    return f"{first.title()}{rng.randint(1, 9999)}"


def build_user_db(data_dir: Path, count: int, cpus: set[int], work: Path) -> tuple[list[str], list[str]]:
    """Create the schema with the app's own migrations, then bulk-insert ``count`` users.

    Rows go in with executemany in one transaction; the FTS5 trigram index is filled by the
    migration's triggers as rows arrive. Returns the display names and emails (for queries)."""
    env = clean_env(SPROUTGATE_DATA_DIR=str(data_dir))
    subprocess.run(
        [sys.executable, "-m", "sproutgate", "migrate"], env=env, cwd=work, check=True, capture_output=True
    )
    rng = random.Random(20260101)
    stored_hash = argon2.PasswordHasher(
        time_cost=ARGON2[0], memory_cost=ARGON2[1], parallelism=ARGON2[2], type=argon2.Type.ID
    ).hash(PASSWORD)
    at = "2026-01-01 00:00:00.000000"
    names: list[str] = []
    emails: list[str] = []
    seen: set[str] = set()
    users = []
    addresses = []
    while len(users) < count:
        name = generated_name(rng)
        lower = unicodedata.normalize("NFKC", name).casefold()
        if lower in seen:
            continue
        seen.add(lower)
        i = len(users)
        uid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        account = f"u{i:07d}"
        ascii_part = re.sub(r"[^a-z0-9]+", ".", lower).strip(".") or "user"
        email = f"{ascii_part}.{i}@bench.example"
        disabled = 1 if rng.random() < 0.01 else 0
        users.append(
            (uid, account, account, email, name, lower, stored_hash, "user", disabled, 0, 0, at, at, at)
        )
        addresses.append((email, uid, 1, at, at))
        names.append(lower)
        emails.append(email)
    db = sqlite3.connect(data_dir / "sproutgate.db", isolation_level=None)
    try:
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-262144")
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO users (id, account, account_lower, email, username, username_lower, "
            "password_hash, role, disabled, level, sprout_coins, email_confirmed_at, created_at, "
            "updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            users,
        )
        db.executemany(
            "INSERT INTO user_emails (email, user_id, is_primary, verified_at, created_at) "
            "VALUES (?,?,?,?,?)",
            addresses,
        )
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return names, emails


def search_queries(names: list[str], emails: list[str], per_class: int, seed: int) -> list[tuple[str, str]]:
    """(class, query) pairs: substrings of real names of 1, 2, 3, 5 and 8 characters, and exact
    emails (some in upper case, which must still match)."""
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    for length in (1, 2, 3, 5, 8):
        made = 0
        while made < per_class:
            name = rng.choice(names)
            if len(name) < length:
                continue
            start = rng.randint(0, len(name) - length)
            q = name[start : start + length]
            if not q.strip():
                continue
            out.append((f"{length} chars", q))
            made += 1
    for _ in range(per_class):
        e = rng.choice(emails)
        out.append(("exact email", e.upper() if rng.random() < 0.3 else e))
    rng.shuffle(out)
    return out


# -- reporting -------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = cpu_model("unknown")
    version = package_version

    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "os": f"{platform.system()} {platform.release()}",
        "packages": ", ".join(
            f"{p} {version(p)}"
            for p in ("uvicorn", "uvloop", "httptools", "fastapi", "starlette", "sqlalchemy", "aiosqlite")
        )
        + f", argon2-cffi {version('argon2-cffi')}, PyJWT {version('pyjwt')}",
    }


def cpu_probe(pid: int, cpus: set[int]) -> Callable[[], tuple[float, float]]:
    """CPU seconds used so far by process ``pid`` (all its threads) and by anything at all on
    ``cpus``, read from /proc."""
    tick = os.sysconf("SC_CLK_TCK")

    def probe() -> tuple[float, float]:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        own = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        busy = 0
        for line in Path("/proc/stat").read_text().splitlines():
            name, *values = line.split()
            if name[:3] == "cpu" and name[3:].isdigit() and int(name[3:]) in cpus:
                v = [int(x) for x in values]
                busy += v[0] + v[1] + v[2] + v[5] + v[6] + v[7]  # user nice system irq softirq steal
        return own, busy / tick

    return probe


def cpu_per_request(r: LoadResult) -> float:
    """Server CPU milliseconds per successful request during the window (0 if unknown)."""
    return r.cpu_seconds * 1000 / r.ok if r.ok else 0.0


def others_share(r: LoadResult, ncpus: int) -> float:
    """Share of the server cores' time that other processes used during the window."""
    return max(0.0, r.busy_seconds - r.cpu_seconds) / (r.duration * ncpus) if r.duration else 0.0


def status_note(r: LoadResult) -> str:
    bad = {s: n for s, n in r.statuses.items() if s != 200}
    return "" if not bad else " (non-200: " + ", ".join(f"{s}x{n}" for s, n in sorted(bad.items())) + ")"


def verdict(ok: bool) -> str:
    return "**pass**" if ok else "**FAIL**"


def replace_sections(existing: str, sections: dict[str, str]) -> str:
    """Put our ``## Title`` sections into the file, keeping every other section as it is."""
    if not existing.strip():
        existing = "# Benchmarks\n"
    parts = re.split(r"(?m)^(?=## )", existing)
    head, rest = parts[0], parts[1:]
    out, placed = [head.rstrip() + "\n\n"], set()
    for part in rest:
        title = part.splitlines()[0][3:].strip()
        if title in sections:
            out.append(sections[title].rstrip() + "\n\n")
            placed.add(title)
        else:
            out.append(part.rstrip() + "\n\n")
    # New sections go first, in the order given, ahead of sections other people own.
    new = [sections[t].rstrip() + "\n\n" for t in sections if t not in placed]
    return (out[0] + "".join(new) + "".join(out[1:])).rstrip() + "\n"


# -- the run ---------------------------------------------------------------------------------

PHASES = frozenset({"login", "me", "refresh", "search"})


@dataclass
class Config:
    users: int
    duration: float
    warmup: float
    clients: int
    login_clients: int
    per_class: int
    server_cpus: set[int]
    load_cpus: set[int]
    quick: bool
    rounds: int = 2
    only: frozenset[str] = PHASES
    inline_driver: bool = True


def split_cpus(spec: str | None) -> tuple[set[int], set[int]]:
    """Server cores and load-generator cores: half each by default (one each on two cores)."""
    cpus = sorted(os.sched_getaffinity(0))
    if spec:
        server = {int(x) for x in spec.split(",")}
        load = set(cpus) - server or set(cpus)
        return server, load
    if len(cpus) == 1:
        return set(cpus), set(cpus)
    half = len(cpus) // 2
    return set(cpus[:half]), set(cpus[half:])


def raw_argon2(cfg: Config, work: Path, seconds: float, *, loop: bool) -> dict[str, Any]:
    """The raw verify rate, pinned to the server cores: a tight loop (``loop``) or through
    asyncio.to_thread with as many in flight as there are login clients (bench/argon2_rate.py)."""
    t, m, p = ARGON2
    argv = [
        sys.executable,
        str(BENCH / "argon2_rate.py"),
        str(seconds),
        str(cfg.warmup),
        str(cfg.login_clients),
        str(t),
        str(m),
        str(p),
        *(["--loop"] if loop else []),
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=clean_env(), cwd=work)
    os.sched_setaffinity(proc.pid, cfg.server_cpus)
    out, _ = proc.communicate(timeout=seconds + cfg.warmup + 120)
    return json.loads(out)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def merge_argon2(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out = dict(parts[0])
    out["verifies"] = sum(p["verifies"] for p in parts)
    out["seconds"] = sum(p["seconds"] for p in parts)
    out["rate"] = out["verifies"] / out["seconds"]
    cpu = sum(p["cpu_ms_per_verify"] * p["verifies"] for p in parts)
    out["cpu_ms_per_verify"] = cpu / out["verifies"] if out["verifies"] else 0.0
    return out


async def throughput_phase(cfg: Config, work: Path) -> dict[str, Any]:
    """Login, /users/me and refresh on one server. Each pair that is compared (login and raw
    argon2, /users/me and the bare app) is measured in alternating windows, ``cfg.rounds`` each
    of ``duration / rounds`` seconds, so that load from other processes hits both alike."""

    def probe(p: Process) -> Callable[[], tuple[float, float]]:
        assert p.proc is not None
        return cpu_probe(p.proc.pid, cfg.server_cpus)

    window = cfg.duration / cfg.rounds
    data = work / "core-data"
    server, port = sproutgate_server(data, cfg.server_cpus, work, cfg.inline_driver)
    base = f"http://127.0.0.1:{port}"
    bare = None
    results: dict[str, Any] = {}
    try:
        n_users = 8
        log(f"signing up {n_users} users through the API")
        accounts = [f"bench{i}@bench.example" for i in range(n_users)]
        for i, email in enumerate(accounts):
            await asyncio.to_thread(sign_up, base, email, f"Bench User {i}", fake_ip(60000 + i))

        def login_clients() -> list[LoginClient]:
            return [LoginClient(accounts[i % n_users], fake_ip(i + 1)) for i in range(cfg.login_clients)]

        sessions: list[dict[str, Any]] = []
        if "login" in cfg.only:
            log(f"login vs argon2id tight loop and via to_thread, {cfg.rounds} rounds")
            loop_parts, argon_parts, login_parts = [], [], []
            for _ in range(cfg.rounds):
                loop_parts.append(await asyncio.to_thread(raw_argon2, cfg, work, window, loop=True))
                clients = login_clients()
                login_parts.append(await run_load(port, clients, window, cfg.warmup, probe(server)))
                sessions += [s for c in clients for s in c.sessions]
                argon_parts.append(await asyncio.to_thread(raw_argon2, cfg, work, window, loop=False))
            results["argon2_loop"] = merge_argon2(loop_parts)
            results["argon2"] = merge_argon2(argon_parts)
            results["login"] = LoadResult.merged(login_parts)
        while len(sessions) < 2 * cfg.clients:  # sessions for the next measurements
            clients = login_clients()
            await run_load(port, clients, 2.0, 0)
            sessions += [s for c in clients for s in c.sessions]

        if "me" in cfg.only:
            bare, bare_port = bare_server(data, cfg.server_cpus, work)
            me_clients = [
                FixedClient(bearer_get("/api/v1/users/me", sessions[i]["access_token"], fake_ip(i + 1)))
                for i in range(cfg.clients)
            ]
            bare_clients = [
                FixedClient(bearer_get("/me", sessions[i]["access_token"], fake_ip(i + 1)))
                for i in range(cfg.clients)
            ]
            log(f"GET /users/me vs bare JWT endpoint, {cfg.rounds} rounds")
            bare_parts, me_parts = [], []
            for _ in range(cfg.rounds):
                bare_parts.append(await run_load(bare_port, bare_clients, window, cfg.warmup, probe(bare)))
                me_parts.append(await run_load(port, me_clients, window, cfg.warmup, probe(server)))
            results["bare"] = LoadResult.merged(bare_parts)
            results["me"] = LoadResult.merged(me_parts)
            bare.stop()
            bare = None

        if "refresh" in cfg.only:
            log("refresh throughput")
            refreshers = [
                RefreshClient(sessions[cfg.clients + i]["refresh_token"], fake_ip(1000 + i))
                for i in range(cfg.clients)
            ]
            results["refresh"] = await run_load(port, refreshers, cfg.duration, cfg.warmup, probe(server))
            results["refresh_broken"] = sum(c.broken for c in refreshers)
    finally:
        if bare is not None:
            bare.stop()
        server.stop()
    return results


async def search_phase(cfg: Config, work: Path) -> dict[str, Any]:
    data = work / "search-data"
    log(f"building {cfg.users:,} users with the app's migrations + executemany")
    t0 = time.perf_counter()
    names, emails = await asyncio.to_thread(build_user_db, data, cfg.users, cfg.server_cpus, work)
    load_seconds = time.perf_counter() - t0
    log(f"  loaded in {load_seconds:.1f} s")
    server, port = sproutgate_server(data, cfg.server_cpus, work, cfg.inline_driver)
    try:
        session = await asyncio.to_thread(
            sign_up, f"http://127.0.0.1:{port}", "searcher@bench.example", "Searcher", fake_ip(70000)
        )
        auth = {"Authorization": f"Bearer {session['access_token']}", "X-Forwarded-For": fake_ip(70000)}

        def post(q: str) -> bytes:
            return request_bytes("POST", "/api/v1/users/search", headers=auth, body={"query": q})

        warm = search_queries(names, emails, max(10, cfg.per_class // 4), seed=1)
        await run_sequence(port, [post(q) for _, q in warm])
        queries = search_queries(names, emails, cfg.per_class, seed=2)
        log(f"search latency: {len(queries)} queries, one at a time")
        latencies, failures = await run_sequence(port, [post(q) for _, q in queries])
    finally:
        server.stop()
    by_class: dict[str, list[float]] = {}
    for (cls, _), lat in zip(queries, latencies, strict=True):
        by_class.setdefault(cls, []).append(lat)
    return {
        "latencies": latencies,
        "by_class": by_class,
        "failures": failures,
        "load_seconds": load_seconds,
        "db_bytes": sum(f.stat().st_size for f in data.glob("sproutgate.db*")),
    }


def report(cfg: Config, core: dict[str, Any], search: dict[str, Any], info: dict[str, str]) -> dict[str, str]:
    """The "Core API" and "Method" sections; parts that were not measured (--only) are left out."""
    n = len(cfg.server_cpus)
    refresh_target = REFRESH_PER_CORE * n

    def ms(r: LoadResult, p: float) -> str:
        return f"{r.percentile(p) * 1000:.1f}"

    def cost_row(label: str, r: LoadResult) -> str:
        return (
            f"| {label} | {cpu_per_request(r):.2f} ms | {others_share(r, n):.0%} | {ms(r, 50)} ms "
            f"| {ms(r, 95)} ms | {ms(r, 99)} ms |"
        )

    rows = [
        "| Measurement | Result | Compared with | Ratio | Target | |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    costs = [
        "| Endpoint | Server CPU per request | Other processes on the server cores | p50 | p95 | p99 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    notes = []
    if "login" in core:
        tight, argon, login = core["argon2_loop"], core["argon2"], core["login"]

        def login_row(label: str, raw: dict[str, Any], primary: bool) -> str:
            ratio = login.rate / raw["rate"] if raw["rate"] else 0.0
            cpu = cpu_per_request(login)
            cpu_ratio = raw["cpu_ms_per_verify"] / cpu if cpu else 0.0
            ok = verdict(ratio >= LOGIN_MIN_RATIO)
            target = f">= {LOGIN_MIN_RATIO} | {ok}" if primary else "- | reference"
            return (
                f"| Login, POST /api/v1/auth/sessions ({cfg.login_clients} clients) | {login.rate:.1f}/s"
                f"{status_note(login)} | {label} {raw['rate']:.1f}/s | {ratio:.2f} (CPU {cpu_ratio:.2f}) "
                f"| {target} |"
            )

        rows += [
            login_row(f"argon2id tight loop ({tight['threads']} thread(s))", tight, True),
            login_row(f"argon2id via asyncio.to_thread ({argon['concurrency']} in flight)", argon, False),
        ]
        costs += [
            cost_row("login", login),
            f"| argon2id tight loop | {tight['cpu_ms_per_verify']:.2f} ms | - | - | - | - |",
            f"| argon2id via asyncio.to_thread | {argon['cpu_ms_per_verify']:.2f} ms | - | - | - | - |",
        ]
        p = argon["params"]
        notes.append(
            f"argon2id at t={p['time_cost']} m={p['memory_kib']} KiB p={p['parallelism']}: tight loop "
            f"{tight['verifies']} verifies in {tight['seconds']:g} s on {tight['threads']} thread(s); "
            f"via asyncio.to_thread {argon['verifies']} verifies in {argon['seconds']:g} s, "
            f"{argon['pool_workers']} pool threads, {argon['concurrency']} in flight."
        )
    if "me" in core:
        me, bare = core["me"], core["bare"]
        ratio = me.rate / bare.rate if bare.rate else 0.0
        cpu_ratio = cpu_per_request(bare) / cpu_per_request(me) if cpu_per_request(me) else 0.0
        rows.append(
            f"| GET /api/v1/users/me ({cfg.clients} clients) | {me.rate:,.0f}/s{status_note(me)} "
            f"| bare FastAPI JWT check {bare.rate:,.0f}/s | {ratio:.2f} (CPU {cpu_ratio:.2f}) "
            f"| >= {ME_MIN_RATIO} | {verdict(ratio >= ME_MIN_RATIO)} |"
        )
        costs += [cost_row("/users/me", me), cost_row("bare JWT", bare)]
    if "refresh" in core:
        refresh = core["refresh"]
        rows.append(
            f"| Refresh, POST /api/v1/auth/sessions/refresh ({cfg.clients} clients, own chains) "
            f"| {refresh.rate:,.0f}/s{status_note(refresh)} | 8 x 120/s x {n} core(s) "
            f"= {refresh_target}/s | {refresh.rate / refresh_target:.2f} | >= 1.0 "
            f"| {verdict(refresh.rate >= refresh_target)} |"
        )
        costs.append(cost_row("refresh", refresh))
        notes.append(f"Refresh chains broken during the run: {core['refresh_broken']} of {cfg.clients}.")
    search_rows: list[str] = []
    if search:
        lat = search["latencies"]
        p50, p95 = percentile(lat, 50) * 1000, percentile(lat, 95) * 1000
        search_ok = p95 < SEARCH_P95_MS and not search["failures"]
        rows.append(
            f"| POST /api/v1/users/search over {cfg.users:,} users, p95 | {p95:.1f} ms (p50 {p50:.1f} ms) "
            f"| - | - | < {SEARCH_P95_MS:.0f} ms | {verdict(search_ok)} |"
        )
        search_rows = [
            f"Search latency, one query at a time over {cfg.users:,} generated users"
            f" (database {search['db_bytes'] / 2**20:,.0f} MiB,"
            f" bulk-loaded in {search['load_seconds']:.0f} s; failed queries: {search['failures']}):",
            "",
            "| Query | n | p50 | p95 | max |",
            "| --- | --- | --- | --- | --- |",
        ]
        for cls in ("1 chars", "2 chars", "3 chars", "5 chars", "8 chars", "exact email"):
            v = search["by_class"].get(cls, [])
            search_rows.append(
                f"| {cls.replace('1 chars', '1 char')} | {len(v)} | {percentile(v, 50) * 1000:.1f} ms "
                f"| {percentile(v, 95) * 1000:.1f} ms | {max(v, default=0) * 1000:.1f} ms |"
            )
        search_rows += [
            f"| all | {len(lat)} | {p50:.1f} ms | {p95:.1f} ms | {max(lat, default=0) * 1000:.1f} ms |",
            "",
        ]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    mode = " (quick smoke run: small data, short windows; not a result)" if cfg.quick else ""
    engine = "SQLite, defaults" if cfg.inline_driver else "SQLite, inline driver off, otherwise defaults"
    core_md = "\n".join(
        [
            "## Core API",
            "",
            f"Measured {when} by `bench/run_core.py`{mode}: one SproutGate process (`sproutgate serve`,"
            f" {engine}) pinned to {n} core(s) {sorted(cfg.server_cpus)}, the load generator"
            f" on {sorted(cfg.load_cpus)}; {cfg.duration:g} s per measurement (compared pairs in"
            f" {cfg.rounds} alternating windows each), after {cfg.warmup:g} s of warm-up per window."
            " Ratios are of throughput; the CPU ratio in brackets compares server CPU time per"
            " request, which other load on the machine disturbs far less. See *Method*.",
            "",
            *rows,
            "",
            "Server CPU time per answered request (the process and all its threads, from /proc), the"
            " share of the server cores other processes took meanwhile (the machine is shared: this"
            " is what makes throughput noisy), and latency under that load (closed loop, so it grows"
            " with the number of clients):",
            "",
            *(costs if len(costs) > 2 else []),
            "",
            *search_rows,
            " ".join(notes),
            "",
            "Machine:",
            "",
            f"- CPU: {info['cpu']}, {info['cores']} cores visible; server on {n}, "
            f"load generator on {len(cfg.load_cpus)}",
            f"- Python {info['python']}, SQLite {info['sqlite']}, {info['os']}",
            f"- {info['packages']}",
        ]
    )
    method_md = METHOD.format(
        clients=cfg.clients,
        login_clients=cfg.login_clients,
        duration=f"{cfg.duration:g}",
        warmup=f"{cfg.warmup:g}",
        rounds=cfg.rounds,
        users=f"{cfg.users:,}",
        per_class=cfg.per_class,
    ).strip()
    return {"Core API": core_md, "Method": method_md}


METHOD = """
## Method

`bench/run_core.py` (`make bench`; `--quick` for a smoke run) does everything in one run on
one machine, loopback only, and stops by itself.

- **Cores.** The machine's cores are split in two: the server processes (SproutGate, the bare
  JWT app, the raw argon2 measurements) are pinned to the first half, the load generator to the
  second, so the client never steals CPU from the server it measures. On a two-core machine that
  is one core each; "cores used" in the refresh target is the server's share.
- **Server.** A real `sproutgate serve` process on 127.0.0.1 with a fresh data dir and its
  defaults: SQLite (WAL), in-process rate limits, dev mailbox, log level `info`, argon2id at the
  OWASP parameters t=2, m=19456 KiB, p=1. Rate limits stay on; the per-IP refresh limit and the
  per-user search limit are raised so the run measures throughput rather than the limit, and each
  client sends its own address through `X-Forwarded-For` from the trusted loopback proxy. Users
  are signed up through the API (code read from the dev mailbox).
- **Load generator.** Closed loop: {clients} clients (login: {login_clients}), each on its own
  keep-alive connection, send the next request as soon as the previous answer arrives. It is a
  small HTTP/1.1 client on asyncio + uvloop (`bench/loadgen.py`) rather than httpx, whose CPU
  cost per request would make the client the bottleneck on one core and pull every ratio towards
  1. Each measurement runs {duration} s in all after {warmup} s of warm-up per window; the
  sides of a comparison (login and the two raw argon2 rates, /users/me and the bare app)
  alternate in {rounds} windows each, so that load from other processes on this shared machine
  falls on all alike. Every request that finishes inside a window counts, wherever it started:
  counting only those that also started inside would drop the requests in flight when the
  window opens (16 of about 175 logins in a 5 s window, against 1 verify of the tight loop).
  Only 200 answers count as throughput. The server's CPU time (all its threads, from /proc) is
  read at each window's edges: CPU per request is the steadier figure when the machine is busy,
  and the tables give the CPU ratio next to the throughput ratio.
- **Login vs the argon2id tight loop.** Login is POST /api/v1/auth/sessions with a correct
  password. Hashing is the only work a sign-in must wait on, so the bound is argon2-cffi's
  `verify` at the same parameters in a tight loop (`bench/argon2_rate.py --loop`): one plain
  thread per server core calling it back to back, no event loop, no pool, pinned to the same
  core(s). The ratio says how much of the hashing capacity a login leaves to hashing: what the
  HTTP, the read, the write transaction and the token signing cost on top of it, plus whatever
  the server loses to scheduling its hashes.
- **Login vs argon2id through asyncio.to_thread** (second row, for reference: the comparison
  used before the tight loop). The same `verify` called the way the server called it until it
  got a hash executor of its own (docs/decisions/argon2-hashes-one-per-core.md):
  `asyncio.to_thread` on the event loop's default pool (`min(32, cpu_count + 4)` threads) with
  as many verifies in flight as login clients. More hashing threads than cores time-slice one
  core between 19 MiB working sets, which costs cache misses when the machine is otherwise
  quiet; this rate is then below the tight loop, and a login can exceed it.
- **/users/me vs bare JWT.** The bare app (`bench/bare_jwt.py`) is FastAPI with one endpoint
  that parses the bearer header and verifies the same ES256 token with SproutGate's own
  `JwtSigner` and keys, and returns a small JSON body: no middleware, no database. It runs as its
  own uvicorn process with the settings `sproutgate serve` uses (uvloop, httptools, no access
  log), on the same core(s), measured right before /users/me with the same clients and tokens.
- **Refresh.** Each client owns a session from the login run and always presents the refresh
  token it got last, so every request is a real rotation (conditional update, new token row,
  session touch, new ES256 access token), none falls into the grace window.
- **Search.** A second data dir gets its schema from the app's own migrations (`sproutgate
  migrate`); {users} users with distinct generated display names (romanised and Chinese, several
  shapes) and their email rows are then inserted with `executemany` in one transaction; the FTS5
  trigram index is filled by the migration's triggers. No ANALYZE is run, as in a database that
  grew through the API. A fresh server on it answers queries one at a time from one signed-in
  user: {per_class} each of 1-, 2-, 3-, 5- and 8-character substrings of real names and exact
  emails (30 % in upper case), shuffled, after a warm-up pass with other queries. Latency is
  measured at the client, HTTP included.
- **SQLite driver.** `--no-inline-driver` runs the SproutGate server with
  `SPROUTGATE_SQLITE_INLINE_DRIVER=false` (plain aiosqlite) and only prints its report; the
  comparison is in *SQLite inline driver on and off*.
- **Reading the numbers.** The machine is shared with other work (the "other processes" column):
  throughput moves by tens of percent from one minute to the next, CPU per request much less.
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 20,000 users, 2 s windows")
    ap.add_argument("--users", type=int, help="users for the search benchmark (default 1,000,000)")
    ap.add_argument("--duration", type=float, help="seconds per measurement (default 20)")
    ap.add_argument("--warmup", type=float, help="warm-up seconds before each measurement (default 2)")
    ap.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    ap.add_argument("--login-clients", type=int, default=16, help="concurrent login clients (default 16)")
    ap.add_argument("--server-cpus", help="comma-separated CPU ids for the servers (default: first half)")
    ap.add_argument("--output", help="markdown file to update (default docs/benchmarks.md; quick: none)")
    ap.add_argument("--rounds", type=int, default=4, help="alternating windows per compared pair (default 4)")
    ap.add_argument("--only", help=f"comma-separated subset of {','.join(sorted(PHASES))} (no docs written)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data dirs and logs")
    ap.add_argument(
        "--no-inline-driver",
        action="store_true",
        help="run SproutGate with SPROUTGATE_SQLITE_INLINE_DRIVER=false (no docs written unless --output)",
    )
    args = ap.parse_args()
    only = frozenset(args.only.split(",")) if args.only else PHASES
    if not only <= PHASES:
        ap.error(f"--only takes {', '.join(sorted(PHASES))}")

    server_cpus, load_cpus = split_cpus(args.server_cpus)
    cfg = Config(
        users=args.users or (20_000 if args.quick else 1_000_000),
        duration=args.duration or (2.0 if args.quick else 20.0),
        warmup=args.warmup if args.warmup is not None else (0.5 if args.quick else 2.0),
        clients=args.clients,
        login_clients=args.login_clients,
        per_class=40 if args.quick else 200,
        server_cpus=server_cpus,
        load_cpus=load_cpus,
        quick=args.quick,
        rounds=max(1, args.rounds),
        only=only,
        inline_driver=not args.no_inline_driver,
    )
    os.sched_setaffinity(0, load_cpus)
    loop_name = install_uvloop()
    info = machine()
    log(f"server cpus {sorted(server_cpus)}, load cpus {sorted(load_cpus)}, load generator on {loop_name}")
    work = Path(tempfile.mkdtemp(prefix="sproutgate-bench-"))
    try:
        core = asyncio.run(throughput_phase(cfg, work)) if only - {"search"} else {}
        search = asyncio.run(search_phase(cfg, work)) if "search" in only else {}
    except BaseException:
        log(f"failed; logs kept in {work}")
        raise
    sections = report(cfg, core, search, info)
    text = sections["Core API"]
    print(text)
    partial = args.quick or args.only or args.no_inline_driver
    output = Path(args.output) if args.output else (None if partial else DOCS)
    if output is not None:
        existing = output.read_text(encoding="utf-8") if output.exists() else ""
        output.write_text(replace_sections(existing, sections), encoding="utf-8")
        log(f"wrote {output}")
    if args.keep:
        log(f"data and logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
