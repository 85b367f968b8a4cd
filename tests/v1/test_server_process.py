"""The runtime API served by a real `sproutgate serve` process over TCP."""

from __future__ import annotations

import itertools
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.servers import SERVE_ARGV, ServerProcess, SmtpServer

PASSWORD = "Sprout#2026pw"
CODE_TTL = 4
_ips = itertools.count(1)


def server_env(data_dir: Path, **extra: str) -> dict[str, str | None]:
    return {
        "SPROUTGATE_DATA_DIR": str(data_dir),
        "SPROUTGATE_DATABASE_URL": None,  # None: never inherit one from the environment
        "SPROUTGATE_SMTP_HOST": None,
        "SPROUTGATE_REDIS_URL": None,
        "SPROUTGATE_TRUSTED_PROXIES": "127.0.0.1",
        "SPROUTGATE_ARGON2_TIME_COST": "1",
        "SPROUTGATE_ARGON2_MEMORY_KIB": "1024",
        **extra,
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("served")
    proc = ServerProcess(
        server_env(root / "data", SPROUTGATE_CODE_TTL_SECONDS=str(CODE_TTL)), cwd=root, log_dir=root
    )
    with proc:
        yield proc


def client(server: ServerProcess) -> httpx.Client:
    """A client speaking as its own address (through the trusted-proxy header)."""
    n = next(_ips)
    return httpx.Client(
        base_url=server.base_url, headers={"X-Forwarded-For": f"10.200.{n // 250}.{n % 250 + 1}"}, timeout=15
    )


def mailed_code(server: ServerProcess, email: str) -> str:
    with httpx.Client(base_url=server.base_url, timeout=15) as local:  # the mailbox is for local clients
        messages = local.get("/dev/mailbox", params={"to": email}).json()
    found = re.search(r"(?<!\d)\d{6}(?!\d)", messages[0]["subject"])
    assert found, messages
    return found.group(0)


def test_sign_up_sign_in_refresh_and_sign_out(server):
    with client(server) as c:
        r = c.post(
            "/api/v1/auth/verifications",
            json={"email": "Proc@Example.com", "password": PASSWORD, "username": "proc"},
        )
        assert r.status_code == 202, r.text
        assert r.json() == {"email": "proc@example.com"}
        r = c.post(
            "/api/v1/auth/verifications/verify",
            json={"email": "proc@example.com", "token": mailed_code(server, "proc@example.com")},
        )
        assert r.status_code == 200, r.text
        first = r.json()

        r = c.post("/api/v1/auth/sessions", json={"email": "proc@example.com", "password": PASSWORD})
        assert r.status_code == 200, r.text
        session = r.json()
        me = c.get("/api/v1/users/me", headers={"Authorization": f"Bearer {session['access_token']}"})
        assert me.status_code == 200 and me.json()["username"] == "proc"

        r = c.post("/api/v1/auth/sessions/refresh", json={"refresh_token": session["refresh_token"]})
        assert r.status_code == 200, r.text
        fresh = r.json()
        assert fresh["refresh_token"] != session["refresh_token"]
        auth = {"Authorization": f"Bearer {fresh['access_token']}"}
        assert c.get("/api/v1/users/me", headers=auth).status_code == 200

        r = c.request("DELETE", "/api/v1/auth/sessions", json={"refresh_token": fresh["refresh_token"]})
        assert r.status_code == 204
        r = c.get("/api/v1/users/me", headers=auth)
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")
        # the sign-up session is separate and still good
        assert (
            c.get(
                "/api/v1/users/me", headers={"Authorization": f"Bearer {first['access_token']}"}
            ).status_code
            == 200
        )


def test_served_errors_and_infra(server):
    with client(server) as c:
        assert c.get("/health").json() == {"status": "ok"}
        health = c.get("/api/v1/infra/health").json()
        assert health["status"] == "healthy" and health["services"]["database"]["status"] == "healthy"
        r = c.get("/api/v1/nowhere", headers={"Accept-Language": "en"})
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
        r = c.post(
            "/api/v1/auth/sessions", content=b"x" * (65 * 1024), headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 413
        assert c.get("/openapi.json").status_code == 200
        assert c.get("/.well-known/jwks.json").json()["keys"]
    with httpx.Client(base_url=server.base_url, headers={"X-Forwarded-For": "203.0.113.9"}) as remote:
        assert remote.get("/dev/mailbox").status_code == 404


def test_signing_keys_are_private_files(server):
    data_dir = Path(server.env["SPROUTGATE_DATA_DIR"])
    keys = list((data_dir / "keys").glob("*"))
    assert any(k.name.startswith("jwt-") for k in keys)
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key


def test_code_expires_in_the_configured_window(server):
    with client(server) as c:
        r = c.post(
            "/api/v1/auth/verifications",
            json={"email": "slow@example.com", "password": PASSWORD, "username": "slow"},
        )
        assert r.status_code == 202
        code = mailed_code(server, "slow@example.com")
        time.sleep(CODE_TTL + 0.5)
        r = c.post("/api/v1/auth/verifications/verify", json={"email": "slow@example.com", "token": code})
        assert r.status_code == 401


def test_code_arrives_by_smtp_and_the_dev_mailbox_is_gone(tmp_path):
    with SmtpServer() as smtp:
        env = server_env(
            tmp_path / "data",
            SPROUTGATE_SMTP_HOST=smtp.host,
            SPROUTGATE_SMTP_PORT=str(smtp.port),
            SPROUTGATE_SMTP_SECURITY="none",
            SPROUTGATE_MAIL_FROM="SproutGate <auth@sprout.test>",
        )
        with ServerProcess(env, cwd=tmp_path, log_dir=tmp_path) as proc, client(proc) as c:
            with httpx.Client(base_url=proc.base_url) as local:
                assert local.get("/dev/mailbox").status_code == 404
            r = c.post(
                "/api/v1/auth/verifications",
                json={"email": "wire@example.com", "password": PASSWORD, "username": "wired"},
            )
            assert r.status_code == 202, r.text
            message = smtp.wait_for(lambda m: m.sent_to("wire@example.com"), timeout=20)
            assert message.mail_from == "auth@sprout.test"
            code = re.search(r"(?<!\d)\d{6}(?!\d)", message.subject).group(0)
            assert code in (message.text or "")
            r = c.post("/api/v1/auth/verifications/verify", json={"email": "wire@example.com", "token": code})
            assert r.status_code == 200, r.text
            r = c.post("/api/v1/auth/sessions", json={"email": "wire@example.com", "password": PASSWORD})
            assert r.status_code == 200


def _access_lines(log: str, path: str) -> list[str]:
    return [line for line in log.splitlines() if "sproutgate.access" in line and f'"GET {path}"' in line]


def test_every_worker_writes_the_access_log(tmp_path):
    """`serve --workers 2` runs each worker from sproutgate.asgi, which sets logging up itself."""
    env = server_env(tmp_path / "data")
    argv = [*SERVE_ARGV, "--workers", "2"]
    with ServerProcess(env, cwd=tmp_path, log_dir=tmp_path, argv=argv) as proc:
        for _ in range(20):  # new connections, so both workers are likely to answer some
            assert httpx.get(proc.base_url + "/api/v1/health?token=secret-in-query").status_code == 200
        deadline = time.monotonic() + 10
        while len(_access_lines(proc.log_text(), "/api/v1/health")) < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        log = proc.log_text()
    assert len(_access_lines(log, "/api/v1/health")) == 20, log[-3000:]
    assert "secret-in-query" not in log
    assert "rate limits are counted per process" in log  # the warning about running without Redis


def test_access_log_can_be_turned_off(tmp_path):
    env = server_env(tmp_path / "data", SPROUTGATE_ACCESS_LOG="false", SPROUTGATE_LOG_LEVEL="info")
    with ServerProcess(env, cwd=tmp_path, log_dir=tmp_path) as proc:
        assert httpx.get(proc.base_url + "/api/v1/health").status_code == 200
        # Stopped, the process has written all it ever will: an access line would be there.
        proc.stop()
        log = proc.log_text()
    assert not _access_lines(log, "/api/v1/health") and "sproutgate.access" not in log
    assert "Application startup complete" in log  # the rest of the log at info is still there


@pytest.mark.parametrize("how", ["SPROUTGATE_PORT", "--port with --workers 2"])
def test_mailed_links_name_the_address_served_without_a_public_url(tmp_path, how):
    """Issue 15: without SPROUTGATE_PUBLIC_URL, links said http://127.0.0.1:8080 whatever the
    port; they name the address served, set by SPROUTGATE_PORT or by --port (every worker)."""
    env = server_env(tmp_path / "data", SPROUTGATE_PUBLIC_URL=None)  # type: ignore[arg-type]
    if how == "SPROUTGATE_PORT":
        proc = ServerProcess(env, cwd=tmp_path, log_dir=tmp_path, argv=[*SERVE_ARGV[:4]])
        proc.env.update(SPROUTGATE_HOST=proc.host, SPROUTGATE_PORT=str(proc.port))
    else:
        proc = ServerProcess(env, cwd=tmp_path, log_dir=tmp_path, argv=[*SERVE_ARGV, "--workers", "2"])
    with proc:
        texts = []
        for n in range(4):  # new connections: with two workers, both are likely to mail one
            email = f"port{n}@example.com"
            body = {"email": email, "password": PASSWORD, "username": f"port{n}"}
            with client(proc) as c:
                assert c.post("/api/v1/auth/verifications", json=body).status_code == 202
            deadline = time.monotonic() + 10
            while not (mail := httpx.get(proc.base_url + "/dev/mailbox", params={"to": email}).json()):
                assert time.monotonic() < deadline
                time.sleep(0.1)
            texts.append(mail[0]["text"])
    assert proc.port != 8080
    for text in texts:
        assert f"{proc.base_url}/register/verify?email=" in text, text
        assert not re.search(r"//[^/\s]*:8080\b", text), text  # a code may start with 8080


def test_the_dev_mailbox_link_printed_at_start_opens_the_mailbox_when_bound_to_every_address(tmp_path):
    """`sproutgate serve --host 0.0.0.0` printed http://0.0.0.0:PORT/dev/mailbox, which the
    mailbox refuses (it answers loopback Host names only, against DNS rebinding): the link
    names the address this machine reaches the server by, as mailed links do."""
    env = server_env(tmp_path / "data", SPROUTGATE_PUBLIC_URL=None)  # type: ignore[arg-type]
    proc = ServerProcess(env, cwd=tmp_path, log_dir=tmp_path, host="0.0.0.0")  # noqa: S104 - the case itself
    with proc:
        found = re.search(r"Dev mailbox \(no SMTP configured\): (\S+)", proc.log_text())
        assert found, proc.log_text()[-2000:]
        r = httpx.get(found.group(1), timeout=15)
        assert r.status_code == 200 and r.json() == [], (found.group(1), r.text)
    assert found.group(1) == f"http://127.0.0.1:{proc.port}/dev/mailbox"
