"""Mail: the dev mailbox without SMTP (local clients only), real SMTP when configured."""

from __future__ import annotations

import asyncio
from datetime import datetime

import httpx
import pytest
from v1_support import CODE_IN_TEXT, PASSWORD, assert_problem, request_code

LOCAL = {"X-Forwarded-For": "127.0.0.1", "Host": "localhost"}  # a local client naming localhost


async def test_dev_mailbox_lists_messages_newest_first(harness):
    await request_code(harness, "one@example.com")
    await request_code(harness, "two@example.com")
    r = await harness.client.get("/dev/mailbox", headers=LOCAL)
    assert r.status_code == 200
    messages = r.json()
    assert [m["to"] for m in messages[:2]] == ["two@example.com", "one@example.com"]
    for m in messages:
        assert {"to", "subject", "text", "time"} <= m.keys()
        datetime.fromisoformat(m["time"].replace("Z", "+00:00"))
    only = (await harness.client.get("/dev/mailbox", params={"to": "ONE@example.com"}, headers=LOCAL)).json()
    assert [m["to"] for m in only] == ["one@example.com"]


async def test_mail_follows_the_callers_language(harness):
    r = await harness.client.post(
        "/api/v1/auth/verifications",
        json={"email": "lang@example.com", "password": PASSWORD, "username": "lingo"},
        headers={"Accept-Language": "en"},
    )
    assert r.status_code == 202
    [mail] = await harness.mailbox("lang@example.com")
    assert mail["subject"].startswith("[SproutGate]") and "code" in mail["text"]


@pytest.mark.parametrize(
    "peer, headers",
    [
        ("192.0.2.10", {}),  # a remote socket peer
        (
            "127.0.0.1",
            {"X-Forwarded-For": "198.51.100.7"},
        ),  # a local reverse proxy forwarding a remote client
        ("127.0.0.1", {"X-Forwarded-For": "127.0.0.1, 198.51.100.7"}),
        ("127.0.0.1", {"X-Real-IP": "198.51.100.7"}),
        ("127.0.0.1", {"Forwarded": "for=198.51.100.7;proto=https"}),
    ],
)
async def test_dev_mailbox_answers_local_clients_only(harness, peer, headers):
    await request_code(harness, "private@example.com")
    transport = httpx.ASGITransport(app=harness.app, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as remote:
        r = await remote.get("/dev/mailbox", headers=headers)
    assert r.status_code == 404
    assert "private@example.com" not in r.text


@pytest.mark.parametrize(
    "host",
    [
        "rebind.attacker.example",  # a DNS-rebinding page: its own name, resolved to 127.0.0.1
        "rebind.attacker.example:8080",
        "localhost.attacker.example",
        "127.0.0.1.nip.io",
        "localhost.",
        "testserver",
        "",
        "[::1",
        "localhost:80x",
        "::1",
    ],
)
async def test_dev_mailbox_answers_loopback_host_names_only(harness, host):
    await request_code(harness, "rebound@example.com")
    r = await harness.client.get("/dev/mailbox", headers={"X-Forwarded-For": "127.0.0.1", "Host": host})
    assert_problem(r, 404)
    assert "rebound@example.com" not in r.text


@pytest.mark.both_engines
@pytest.mark.parametrize(
    "host", ["localhost", "LocalHost:8080", "127.0.0.1", "127.0.0.1:9", "127.3.2.1:80", "[::1]", "[::1]:8080"]
)
async def test_dev_mailbox_opens_to_loopback_host_names_with_any_port(harness, host):
    await request_code(harness, "looped@example.com")
    r = await harness.client.get("/dev/mailbox", headers={"X-Forwarded-For": "127.0.0.1", "Host": host})
    assert r.status_code == 200, r.text
    assert [m["to"] for m in r.json()] == ["looped@example.com"]


async def test_dev_mailbox_is_404_when_smtp_is_configured(make_harness, make_settings, smtp_server):
    h = await make_harness(
        make_settings(smtp_host=smtp_server.host, smtp_port=smtp_server.port, smtp_security="none")
    )
    r = await h.client.get("/dev/mailbox", headers=LOCAL)
    assert_problem(r, 404)


async def test_code_arrives_over_smtp_and_works(make_harness, make_settings, smtp_server):
    h = await make_harness(
        make_settings(
            smtp_host=smtp_server.host,
            smtp_port=smtp_server.port,
            smtp_security="none",
            mail_from="SproutGate <auth@sprout.test>",
        )
    )
    r = await h.client.post(
        "/api/v1/auth/verifications",
        json={"email": "smtp@example.com", "password": PASSWORD, "username": "mailer"},
    )
    assert r.status_code == 202
    message = await asyncio.to_thread(smtp_server.wait_for, lambda m: m.sent_to("smtp@example.com"), 15)
    assert message.mail_from == "auth@sprout.test"
    assert message.message_id
    code = CODE_IN_TEXT.search(message.subject).group(0)
    assert code in message.text
    r = await h.client.post(
        "/api/v1/auth/verifications/verify", json={"email": "smtp@example.com", "token": code}
    )
    assert r.status_code == 200, r.text
