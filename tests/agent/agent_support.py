"""Helpers for the agent tests: a scripted pydantic-ai FunctionModel and small HTTP helpers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, FunctionModel

from sproutgate.agent.service import AgentChatService


@dataclass
class Call:
    """The model calls a tool; ``args`` may be a dict or a raw JSON string."""

    name: str
    args: dict[str, Any] | str = field(default_factory=dict)


@dataclass
class Sleep:
    seconds: float
    then: Any = "late answer"


@dataclass
class Seen:
    messages: list[ModelMessage]
    info: AgentInfo


class ScriptedModel:
    """A FunctionModel answering each model request with the next step of a script.

    Steps: a str (streamed as text in 4-character chunks), a Call or a list of Calls, a Sleep,
    an exception instance (raised), or a callable ``(messages, info) -> step``."""

    def __init__(self, *steps: Any) -> None:
        self.steps = list(steps)
        self.seen: list[Seen] = []
        self.model = FunctionModel(stream_function=self._stream, model_name="scripted")

    def then(self, *steps: Any) -> None:
        self.steps.extend(steps)

    async def _stream(self, messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[Any]:
        self.seen.append(Seen(list(messages), info))
        step: Any = self.steps.pop(0) if self.steps else "(script exhausted)"
        while True:
            if callable(step) and not isinstance(step, Call | Sleep | BaseException):
                step = step(messages, info)
            elif isinstance(step, Sleep):
                await asyncio.sleep(step.seconds)
                step = step.then
            else:
                break
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, Call):
            step = [step]
        if isinstance(step, list):
            for i, call in enumerate(step):
                args = call.args if isinstance(call.args, str) else json.dumps(call.args)
                yield {
                    i: DeltaToolCall(
                        name=call.name, json_args=args, tool_call_id=f"call_{len(self.seen)}_{i}"
                    )
                }
            return
        for i in range(0, len(step), 4):
            yield step[i : i + 4]


def install_agent(harness: Any, scripted: ScriptedModel) -> AgentChatService:
    """Make the harness's app use an agent service whose model is ``scripted``."""
    service = AgentChatService.from_services(harness.services, model=scripted.model)
    harness.services.extras["agent"] = service
    return service


async def chat(
    client: httpx.AsyncClient, token: str, message: str, session_id: str | None = None, **headers: str
) -> httpx.Response:
    body: dict[str, Any] = {"message": message}
    if session_id is not None:
        body["session_id"] = session_id
    return await client.post(
        "/api/v1/agent-chats", json=body, headers={"Authorization": f"Bearer {token}", **headers}
    )


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) for each frame of a text/event-stream body."""
    frames = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            frames.append((name, json.loads("\n".join(data))))
    return frames


KEEPALIVE = ": keep-alive"


def sse_blocks(text: str) -> list[str | tuple[str, dict[str, Any]]]:
    """A raw text/event-stream body block by block, checking each is whole: ``KEEPALIVE`` for a
    keep-alive comment, (event name, data) for an event frame of exactly one event and one data
    line. Anything else (a comment inside a frame, a cut frame) fails the test."""
    assert text.endswith("\n\n"), f"the stream ends mid-frame: {text[-80:]!r}"
    blocks: list[str | tuple[str, dict[str, Any]]] = []
    for block in text[:-2].split("\n\n"):
        if block == KEEPALIVE:
            blocks.append(KEEPALIVE)
            continue
        lines = block.split("\n")
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        name, data = lines[0][len("event: ") :], json.loads(lines[1][len("data: ") :])
        assert data["type"] == name, block
        blocks.append((name, data))
    return blocks


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def tool_names(info: AgentInfo) -> list[str]:
    return [t.name for t in info.function_tools]


def first(
    events: list[dict[str, Any]], kind: str, predicate: Callable[[dict[str, Any]], bool] = bool
) -> dict:
    return next(e for e in events if e["type"] == kind and predicate(e))
