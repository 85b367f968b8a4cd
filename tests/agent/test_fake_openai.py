"""The scripted OpenAI-compatible server speaks the protocol the real OpenAI SDK expects."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from support.fake_openai import Fail, FakeOpenAI, Text, ToolCall, ToolCalls


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-check") as fake:
        yield fake


@pytest.fixture
async def sdk(llm: FakeOpenAI):  # type: ignore[no-untyped-def]
    llm.reset()
    async with openai.AsyncOpenAI(base_url=llm.base_url, api_key="sk-check", max_retries=0) as client:
        yield client


async def test_plain_and_tool_call_completions(llm, sdk):
    llm.script(ToolCalls(ToolCall("search_users", {"query": "ann"})), Text("hello"))
    first = await sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (
        "call_1",
        "search_users",
        {"query": "ann"},
    )
    second = await sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert second.choices[0].message.content == "hello"
    # nothing scripted: the default responder echoes
    third = await sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "ping"}])
    assert third.choices[0].message.content == "echo: ping"
    assert [r.stream for r in llm.requests] == [False, False, False]


async def test_streamed_text_and_tool_calls(llm, sdk):
    llm.script(
        Text("streamed text", chunk_size=3), ToolCalls(ToolCall("get_my_profile"), text="Let me look.")
    )
    stream = await sdk.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    pieces = [c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == "streamed text" and len(pieces) == 5
    stream = await sdk.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    names, args = [], ""
    async for chunk in stream:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            if delta.function.name:
                names.append(delta.function.name)
            args += delta.function.arguments or ""
    assert names == ["get_my_profile"] and json.loads(args) == {}


async def test_errors_and_authentication(llm, sdk):
    llm.script(Fail(503, "overloaded", "server_error"))
    with pytest.raises(openai.InternalServerError) as info:
        await sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 503
    async with openai.AsyncOpenAI(base_url=llm.base_url, api_key="wrong", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError):
            await bad.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
