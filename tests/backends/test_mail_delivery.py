"""Mail through the outbox with a real SMTP server: nothing is lost while the server is down,
nothing goes out twice even with two instances sending from one outbox, and mail that keeps
failing is visible (admin API and CLI), counted, and can be sent again."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections import Counter

import pytest

from support.servers import ServerProcess, SmtpServer
from support.waiting import wait_until

from .cluster import CODE, PASSWORD, client, server_env, start_all

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SENDER = "SproutGate <no-reply@sproutgate.test>"


@pytest.fixture(scope="module")
def smtp():
    with SmtpServer() as server:
        yield server


def smtp_settings(smtp: SmtpServer) -> dict:
    return {
        "smtp_host": smtp.host,
        "smtp_port": smtp.port,
        "smtp_security": "none",
        "smtp_timeout_seconds": 3,
        "mail_from": SENDER,
        "mail_retry_base_seconds": 0.2,
        "mail_retry_max_seconds": 1,
    }


@pytest.fixture(scope="module")
def senders(postgres_server, smtp, tmp_path_factory):
    base = tmp_path_factory.mktemp("mail")
    env = server_env(base / "data", postgres_server.create_database("mail_delivery"), **smtp_settings(smtp))
    a = ServerProcess(env=env, log_dir=base / "logs", name="mail-a")
    b = ServerProcess(env=env, log_dir=base / "logs", name="mail-b")
    start_all([a, b])
    try:
        yield a, b, (base / "data" / "config" / "admin.json")
    finally:
        a.close()
        b.close()


async def _request_codes(urls: list[str], emails: list[str]) -> None:
    async def one(url: str, email: str) -> None:
        async with client(url) as c:
            body = {"email": email, "password": PASSWORD, "username": "mailer"}
            r = await c.post("/api/v1/auth/verifications", json=body)
            assert r.status_code == 202, r.text

    await asyncio.gather(*(one(urls[i % len(urls)], e) for i, e in enumerate(emails)))


async def _outbox(url: str, admin_token: str, **params: str) -> dict:
    async with client(url) as c:
        r = await c.get("/api/admin/outbox", params=params, headers={"X-Admin-Token": admin_token})
        assert r.status_code == 200, r.text
        return r.json()


async def test_codes_mailed_while_smtp_is_down_arrive_once_it_is_back(smtp, senders):
    a, b, admin_file = senders
    urls = [a.base_url, b.base_url]
    token = json.loads(admin_file.read_text())["token"]
    before = [f"up{i}@example.com" for i in range(6)]
    during = [f"down{i}@example.com" for i in range(10)]

    await _request_codes(urls, before)
    smtp.wait_for_count(len(before), timeout=20)
    smtp.stop()
    try:
        await _request_codes(urls, during)  # answered at once: the mail waits in the outbox

        async def retrying() -> dict:
            for _ in range(50):
                view = await _outbox(a.base_url, token, status="pending")
                if view["counts"]["retrying"] >= len(during):
                    return view
                await asyncio.sleep(0.2)
            raise AssertionError(f"mail not retried: {view}")

        view = await retrying()
        assert all(m["attempts"] >= 1 and m["lastError"] for m in view["messages"]), view
    finally:
        smtp.start()

    received = smtp.wait_for_count(len(before) + len(during), timeout=30)
    await asyncio.sleep(2.0)  # long enough for a duplicate to show up, were one sent
    received = smtp.messages
    ids = Counter(m.message_id for m in received)
    assert len(received) == len(before) + len(during), [(m.rcpt_tos, m.message_id) for m in received]
    assert all(n == 1 for n in ids.values()) and all(i.startswith("<") for i in ids), ids
    assert Counter(m.rcpt_tos[0] for m in received) == Counter(before + during)
    assert all(m.from_ == SENDER for m in received)
    # The codes still work, on either instance.
    for i, email in enumerate(during):
        message = next(m for m in received if m.sent_to(email))
        code = CODE.search(message.subject or "") or CODE.search(message.text or "")
        assert code, message.subject
        async with client(urls[(i + 1) % 2]) as c:
            r = await c.post(
                "/api/v1/auth/verifications/verify", json={"email": email, "token": code.group(0)}
            )
            assert r.status_code == 200, r.text
    counts = (await _outbox(b.base_url, token))["counts"]
    assert counts["failed"] == 0 and counts["pending"] == 0 and counts["sending"] == 0
    assert counts["sent"] == len(before) + len(during)


@pytest.mark.both_engines
async def test_mail_that_keeps_failing_is_listed_counted_and_sent_on_retry(make_harness, make_settings):
    with SmtpServer() as smtp:
        smtp.reject_with = "451 4.3.0 Mailbox busy, try again later"
        settings = make_settings(
            **{**smtp_settings(smtp), "mail_max_attempts": 2, "mail_retry_base_seconds": 0.05}
        )
        h = await make_harness(settings)
        admin = {"X-Admin-Token": h.services.admin_guard.token}
        r = await h.client.post(
            "/api/v1/auth/verifications",
            json={"email": "stuck@example.com", "password": PASSWORD, "username": "stuck"},
        )
        assert r.status_code == 202

        async def failed_view() -> dict | None:
            view = (
                await h.client.get("/api/admin/outbox", params={"status": "failed"}, headers=admin)
            ).json()
            # counts and the list are two reads: wait until both saw the final state
            return view if view["total"] and view["counts"]["failed"] else None

        view = await wait_until(failed_view, 20, what="the mail to fail")  # the machine may be busy
        assert view["counts"]["failed"] == 1 and view["total"] == 1, view
        failed = view["messages"][0]
        assert failed["to"] == "stuck@example.com" and failed["attempts"] == 2
        assert "451" in failed["lastError"] and failed["status"] == "failed"
        assert "text" not in failed and "body" not in failed  # bodies carry codes
        assert (await h.client.get("/api/admin/outbox")).status_code == 401

        # The command line shows the same.
        listed = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "sproutgate", "outbox", "--failed", "--json"],
            env=_cli_env(settings),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        out = json.loads(listed.stdout)
        assert out["counts"]["failed"] == 1 and [m["id"] for m in out["messages"]] == [failed["id"]]
        # Both show the subject with its code masked (the row itself holds it sealed).
        assert out["messages"][0]["subject"] == failed["subject"]
        assert "******" in failed["subject"] and not re.search(r"\d{6}", failed["subject"])

        smtp.reject_with = None
        r = await h.client.post(f"/api/admin/outbox/{failed['id']}/retry", headers=admin)
        assert r.status_code == 200, r.text
        # In a thread: the app sending it runs on this event loop.
        message = await asyncio.to_thread(smtp.wait_for, lambda m: m.sent_to("stuck@example.com"), 10)
        assert message.message_id == failed["messageId"]  # the same message, not a new one

        async def settled() -> dict | None:
            counts = (await h.client.get("/api/admin/outbox", headers=admin)).json()["counts"]
            return counts if counts["sent"] and not counts["pending"] and not counts["sending"] else None

        # Once the outbox has nothing left to send, every send has happened: no second copy.
        counts = await wait_until(settled, 10, what="the outbox to settle")
        assert len(smtp.messages_to("stuck@example.com")) == 1
        assert counts["failed"] == 0 and counts["sent"] == 1
        r = await h.client.post(f"/api/admin/outbox/{failed['id']}/retry", headers=admin)
        assert r.status_code == 404


def _cli_env(settings) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("SPROUTGATE_")}
    env["SPROUTGATE_DATA_DIR"] = str(settings.data_dir)
    env["SPROUTGATE_DATABASE_URL"] = settings.database_url
    return env


def test_cli_outbox_retry_needs_an_id_or_all_failed():
    r = subprocess.run(
        [sys.executable, "-m", "sproutgate", "outbox", "retry"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2 and re.search("--all-failed", r.stderr)
