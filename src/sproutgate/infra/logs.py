"""Process logging for ``sproutgate serve`` and ``sproutgate.asgi`` (so that the workers of
``serve --workers N``, or of any process manager, log like a single process does).

Everything goes to standard error, as text (``SPROUTGATE_LOG_FORMAT=text``, the default) or as
one JSON object per line (``json``). Every line written while a request is handled carries its
id (the entry point hands ``configure`` the getter, ``api.middleware.current_request_id``):
``[id]`` after the logger's name in text, ``"request_id"`` in JSON. The access log is the
logger ``sproutgate.access``: one line per request, path only (query strings may hold secrets);
``SPROUTGATE_ACCESS_LOG=false`` turns it off. Nothing logged anywhere is a secret: messages
name sessions, users and messages by id.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

FORMAT = "%(asctime)s %(levelname)s %(name)s%(request_tag)s: %(message)s"
ACCESS_LOGGER = "sproutgate.access"

# Fields the access log passes as ``extra``: JSON lines carry them as their own keys.
ACCESS_FIELDS = ("client", "method", "path", "route", "status", "duration_ms")


RequestIdGetter = Callable[[], str | None]


def _no_request() -> str | None:
    return None


class RequestIdFilter(logging.Filter):
    """Puts the current request's id, as ``request_id`` answers it, on every record:
    ``request_id`` (None outside a request) and ``request_tag`` (`` [id]`` or empty, for the
    text format)."""

    def __init__(self, request_id: RequestIdGetter = _no_request) -> None:
        super().__init__()
        self.request_id = request_id

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = self.request_id()
        record.request_id = request_id
        record.request_tag = f" [{request_id}]" if request_id else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message``, ``pid``, ``request_id`` when in a request, the access log's fields, and
    ``exception`` (the traceback) when there is one. Other ``extra`` values are left out: only
    fields known to hold no secret are written."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        for name in ACCESS_FIELDS:
            if name in record.__dict__:
                entry[name] = record.__dict__[name]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(
    level: str = "info",
    *,
    access_log: bool = True,
    log_format: Literal["text", "json"] = "text",
    request_id: RequestIdGetter = _no_request,
) -> None:
    """Log to standard error at ``level`` in ``log_format``, with or without the access log,
    each line with the id ``request_id()`` answers when it is written. A root logger that has
    handlers already (an embedding application's configuration) is left as it is."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.addFilter(RequestIdFilter(request_id))
        handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(FORMAT))
        root.addHandler(handler)
        root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # A level rather than ``disabled``: a dictConfig (uvicorn's, an embedder's) re-enables every
    # existing logger.
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.NOTSET if access_log else logging.CRITICAL + 1)
