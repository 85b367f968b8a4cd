"""Several processes started at the same moment on a fresh database and a fresh data dir:
the schema is migrated once, and all of them end up with the same signing key, code-hashing
key, outbox key and admin token."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest

from support.servers import ServerProcess

from .cluster import PASSWORD, bearer, client, mailed_code, server_env, sql, start_all

pytestmark = pytest.mark.slow

PROCESSES = 4


@pytest.mark.parametrize("engine", [pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"])
async def test_processes_starting_together_migrate_once_and_share_keys(engine, request, tmp_path):
    data = tmp_path / "data"
    url, dsn = "", ""
    if engine == "postgres":
        pg = request.getfixturevalue("postgres_server")
        url = pg.create_database("first_start")
        dsn = pg.dsn("first_start")
    servers = [
        ServerProcess(env=server_env(data, url), log_dir=tmp_path / "logs", name=f"first{i}")
        for i in range(PROCESSES)
    ]
    start_all(servers)
    try:
        urls = [s.base_url for s in servers]
        keys = sorted(p.name for p in (data / "keys").iterdir() if not p.name.startswith("."))
        assert len([k for k in keys if k.startswith("jwt-es256-")]) == 1, keys
        assert "code-hmac.key" in keys and "outbox.key" in keys, keys
        jwks = []
        for url_ in urls:
            async with client(url_) as c:
                jwks.append((await c.get("/.well-known/jwks.json")).json())
        assert all(j == jwks[0] for j in jwks) and len(jwks[0]["keys"]) == 1

        if dsn:
            versions = [r["version_num"] for r in await sql(dsn, "SELECT version_num FROM alembic_version")]
        else:
            with sqlite3.connect(data / "sproutgate.db") as db:
                versions = [r[0] for r in db.execute("SELECT version_num FROM alembic_version")]
        assert len(versions) == 1, versions

        # A code mailed by one process checks out on another (same code-hashing key), and a
        # token signed by one is accepted by every other (same signing key).
        async with client(urls[0]) as c:
            body = {"email": "first@example.com", "password": PASSWORD, "username": "first"}
            assert (await c.post("/api/v1/auth/verifications", json=body)).status_code == 202
        # Read from another process's dev mailbox: it opens mail sealed by the first (same outbox key).
        code = await mailed_code(urls[2], "first@example.com")
        async with client(urls[1]) as c:
            r = await c.post(
                "/api/v1/auth/verifications/verify", json={"email": body["email"], "token": code}
            )
            assert r.status_code == 200, r.text
            session = r.json()

        admin_token = json.loads((data / "config" / "admin.json").read_text())["token"]

        async def check(url_: str) -> tuple[int, int]:
            async with client(url_) as c:
                me = await c.get("/api/v1/users/me", headers=bearer(session["access_token"]))
                admin = await c.get("/api/admin/users", headers={"X-Admin-Token": admin_token})
                return me.status_code, admin.status_code

        assert await asyncio.gather(*(check(u) for u in urls)) == [(200, 200)] * PROCESSES
    finally:
        for s in servers:
            s.close()
