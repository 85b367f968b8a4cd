"""Profiles: reading and changing the public profile fields, listing a user's addresses, and
finding users (search, an administrator's look-up by address)."""

from __future__ import annotations

from typing import Protocol

from sproutgate.domain.accounts.rules import email_key, normalize_email
from sproutgate.domain.clock import Clock
from sproutgate.domain.errors import Forbidden
from sproutgate.domain.limits import RateLimits
from sproutgate.domain.profiles.errors import UserNotFound
from sproutgate.domain.profiles.rules import (
    ProfileChanges,
    ProfileRules,
    apply_profile,
    display_name_lower,
    require_valid_profile,
)
from sproutgate.domain.sessions.service import Principal
from sproutgate.storage.db import Database
from sproutgate.storage.models import User
from sproutgate.storage.repositories import UserRepository
from sproutgate.storage.search import ConnectionSearchRows, SessionSearchRows, search_users

SEARCH_RESULTS = 20


class PublicProfile(Protocol):
    """What a face may show of any user to another signed-in user (the runtime API's profile,
    search results): what the services here return, read-only."""

    @property
    def id(self) -> str: ...

    @property
    def username(self) -> str: ...

    @property
    def avatar_url(self) -> str | None: ...

    @property
    def bio(self) -> str | None: ...


class ProfileService:
    """Profile operations shared by every face; each is one transaction."""

    def __init__(self, db: Database, limiter: RateLimits, clock: Clock) -> None:
        self.db = db
        self.limiter = limiter
        self.clock = clock

    async def own_profile(self, principal: Principal) -> User:
        """The caller's profile as stored now (the principal's copy is from the start of the
        request, and a run of the agent may have changed it since). Raises UserNotFound."""
        async with self.db.read() as s:
            user = await UserRepository(s).get(principal.user.id)
        if user is None:
            raise UserNotFound()
        return user

    async def update_profile(self, user_id: str, changes: ProfileChanges, rules: ProfileRules) -> User:
        """Apply profile changes after checking them against ``rules`` (the face's document).

        Raises InvalidInput (every bad field at once), UserNotFound."""
        require_valid_profile(changes, rules)
        async with self.db.write() as s:
            user = await UserRepository(s).get(user_id)
            if user is None:
                raise UserNotFound()
            apply_profile(user, changes)
            user.updated_at = self.clock.now()
        return user

    async def secondary_emails(self, user_id: str) -> list[str]:
        """The user's verified secondary addresses, oldest first."""
        async with self.db.read() as s:
            return await UserRepository(s).secondary_emails(user_id)

    async def user_by_email_for_admin(self, principal: Principal, email: str) -> User:
        """The user owning ``email`` (primary or secondary). Raises Forbidden for non-admins,
        InvalidInput for a malformed address, UserNotFound."""
        if principal.user.role != "admin":
            raise Forbidden()
        email = normalize_email(email)
        async with self.db.read() as s:
            user = await UserRepository(s).by_email(email)
        if user is None:
            raise UserNotFound()
        return user

    async def search(self, principal: Principal, query: str) -> list[User]:
        """An address (contains @) matches one primary email exactly; anything else is a fuzzy
        display-name match, best first, at most 20. Rate limited per user (RateLimited)."""
        await self.limiter.hit("search_user", principal.user.id)
        query = query.strip()
        if not query or "\x00" in query:
            # No stored name holds a NUL (PostgreSQL cannot store one, FTS5 cannot match one).
            return []
        query = email_key(query) if "@" in query else display_name_lower(query)
        if self.db.reads_now:  # SQLite: the statements without the session and ORM around them
            return await search_users(ConnectionSearchRows(self.db.read_now()), query, SEARCH_RESULTS)
        async with self.db.read() as s:
            return await search_users(SessionSearchRows(s), query, SEARCH_RESULTS)
