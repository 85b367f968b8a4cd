"""The whole path: a real `sproutgate serve` process whose model is a scripted OpenAI-compatible
server (tests/support/fake_openai.py) speaking chat completions with streamed chunks and tool calls."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from agent_support import KEEPALIVE, parse_sse, sse_blocks, types

from support.fake_openai import Delay, Fail, FakeOpenAI, Hang, Text, ToolCall, ToolCalls
from support.servers import ServerProcess
from support.waiting import wait_until

pytestmark = pytest.mark.slow

AGENT_TIMEOUT = 3
KEEPALIVE_SECONDS = 0.4


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-e2e", model="fake-chat") as fake:
        yield fake


@pytest.fixture(scope="module")
def server(llm: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("agent-e2e")
    env: dict[str, str | None] = {
        "SPROUTGATE_DATA_DIR": str(data_dir / "data"),
        "SPROUTGATE_TRUSTED_PROXIES": "127.0.0.1",
        "SPROUTGATE_ARGON2_TIME_COST": "1",
        "SPROUTGATE_ARGON2_MEMORY_KIB": "1024",
        "SPROUTGATE_AGENT_TIMEOUT_SECONDS": str(AGENT_TIMEOUT),
        "SPROUTGATE_AGENT_SSE_KEEPALIVE_SECONDS": str(KEEPALIVE_SECONDS),
        "SPROUTGATE_DATABASE_URL": None,
        "SPROUTGATE_REDIS_URL": None,
        "SPROUTGATE_SMTP_HOST": None,
        **llm.env(),
    }
    proc = ServerProcess(env=env, cwd=data_dir, log_dir=data_dir)
    proc.start()
    try:
        yield proc
    finally:
        proc.close()


@pytest.fixture
def fake(llm: FakeOpenAI) -> Iterator[FakeOpenAI]:
    llm.reset()
    yield llm
    llm.reset()


@pytest.fixture
async def client(server: ServerProcess) -> Any:
    # No X-Forwarded-For: the dev mailbox answers loopback callers only.
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as c:
        yield c


async def signed_in(client: httpx.AsyncClient, email: str, username: str = "sprout") -> dict[str, str]:
    r = await client.post(
        "/api/v1/auth/verifications", json={"email": email, "password": "Sprout#2026pw", "username": username}
    )
    assert r.status_code == 202, r.text
    r = await client.get("/dev/mailbox", params={"to": email})
    assert r.status_code == 200, r.text
    mails = r.json()
    code = next(m.group(1) for mail in mails if (m := re.search(r"\b(\d{6})\b", mail["subject"])))
    r = await client.post("/api/v1/auth/verifications/verify", json={"email": email, "token": code})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}", "Accept-Language": "en"}


async def run(
    client: httpx.AsyncClient, auth: dict[str, str], message: str, session_id: str | None = None
) -> dict:
    body: dict[str, Any] = {"message": message}
    if session_id:
        body["session_id"] = session_id
    r = await client.post("/api/v1/agent-chats", json=body, headers=auth)
    assert r.status_code == 200, r.text
    return r.json()


async def test_tool_calls_and_answer_through_the_real_server(client, fake):
    auth = await signed_in(client, "e2e-tools@example.com", username="Gardener")
    fake.script(
        ToolCalls(ToolCall("get_my_profile")),
        ToolCalls(ToolCall("update_my_profile", {"bio": "Grows sprouts"})),
        Text("Done, Gardener: your bio now says Grows sprouts."),
    )
    body = await run(client, auth, "Please set my bio to 'Grows sprouts'.")
    events = body["events"]
    assert types(events)[:5] == ["run_started", "tool_call", "tool_result", "tool_call", "tool_result"]
    assert set(types(events)[5:-1]) == {"text_delta"} and types(events)[-1] == "run_finished"
    assert body["output"] == "Done, Gardener: your bio now says Grows sprouts."
    assert '"username": "Gardener"' in events[2]["result"]
    assert events[4]["tool_name"] == "update_my_profile" and "Profile updated" in events[4]["result"]
    me = (await client.get("/api/v1/users/me", headers=auth)).json()
    assert me["bio"] == "Grows sprouts"

    # what went over the wire to the model
    assert len(fake.requests) == 3
    first, _, last = fake.requests
    assert all(r.stream and r.body["model"] == "fake-chat" for r in fake.requests)
    assert first.headers["authorization"] == "Bearer sk-e2e"
    assert sorted(first.tool_names) == ["get_my_profile", "search_users", "update_my_profile"]
    assert first.messages[0]["role"] == "system" and "untrusted_user_content" in first.messages[0]["content"]
    assert first.last_user_text == "Please set my bio to 'Grows sprouts'."
    tool_messages = last.tool_results()
    assert [m["tool_call_id"] for m in tool_messages] == ["call_1", "call_2"]
    assert "Profile updated" in tool_messages[1]["content"]

    # the conversation was saved, tool calls included
    r = await client.get(f"/api/v1/agent-chats/{body['session_id']}", headers=auth)
    assert [m["role"] for m in r.json()["messages"]] == [
        "user",
        "tool_call",
        "tool_result",
        "tool_call",
        "tool_result",
        "assistant",
    ]


async def test_events_stream_as_they_happen(client, fake):
    auth = await signed_in(client, "e2e-sse@example.com")
    fake.script(Text("one two three four five six seven", chunk_size=5, chunk_delay=0.15))
    arrivals: list[tuple[float, str, dict]] = []
    started = time.monotonic()
    async with client.stream(
        "POST",
        "/api/v1/agent-chats",
        json={"message": "count slowly"},
        headers={**auth, "Accept": "text/event-stream"},
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        buffer = ""
        async for chunk in r.aiter_text():
            buffer += chunk
            while "\n\n" in buffer:
                frame, buffer = buffer.split("\n\n", 1)
                for name, data in parse_sse(frame + "\n\n"):
                    arrivals.append((time.monotonic() - started, name, data))
    names = [name for _, name, _ in arrivals]
    assert names[0] == "run_started" and names[-1] == "run_finished"
    assert set(names[1:-1]) == {"text_delta"} and len(names) == 9
    deltas = [(t, d) for t, name, d in arrivals if name == "text_delta"]
    assert "".join(d["delta"] for _, d in deltas) == "one two three four five six seven"
    # the deltas arrived spread over the upstream's pace, not all at the end
    assert deltas[-1][0] - deltas[0][0] > 0.5
    session_id = arrivals[0][2]["session_id"]
    r = await client.get(f"/api/v1/agent-chats/{session_id}", headers=auth)
    assert r.json()["messages"][-1] == {
        "role": "assistant",
        "content": "one two three four five six seven",
        "created_at": r.json()["messages"][-1]["created_at"],
    }


async def test_a_slow_upstream_gets_keep_alives_while_it_thinks(client, fake):
    auth = await signed_in(client, "e2e-keepalive@example.com")
    fake.script(Delay(2, Text("Worth the wait.")))
    raw = ""
    keepalive_times: list[float] = []
    started = time.monotonic()
    async with client.stream(
        "POST",
        "/api/v1/agent-chats",
        json={"message": "think hard"},
        headers={**auth, "Accept": "text/event-stream"},
    ) as r:
        assert r.status_code == 200
        async for chunk in r.aiter_text():
            raw += chunk
            keepalive_times += [time.monotonic() - started] * chunk.count(KEEPALIVE)
    blocks = sse_blocks(raw)
    kinds = [b if b == KEEPALIVE else b[0] for b in blocks]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    first_delta = kinds.index("text_delta")
    assert set(kinds[1:first_delta]) == {KEEPALIVE} and first_delta >= 3
    assert KEEPALIVE not in kinds[first_delta:]  # the answer streams fast: no comments needed
    # written on the wire while the upstream was still silent, not held back
    assert keepalive_times[0] < 2 - KEEPALIVE_SECONDS
    events = [b[1] for b in blocks if b != KEEPALIVE]
    assert "".join(e["delta"] for e in events if e["type"] == "text_delta") == "Worth the wait."
    assert events[-1]["output"] == "Worth the wait."


async def test_a_slow_upstream_ends_in_run_error(client, fake):
    auth = await signed_in(client, "e2e-slow@example.com")
    fake.script(Text("first"))
    session_id = (await run(client, auth, "hello"))["session_id"]
    fake.script(Delay(60))
    started = time.monotonic()
    body = await run(client, auth, "are you there?", session_id)
    elapsed = time.monotonic() - started
    assert AGENT_TIMEOUT - 0.5 < elapsed < AGENT_TIMEOUT + 5
    assert types(body["events"]) == ["run_started", "run_error"]
    assert (
        body["events"][-1]["error"]
        == f"The model did not finish within {AGENT_TIMEOUT} seconds. Try again later."
    )
    assert body["output"] == ""
    await wait_until(lambda: fake.requests[-1].aborted, 5, what="the upstream request to be abandoned")
    r = await client.get(f"/api/v1/agent-chats/{session_id}", headers=auth)
    assert [m["role"] for m in r.json()["messages"]] == ["user", "assistant"]  # the failed turn left no trace


async def test_a_failing_upstream_ends_in_run_error(client, fake):
    auth = await signed_in(client, "e2e-fail@example.com")
    fake.script(Fail(500), Fail(500))  # the SDK retries once
    body = await run(client, auth, "hello")
    assert types(body["events"]) == ["run_started", "run_error"]
    assert body["events"][-1]["error"] == "The model service failed (HTTP 500). Try again later."
    assert len(fake.requests) == 2
    r = await client.get(f"/api/v1/agent-chats/{body['session_id']}", headers=auth)
    assert r.status_code == 200 and r.json()["messages"] == []


async def test_a_client_that_disconnects_cancels_the_run(client, fake):
    auth = await signed_in(client, "e2e-gone@example.com")
    fake.script(Hang())
    async with client.stream(
        "POST",
        "/api/v1/agent-chats",
        json={"message": "wait for me"},
        headers={**auth, "Accept": "text/event-stream"},
    ) as r:
        first_frame = ""
        # Keep a reference to the iterator: an abandoned one is finalized, which closes the
        # connection before we mean to.
        chunks = r.aiter_text()
        async for chunk in chunks:
            first_frame += chunk
            if "\n\n" in first_frame:
                break
        session_id = parse_sse(first_frame)[0][1]["session_id"]
        await wait_until(lambda: len(fake.requests) == 1, 5, what="the model to be called")
    # leaving the block closed the connection mid-stream
    await wait_until(lambda: fake.requests[0].aborted, AGENT_TIMEOUT - 0.5, what="the run to be cancelled")
    r = await client.get("/api/v1/agent-chats", headers=auth)
    assert session_id not in [c["session_id"] for c in r.json()]


async def test_history_survives_a_restart(client, fake, server):
    auth = await signed_in(client, "e2e-restart@example.com")
    fake.script(Text("Noted: your favourite plant is basil."))
    session_id = (await run(client, auth, "My favourite plant is basil."))["session_id"]
    server.stop()
    server.start()
    fake.script(Text("Basil."))
    body = await run(client, auth, "What is my favourite plant?", session_id)
    assert body["output"] == "Basil."
    history = [(m["role"], m.get("content")) for m in fake.requests[-1].messages if m["role"] != "system"]
    assert history == [
        ("user", "My favourite plant is basil."),
        ("assistant", "Noted: your favourite plant is basil."),
        ("user", "What is my favourite plant?"),
    ]
