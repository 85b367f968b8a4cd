"""ASGI entry for process managers: ``uvicorn sproutgate.asgi:app`` or gunicorn with uvicorn
workers (and each worker of ``sproutgate serve --workers N``). Logging is set up as ``serve``
sets it up, unless the process manager configured the root logger already."""

from sproutgate.api.middleware import current_request_id
from sproutgate.app import create_app
from sproutgate.config import Settings
from sproutgate.infra import logs

settings = Settings.load()
logs.configure(
    settings.log_level,
    access_log=settings.access_log,
    log_format=settings.log_format,
    request_id=current_request_id,
)
app = create_app(settings)
