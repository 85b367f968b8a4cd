"""Errors of the chats domain, each with a stable code (rendered by every face in one place)."""

from __future__ import annotations

from sproutgate.domain.errors import NotFound


class ChatNotFound(NotFound):
    """The conversation is unknown, deleted, or another user's: the three look the same on purpose."""

    code = "chat_not_found"
