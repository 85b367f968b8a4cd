"""A conversation's history in pydantic-ai's terms: how it is stored, where it may be cut, and
how it is shown. What is kept (retention) is the chats domain's rule; this module only tells it
where a turn begins.

History is stored as pydantic-ai's own serialised messages (``ModelMessagesTypeAdapter``), so a
conversation resumes exactly, tool calls included, after a restart. It is trimmed only at the start
of a turn (a request carrying the user's prompt): a tool call and its return always stay together,
and the kept history always begins with a user message.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic_ai import ModelMessagesTypeAdapter
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)

from sproutgate.domain.chats.rules import keep_recent_turns


def dump_messages(messages: Sequence[ModelMessage]) -> list[dict[str, Any]]:
    """JSON-ready form for the ``agent_chats.messages`` column."""
    return ModelMessagesTypeAdapter.dump_python(list(messages), mode="json")


def load_messages(stored: Any) -> list[ModelMessage]:
    """Messages from the column; raises pydantic.ValidationError on data that is not history."""
    return ModelMessagesTypeAdapter.validate_python(stored or [])


def starts_turn(message: ModelMessage) -> bool:
    """A request with the user's prompt and no tool returns: the only place history may be cut."""
    if not isinstance(message, ModelRequest):
        return False
    kinds = {part.part_kind for part in message.parts}
    return "user-prompt" in kinds and not kinds & {"tool-return", "retry-prompt"}


def trim_history(messages: Sequence[ModelMessage], limit: int) -> list[ModelMessage]:
    """At most ``limit`` messages, dropping whole turns from the front (the retention rule of
    ``domain.chats.rules.keep_recent_turns``, on pydantic-ai's messages)."""
    return keep_recent_turns(messages, limit, starts_turn)


class PydanticAIHistory:
    """The ``HistoryFormat`` the chats domain stores the agent's conversations in."""

    def load(self, stored: list[Any]) -> list[ModelMessage]:
        return load_messages(stored)

    def dump(self, messages: Sequence[ModelMessage]) -> list[Any]:
        return dump_messages(messages)

    def starts_turn(self, message: ModelMessage) -> bool:
        return starts_turn(message)


HISTORY = PydanticAIHistory()


def transcript(messages: Sequence[ModelMessage]) -> list[dict[str, Any]]:
    """The conversation as a reader sees it: user and assistant text, tool calls and their results."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, ModelRequest):
            for request_part in message.parts:
                if isinstance(request_part, UserPromptPart):
                    content = request_part.content
                    text = content if isinstance(content, str) else _text(content)
                    out.append(_entry("user", request_part.timestamp, content=text))
                elif isinstance(request_part, ToolReturnPart):
                    out.append(
                        _entry(
                            "tool_result",
                            request_part.timestamp,
                            tool_name=request_part.tool_name,
                            content=request_part.model_response_str(),
                        )
                    )
        elif isinstance(message, ModelResponse):
            text = "".join(p.content for p in message.parts if isinstance(p, TextPart))
            if text:
                out.append(_entry("assistant", message.timestamp, content=text))
            for response_part in message.parts:
                if isinstance(response_part, ToolCallPart):
                    out.append(_entry("tool_call", message.timestamp, tool_name=response_part.tool_name))
    return out


def _entry(role: str, at: datetime | None, **fields: Any) -> dict[str, Any]:
    return {"role": role, "created_at": at, **fields}


def _text(content: Sequence[Any]) -> str:
    return "".join(item for item in content if isinstance(item, str))
