"""A scripted OpenAI-compatible chat-completions server, for tests that need a real model endpoint.

It speaks the wire protocol the OpenAI SDK (and so pydantic-ai's ``OpenAIChatModel``) uses:
``POST /v1/chat/completions`` answered as one JSON ``chat.completion``, or, with ``"stream": true``,
as Server-Sent Events of ``chat.completion.chunk`` objects ending in ``data: [DONE]``; tool calls
are streamed the way OpenAI streams them (id and name first, the JSON arguments in pieces).
``GET /v1/models`` lists ``model``. Errors use OpenAI's ``{"error": {...}}`` body.

Usage (synchronous, so it works from sync and async tests alike)::

    from support.fake_openai import FakeOpenAI, Text, ToolCalls, ToolCall, Fail, Delay

    with FakeOpenAI(api_key="sk-test") as llm:          # a thread on a free 127.0.0.1 port
        env = llm.env()                                   # SPROUTGATE_AGENT_MODEL/BASE_URL/API_KEY
        llm.script(
            ToolCalls(ToolCall("update_my_profile", {"bio": "hi"})),   # 1st request: a tool call
            Text("Done, your bio is updated."),                        # 2nd request: the answer
        )
        ... drive the code under test ...
        llm.requests[0].tool_names      # ['get_my_profile', 'update_my_profile', 'search_users']
        llm.requests[1].messages[-1]    # {'role': 'tool', 'tool_call_id': 'call_1', 'content': ...}
        llm.reset()                     # forget script, recorded requests and a custom responder

Replies, consumed one per chat-completions request, first in first out:

``Text(content, chunk_size=8, chunk_delay=0.0)``
    An assistant message. Streamed as ``chunk_size``-character deltas, ``chunk_delay`` seconds apart.
``ToolCalls(ToolCall(name, args, id=None), ...)``
    Assistant tool calls (``finish_reason: "tool_calls"``); ``args`` is a dict (sent as JSON) or a
    raw string (to send malformed arguments). Ids default to ``call_1``, ``call_2``, ... per server.
``Fail(status=500, message="...", error_type="server_error")``
    An HTTP error with an OpenAI error body (a 429 also sends ``Retry-After: 0``).
``Delay(seconds, reply)``
    Wait, then answer with ``reply`` (default: the responder's answer). A slow upstream.
``Hang()``
    Never answer; the request ends only when the client gives up (it is then marked ``aborted``).
a callable ``(RecordedRequest) -> reply``
    Computed from the request, e.g. to answer differently depending on the tool results seen.

When the script is empty the ``responder`` answers (by default ``echo``: the text
``"echo: <last user message>"``). Pass ``responder=`` or set ``llm.responder`` to change that.

Each request is recorded as a ``RecordedRequest``: ``body`` (the parsed JSON), ``headers``,
``stream``, ``messages``, ``tool_names``, ``last_user_text``, ``completed`` (the whole answer was
written) and ``aborted`` (the client went away first: the socket closed during a delay or a write
failed). ``wait_until(predicate, timeout)`` polls for asynchronous outcomes such as ``aborted``.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "Delay",
    "Fail",
    "FakeOpenAI",
    "Hang",
    "RecordedRequest",
    "Text",
    "ToolCall",
    "ToolCalls",
    "echo",
]


@dataclass
class Text:
    content: str
    chunk_size: int = 8
    chunk_delay: float = 0.0


@dataclass
class ToolCall:
    name: str
    args: Mapping[str, Any] | str = field(default_factory=dict)
    id: str | None = None


class ToolCalls:
    def __init__(self, *calls: ToolCall, text: str | None = None) -> None:
        self.calls = list(calls)
        self.text = text  # optional text sent before the calls


@dataclass
class Fail:
    status: int = 500
    message: str = "The server had an error while processing your request."
    error_type: str = "server_error"


@dataclass
class Delay:
    seconds: float
    reply: Any = None


@dataclass
class Hang:
    pass


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    received_at: float = field(default_factory=time.monotonic)
    completed: bool = False
    aborted: bool = False

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def tool_names(self) -> list[str]:
        return [t.get("function", {}).get("name", "") for t in self.body.get("tools") or []]

    @property
    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return _text_of(message.get("content"))
        return ""

    def tool_results(self) -> list[dict[str, Any]]:
        """The ``role: tool`` messages this request carries, oldest first."""
        return [m for m in self.messages if m.get("role") == "tool"]


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def echo(request: RecordedRequest) -> Text:
    """The default responder: repeat the last user message."""
    return Text(f"echo: {request.last_user_text}")


class _ClientGone(Exception):
    pass


class FakeOpenAI:
    def __init__(
        self,
        *,
        api_key: str | None = "sk-fake",
        model: str = "fake-model",
        responder: Callable[[RecordedRequest], Any] = echo,
        host: str = "127.0.0.1",
    ) -> None:
        self.api_key = api_key
        self.model = model
        self.responder = responder
        self.host = host
        self.requests: list[RecordedRequest] = []
        self._script: deque[Any] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._call_ids = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> FakeOpenAI:
        if self._server is not None:
            return self
        handler = type("Handler", (_Handler,), {"fake": self})
        server = ThreadingHTTPServer((self.host, 0), handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(target=server.serve_forever, name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._server = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def env(self, prefix: str = "SPROUTGATE_AGENT_") -> dict[str, str]:
        """Environment for a SproutGate process that should use this server as its model."""
        return {
            f"{prefix}MODEL": self.model,
            f"{prefix}BASE_URL": self.base_url,
            f"{prefix}API_KEY": self.api_key or "",
        }

    # -- scripting ------------------------------------------------------------------------------
    def script(self, *replies: Any) -> None:
        """Queue replies, one per coming chat-completions request."""
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()
        self.responder = echo

    @property
    def pending(self) -> int:
        """Scripted replies not yet consumed."""
        with self._lock:
            return len(self._script)

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    # -- used by the handler --------------------------------------------------------------------
    def _next_reply(self, request: RecordedRequest) -> Any:
        with self._lock:
            self.requests.append(request)
            reply = self._script.popleft() if self._script else None
        return reply if reply is not None else self.responder

    def _next_call_id(self) -> str:
        with self._lock:
            self._call_ids += 1
            return f"call_{self._call_ids}"


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAI
    protocol_version = "HTTP/1.0"  # one request per connection; a streamed body ends when we close

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass

    # -- routing --------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._json(200, {"object": "list", "data": [{"id": self.fake.model, "object": "model"}]})
        else:
            self._error(404, f"Unknown path {self.path}", "invalid_request_error")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.split("?")[0].rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._error(404, f"Unknown path {self.path}", "invalid_request_error")
            return
        if self.fake.api_key is not None:
            if self.headers.get("authorization", "") != f"Bearer {self.fake.api_key}":
                self._error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
                return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._error(400, "We could not parse the JSON body of your request.", "invalid_request_error")
            return
        request = RecordedRequest(
            path=self.path, headers={k.lower(): v for k, v in self.headers.items()}, body=body
        )
        reply = self.fake._next_reply(request)
        try:
            self._answer(request, reply)
        except _ClientGone:
            request.aborted = True
        except (BrokenPipeError, ConnectionResetError):
            request.aborted = True

    # -- answering ------------------------------------------------------------------------------
    def _answer(self, request: RecordedRequest, reply: Any) -> None:
        while callable(reply) and not isinstance(reply, type):
            reply = reply(request)
        if isinstance(reply, Delay):
            self._wait(reply.seconds)
            self._answer(request, reply.reply if reply.reply is not None else self.fake.responder)
            return
        if isinstance(reply, Hang):
            self._wait(None)
            return
        if isinstance(reply, Fail):
            headers = {"Retry-After": "0"} if reply.status == 429 else {}
            self._error(reply.status, reply.message, reply.error_type, headers=headers)
            request.completed = True
            return
        if isinstance(reply, str):
            reply = Text(reply)
        if not isinstance(reply, Text | ToolCalls):
            raise TypeError(f"not a reply: {reply!r}")
        if request.stream:
            self._stream(request, reply)
        else:
            self._json(200, self._completion(request, reply))
        request.completed = True

    def _wait(self, seconds: float | None) -> None:
        """Sleep, noticing when the client closes the connection (then raise _ClientGone)."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while deadline is None or time.monotonic() < deadline:
            if self.fake._stopping.is_set():
                raise _ClientGone()
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if readable:
                try:
                    if self.connection.recv(1, socket.MSG_PEEK) == b"":
                        raise _ClientGone()
                except OSError as exc:
                    raise _ClientGone() from exc

    def _tool_calls(self, reply: ToolCalls) -> list[dict[str, Any]]:
        out = []
        for call in reply.calls:
            args = call.args if isinstance(call.args, str) else json.dumps(dict(call.args))
            out.append(
                {
                    "id": call.id or self.fake._next_call_id(),
                    "type": "function",
                    "function": {"name": call.name, "arguments": args},
                }
            )
        return out

    def _completion(self, request: RecordedRequest, reply: Text | ToolCalls) -> dict[str, Any]:
        if isinstance(reply, Text):
            message: dict[str, Any] = {"role": "assistant", "content": reply.content}
            finish = "stop"
        else:
            message = {"role": "assistant", "content": reply.text, "tool_calls": self._tool_calls(reply)}
            finish = "tool_calls"
        return {
            "id": f"chatcmpl-{id(request):x}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.body.get("model", self.fake.model),
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }

    def _stream(self, request: RecordedRequest, reply: Text | ToolCalls) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        base = {
            "id": f"chatcmpl-{id(request):x}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": request.body.get("model", self.fake.model),
        }

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> None:
            payload = {
                **base,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                **extra,
            }
            self._send_event(json.dumps(payload))

        chunk({"role": "assistant", "content": ""})
        delay = 0.0
        if isinstance(reply, Text):
            text, size, delay = reply.content, max(1, reply.chunk_size), reply.chunk_delay
            for i in range(0, len(text), size):
                if delay and i:
                    self._wait(delay)
                chunk({"content": text[i : i + size]})
            finish = "stop"
        else:
            if reply.text:
                chunk({"content": reply.text})
            for index, call in enumerate(self._tool_calls(reply)):
                args = call["function"]["arguments"]
                head = {"index": index, "id": call["id"], "type": "function"}
                chunk(
                    {
                        "tool_calls": [
                            {**head, "function": {"name": call["function"]["name"], "arguments": ""}}
                        ]
                    }
                )
                cut = max(1, len(args) // 2)
                for piece in (args[:cut], args[cut:]):
                    if piece:
                        chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            finish = "tool_calls"
        chunk({}, finish)
        if (request.body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
            self._send_event(json.dumps({**base, "choices": [], "usage": usage}))
        self._send_event("[DONE]")

    def _send_event(self, data: str) -> None:
        self.wfile.write(f"data: {data}\n\n".encode())
        self.wfile.flush()

    def _json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(raw)
        self.wfile.flush()

    def _error(
        self,
        status: int,
        message: str,
        error_type: str,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
        self._json(status, body, headers)
