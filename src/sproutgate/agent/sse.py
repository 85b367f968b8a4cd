"""Server-Sent Events for a run. The run lives inside the response: each event is written as it
happens, and when the client disconnects the run is cancelled right there, in the same task,
instead of being left to a garbage-collected generator."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing

import anyio
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from sproutgate.agent.events import ChatEvent


def sse_frame(event: ChatEvent) -> bytes:
    """``event: <type>`` and ``data: <the event as JSON>``; JSON has no raw newlines, so one data line."""
    data = json.dumps(event.as_dict(), ensure_ascii=False, separators=(",", ":"))
    return f"event: {event.type}\ndata: {data}\n\n".encode()


class EventStreamResponse(Response):
    media_type = "text/event-stream"

    def __init__(
        self, events: AsyncGenerator[ChatEvent, None], headers: Mapping[str, str] | None = None
    ) -> None:
        self.events = events
        self.status_code = 200
        self.background = None
        self.init_headers(
            {
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # ask reverse proxies (nginx) not to buffer the stream
                **(headers or {}),
            }
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        async with anyio.create_task_group() as tasks:

            async def cancel_on_disconnect() -> None:
                message: Message = await receive()
                while message["type"] != "http.disconnect":
                    message = await receive()
                tasks.cancel_scope.cancel()

            tasks.start_soon(cancel_on_disconnect)
            try:
                async with aclosing(self.events) as events:
                    async for event in events:
                        await send(
                            {"type": "http.response.body", "body": sse_frame(event), "more_body": True}
                        )
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except OSError:
                pass  # the client went away mid-write; closing the events cancelled the run
            tasks.cancel_scope.cancel()
