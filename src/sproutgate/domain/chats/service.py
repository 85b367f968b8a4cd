"""Conversation operations: start and record a turn, list, read and delete, each for the caller
and each in one transaction.

- A conversation belongs to its user: another user's or an unknown id raises ChatNotFound,
  exactly like a deleted one.
- A turn counts against the caller's ``agent_run_user`` rate limit (RateLimited) and is checked,
  its history loaded, before the model runs (``start_turn``).
- Nothing is half-saved (``record_turn``): a finished turn is appended to the stored history and
  the result trimmed to ``agent_history_messages`` at turn boundaries; a failed turn changes no
  stored history and only stores a new conversation, empty, so its id can be retried.
- The "held other users' content" mark (rules.OtherUsersContent) is stored with the turn, whether
  it finished or failed, and is never cleared.
- Stored history that cannot be read any more (an incompatible library upgrade) is logged and
  dropped; the conversation continues without it.

Messages stay opaque here: the face that runs the model says how they are stored and where a
turn begins (``HistoryFormat``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from sproutgate.config import Settings
from sproutgate.domain.chats.errors import ChatNotFound
from sproutgate.domain.chats.rules import (
    LIST_LIMIT,
    OtherUsersContent,
    canonical_chat_id,
    chat_title,
    keep_recent_turns,
    page_cursor,
    page_size,
    parse_page_cursor,
    require_message,
)
from sproutgate.domain.clock import Clock
from sproutgate.domain.sessions.service import Principal
from sproutgate.infra.ratelimit import RateLimiter
from sproutgate.storage.agent_chats import AgentChatRepository
from sproutgate.storage.db import Database
from sproutgate.storage.models import AgentChat

log = logging.getLogger(__name__)

M = TypeVar("M")


class HistoryFormat(Protocol[M]):
    """How a face's messages are stored, and where a turn of them begins."""

    def load(self, stored: list[Any]) -> list[M]:
        """Messages from their stored (JSON) form; raises ValueError for data that is not history."""
        ...

    def dump(self, messages: Sequence[M]) -> list[Any]:
        """The JSON-ready stored form."""
        ...

    def starts_turn(self, message: M) -> bool:
        """Whether history may be cut just before ``message``."""
        ...


@dataclass(frozen=True, slots=True)
class ChatSummary:
    id: str
    title: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Chat(Generic[M]):
    """One conversation with its readable history."""

    id: str
    title: str
    created_at: datetime
    updated_at: datetime
    history: list[M]
    held_other_users_content: bool


@dataclass(slots=True)
class Turn(Generic[M]):
    """A turn from ``start_turn`` to ``record_turn``: the caller's prompt, the stored history it
    continues, and the conversation's mark, which the turn's tools update as content arrives."""

    owner_id: str
    chat_id: str
    is_new: bool
    prompt: str
    history: list[M]
    other_users_content: OtherUsersContent


class ChatService:
    """The caller's conversations with the agent."""

    def __init__(self, settings: Settings, db: Database, limiter: RateLimiter, clock: Clock) -> None:
        self.settings = settings
        self.db = db
        self.limiter = limiter
        self.clock = clock

    async def start_turn(
        self, principal: Principal, prompt: str, chat_id: str | None, history: HistoryFormat[M]
    ) -> Turn[M]:
        """Check a turn and load what it continues: a new conversation when ``chat_id`` is None.

        Raises InvalidInput (prompt length), RateLimited, ChatNotFound."""
        require_message(prompt)
        await self.limiter.hit("agent_run_user", principal.user.id)
        owner_id = principal.user.id
        if chat_id is None:
            return Turn(owner_id, str(uuid.uuid4()), True, prompt, [], OtherUsersContent(owner_id))
        chat = await self._owned(owner_id, chat_id)
        return Turn(
            owner_id,
            chat.id,
            False,
            prompt,
            _readable(chat, history),
            OtherUsersContent(owner_id, chat.held_other_users_content),
        )

    async def record_turn(
        self, turn: Turn[M], new_messages: Sequence[M] | None, history: HistoryFormat[M]
    ) -> None:
        """Append a finished turn (``new_messages``), or record a failed one (None). A conversation
        deleted meanwhile stays deleted; a turn that finished meanwhile in another request stays,
        and this one is appended after it."""
        now = self.clock.now()
        limit = self.settings.agent_history_messages
        held = turn.other_users_content.held
        if turn.is_new:
            kept = keep_recent_turns(new_messages or [], limit, history.starts_turn)
            async with self.db.write() as s:
                AgentChatRepository(s).add(
                    AgentChat(
                        id=turn.chat_id,
                        user_id=turn.owner_id,
                        title=chat_title(turn.prompt),
                        messages=history.dump(kept),
                        created_at=now,
                        updated_at=now,
                        held_other_users_content=held,
                    )
                )
            return
        if new_messages is None:
            if held:  # the failed turn's tools returned other users' content: the mark stays
                async with self.db.write() as s:
                    await AgentChatRepository(s).mark_held_other_users_content(turn.chat_id, turn.owner_id)
            return
        async with self.db.write() as s:
            chat = await AgentChatRepository(s).owned_for_update(turn.chat_id, turn.owner_id)
            if chat is None:  # deleted while the model was answering: keep it deleted
                return
            # Re-read inside the transaction: whole turns are appended, so no tool pair is split.
            combined = _readable(chat, history) + list(new_messages)
            chat.messages = history.dump(keep_recent_turns(combined, limit, history.starts_turn))
            chat.held_other_users_content = chat.held_other_users_content or held
            chat.updated_at = now

    async def list_chats(
        self, principal: Principal, limit: int = LIST_LIMIT, before: str | None = None
    ) -> tuple[list[ChatSummary], str | None]:
        """A page of the caller's conversations, most recently used first, and the cursor of the
        next page (None on the last one). ``before`` is a cursor from an earlier page. Raises
        InvalidInput(before) for a cursor this server did not make."""
        after = parse_page_cursor(before) if before is not None else None
        limit = page_size(limit)
        async with self.db.read() as s:
            chats = await AgentChatRepository(s).list_for_user(principal.user.id, limit + 1, after)
        page = [ChatSummary(c.id, c.title, c.created_at, c.updated_at) for c in chats[:limit]]
        more = len(chats) > limit
        return page, page_cursor(page[-1].updated_at, page[-1].id) if more else None

    async def get_chat(self, principal: Principal, chat_id: str, history: HistoryFormat[M]) -> Chat[M]:
        """One of the caller's conversations. Raises ChatNotFound."""
        chat = await self._owned(principal.user.id, chat_id)
        return Chat(
            chat.id,
            chat.title,
            chat.created_at,
            chat.updated_at,
            _readable(chat, history),
            chat.held_other_users_content,
        )

    async def delete_chat(self, principal: Principal, chat_id: str) -> None:
        """Delete one of the caller's conversations. Raises ChatNotFound."""
        canonical = canonical_chat_id(chat_id)
        deleted = False
        if canonical is not None:
            async with self.db.write() as s:
                deleted = await AgentChatRepository(s).delete_owned(canonical, principal.user.id)
        if not deleted:
            raise ChatNotFound()

    async def _owned(self, owner_id: str, chat_id: str) -> AgentChat:
        canonical = canonical_chat_id(chat_id)
        chat = None
        if canonical is not None:
            async with self.db.read() as s:
                chat = await AgentChatRepository(s).owned(canonical, owner_id)
        if chat is None:
            raise ChatNotFound()
        return chat


def _readable(chat: AgentChat, history: HistoryFormat[M]) -> list[M]:
    try:
        return history.load(chat.messages or [])
    except ValueError:
        # Unreadable history must not lock the user out of the conversation.
        log.warning("agent chat %s has unreadable history; continuing without it", chat.id)
        return []
