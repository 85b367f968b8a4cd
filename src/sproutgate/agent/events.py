"""The events a run reports, as runtime-api-v1.md names them, and their translation from pydantic-ai.

``run_started`` (run_id, and the session_id the run belongs to) -> ``text_delta`` (message_id, delta)
and ``tool_call`` (tool_name) / ``tool_result`` (tool_name, result), as often as the model needs ->
``run_finished`` (run_id, output) or ``run_error`` (error). The same events are returned in the JSON
answer and streamed as Server-Sent Events.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic_ai.messages import (
    FunctionToolCallEvent,
    FunctionToolResultEvent,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
)

EventType = Literal["run_started", "text_delta", "tool_call", "tool_result", "run_finished", "run_error"]


@dataclass(frozen=True, slots=True)
class ChatEvent:
    type: EventType
    run_id: str | None = None
    message_id: str | None = None
    delta: str | None = None
    tool_name: str | None = None
    result: str | None = None
    output: str | None = None
    error: str | None = None
    session_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The wire form: fields that do not apply to this type are left out."""
        return {k: v for k, v in asdict(self).items() if v is not None}


class EventTranslator:
    """Turns pydantic-ai stream events into ChatEvents.

    Each model response gets its own ``message_id`` (a response starts with the part at index 0), so
    a client can group the deltas of one assistant message and start a new one after tool calls."""

    def __init__(self) -> None:
        self.message_id: str | None = None

    def translate(self, event: object) -> list[ChatEvent]:
        if isinstance(event, PartStartEvent):
            if event.index == 0 and event.previous_part_kind is None:
                self.message_id = str(uuid.uuid4())
            if isinstance(event.part, TextPart) and event.part.content:
                return [self._delta(event.part.content)]
        elif isinstance(event, PartDeltaEvent):
            if isinstance(event.delta, TextPartDelta) and event.delta.content_delta:
                return [self._delta(event.delta.content_delta)]
        elif isinstance(event, FunctionToolCallEvent):
            return [ChatEvent("tool_call", tool_name=event.part.tool_name)]
        elif isinstance(event, FunctionToolResultEvent):
            return [
                ChatEvent(
                    "tool_result", tool_name=event.part.tool_name, result=event.part.model_response_str()
                )
            ]
        return []

    def _delta(self, text: str) -> ChatEvent:
        if self.message_id is None:
            self.message_id = str(uuid.uuid4())
        return ChatEvent("text_delta", message_id=self.message_id, delta=text)
