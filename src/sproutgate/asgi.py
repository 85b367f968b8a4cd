"""ASGI entry for process managers: ``uvicorn sproutgate.asgi:app`` or gunicorn with uvicorn workers."""

from sproutgate.app import create_app
from sproutgate.config import Settings

app = create_app(Settings.load())
