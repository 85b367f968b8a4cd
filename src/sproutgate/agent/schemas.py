"""Wire schemas of the agent endpoints (runtime API, snake_case, runtime-api-v1.md "Agent Chat")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from sproutgate.api.wire import WireIn
from sproutgate.domain.chats.rules import MESSAGE_MAX


class AgentChatCreate(WireIn):
    message: str = Field(min_length=1, max_length=MESSAGE_MAX)
    session_id: uuid.UUID | None = None


class AgentEvent(BaseModel):
    """One step of a run; only the fields of its ``type`` are present."""

    type: Literal["run_started", "text_delta", "tool_call", "tool_result", "run_finished", "run_error"]
    run_id: str | None = None
    message_id: str | None = None
    delta: str | None = None
    tool_name: str | None = None
    result: str | None = None
    output: str | None = None
    error: str | None = None
    session_id: str | None = Field(default=None, description="On run_started: the conversation of this run.")


class AgentChatOut(BaseModel):
    session_id: str
    output: str
    events: list[AgentEvent]


class AgentChatSummary(BaseModel):
    session_id: str
    title: str
    created_at: datetime
    updated_at: datetime


class AgentChatMessage(BaseModel):
    """A transcript entry: the user's or the assistant's text, or a tool call or its result."""

    role: Literal["user", "assistant", "tool_call", "tool_result"]
    content: str | None = None
    tool_name: str | None = None
    created_at: datetime | None = None


class AgentChatDetail(AgentChatSummary):
    messages: list[AgentChatMessage]
