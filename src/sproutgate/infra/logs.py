"""Process logging for ``sproutgate serve`` and ``sproutgate.asgi`` (so that the workers of
``serve --workers N``, or of any process manager, log like a single process does).

Everything goes to standard error in one format. The access log is the logger
``sproutgate.access``: one line per request from ``api.middleware.EdgeMiddleware``, path only
(query strings may hold secrets); ``SPROUTGATE_ACCESS_LOG=false`` turns it off.
"""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ACCESS_LOGGER = "sproutgate.access"


def configure(level: str = "info", *, access_log: bool = True) -> None:
    """Log to standard error at ``level``, with or without the access log. A root logger that
    has handlers already (an embedding application's configuration) is left as it is."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
        root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # A level rather than ``disabled``: uvicorn's dictConfig re-enables every existing logger.
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.NOTSET if access_log else logging.CRITICAL + 1)
