"""SQL for ``agent_chats``. Like every repository it never commits: the caller owns the transaction.

Every lookup is scoped to the owner, so another user's conversation is indistinguishable from a
missing one. The rules about conversations live in ``domain/chats``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import load_only

from sproutgate.storage.models import AgentChat


class AgentChatRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def owned(self, chat_id: str, user_id: str) -> AgentChat | None:
        stmt = select(AgentChat).where(AgentChat.id == chat_id, AgentChat.user_id == user_id)
        return (await self.s.execute(stmt)).scalar_one_or_none()

    async def owned_for_update(self, chat_id: str, user_id: str) -> AgentChat | None:
        stmt = (
            select(AgentChat).where(AgentChat.id == chat_id, AgentChat.user_id == user_id).with_for_update()
        )
        return (await self.s.execute(stmt)).scalar_one_or_none()

    async def list_for_user(
        self, user_id: str, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[AgentChat]:
        """Most recently used first, without the (large) messages column; ``after`` (the
        ``updated_at`` and id of the last chat of the previous page) continues a listing."""
        stmt = (
            select(AgentChat)
            .options(load_only(AgentChat.id, AgentChat.title, AgentChat.created_at, AgentChat.updated_at))
            .where(AgentChat.user_id == user_id)
            .order_by(AgentChat.updated_at.desc(), AgentChat.id)
            .limit(limit)
        )
        if after is not None:
            updated_at, chat_id = after
            stmt = stmt.where(
                or_(
                    AgentChat.updated_at < updated_at,
                    and_(AgentChat.updated_at == updated_at, AgentChat.id > chat_id),
                )
            )
        return list((await self.s.execute(stmt)).scalars())

    def add(self, chat: AgentChat) -> None:
        self.s.add(chat)

    async def mark_held_other_users_content(self, chat_id: str, user_id: str) -> None:
        """Set the conversation's mark (one UPDATE, no read); a missing chat stays missing."""
        await self.s.execute(
            update(AgentChat)
            .where(AgentChat.id == chat_id, AgentChat.user_id == user_id)
            .values(held_other_users_content=True)
        )

    async def delete_owned(self, chat_id: str, user_id: str) -> bool:
        result = await self.s.execute(
            delete(AgentChat).where(AgentChat.id == chat_id, AgentChat.user_id == user_id)
        )
        return bool(cast(CursorResult[Any], result).rowcount)
