"""Server-Sent Events for a run. The run lives inside the response: each event is written as it
happens, and when the client disconnects the run is cancelled right there, in the same task,
instead of being left to a garbage-collected generator.

While the run is quiet (a slow model can think for tens of seconds) a second task in the same
task group writes an SSE comment every ``keepalive_seconds`` without a write, so that reverse
proxies and load balancers with an idle timeout keep the connection open. Writes are serialised
by a lock, one ASGI message per frame, so a comment never lands inside an event."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing

import anyio
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from sproutgate.agent.events import ChatEvent

# An SSE comment line: EventSource (and any client following the spec) ignores it.
KEEPALIVE_FRAME = b": keep-alive\n\n"
KEEPALIVE_TASK_NAME = "sproutgate-sse-keepalive"


def sse_frame(event: ChatEvent) -> bytes:
    """``event: <type>`` and ``data: <the event as JSON>``; JSON has no raw newlines, so one data line."""
    data = json.dumps(event.as_dict(), ensure_ascii=False, separators=(",", ":"))
    return f"event: {event.type}\ndata: {data}\n\n".encode()


class EventStreamResponse(Response):
    media_type = "text/event-stream"

    def __init__(
        self,
        events: AsyncGenerator[ChatEvent, None],
        headers: Mapping[str, str] | None = None,
        *,
        keepalive_seconds: float | None = 15.0,
    ) -> None:
        """``keepalive_seconds``: write a comment after this long without a write (None: never)."""
        self.events = events
        self.keepalive_seconds = keepalive_seconds
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
        write_lock = anyio.Lock()
        last_write = anyio.current_time()
        ended = False  # the last body message was sent (or the client is gone): write nothing more

        async def write(body: bytes) -> None:
            nonlocal last_write
            async with write_lock:
                if ended:
                    return
                await send({"type": "http.response.body", "body": body, "more_body": True})
                last_write = anyio.current_time()

        async def end() -> None:
            nonlocal ended
            async with write_lock:
                ended = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        async with anyio.create_task_group() as tasks:

            async def cancel_on_disconnect() -> None:
                message: Message = await receive()
                while message["type"] != "http.disconnect":
                    message = await receive()
                tasks.cancel_scope.cancel()

            async def keep_alive(interval: float) -> None:
                while not ended:
                    seen = last_write
                    await anyio.sleep_until(seen + interval)
                    if last_write == seen:  # nothing was written meanwhile
                        try:
                            await write(KEEPALIVE_FRAME)
                        except OSError:
                            return  # the client went away; the event loop below will notice too

            tasks.start_soon(cancel_on_disconnect)
            if self.keepalive_seconds is not None:
                tasks.start_soon(keep_alive, self.keepalive_seconds, name=KEEPALIVE_TASK_NAME)
            try:
                async with aclosing(self.events) as events:
                    async for event in events:
                        await write(sse_frame(event))
                await end()
            except OSError:
                ended = True  # the client went away mid-write; closing the events cancelled the run
            tasks.cancel_scope.cancel()
