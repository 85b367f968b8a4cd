"""Agent chat rules: who may run and continue which conversation, how a run reports itself, and
what is saved when it ends.

- A run needs a configured model (ServiceUnavailable("agent_not_configured") otherwise) and counts
  against the caller's ``agent_run_user`` rate limit (RateLimited).
- A conversation belongs to its user: another user's or an unknown session answers
  NotFound("chat_not_found"), exactly like a deleted one.
- A run is checked and its history loaded before anything is streamed (``start_run``), so those
  errors reach the client as ordinary problems; the model runs afterwards (``ChatRun.events``).
- Nothing is half-saved. A run that finishes appends the whole turn to the stored history, trimmed
  at turn boundaries. A run that fails (timeout, model error) leaves the stored history as it was,
  reports ``run_error`` and, for a new conversation, stores it empty so the returned session_id
  can be retried. A run that is cancelled (the streaming client went away) saves nothing.
- No database transaction is open while the model runs.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pydantic
from pydantic_ai import Agent, AgentRunResultEvent
from pydantic_ai.exceptions import (
    AgentRunError,
    ModelConnectionError,
    ModelHTTPError,
    ModelRequestTimeout,
    ModelTimeoutError,
    RunTimedOut,
    UsageLimitExceeded,
)
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models import Model
from pydantic_ai.usage import UsageLimits

from sproutgate import i18n
from sproutgate.agent.events import ChatEvent, EventTranslator
from sproutgate.agent.history import dump_messages, load_messages, transcript, trim_history
from sproutgate.agent.model import build_chat_model, model_settings
from sproutgate.agent.store import AgentChatRepository
from sproutgate.agent.tools import TOOL_INSTRUCTIONS, TOOLS, AgentDeps
from sproutgate.config import Settings
from sproutgate.domain.clock import Clock
from sproutgate.domain.errors import InvalidInput, NotFound, ServiceUnavailable
from sproutgate.domain.profiles.service import ProfileService
from sproutgate.domain.sessions.service import Principal
from sproutgate.infra.ratelimit import RateLimiter
from sproutgate.storage.db import Database
from sproutgate.storage.models import AgentChat

if TYPE_CHECKING:
    from sproutgate.services import Services

log = logging.getLogger(__name__)

MESSAGE_MAX = 8000
TITLE_MAX = 80
LIST_LIMIT = 100
# Model requests per run: each round of tool calls is one. Bounds the cost of a looping model.
MAX_MODEL_REQUESTS = 10
# Tool calls with arguments that do not validate are returned to the model to fix, this often.
TOOL_ARGUMENT_RETRIES = 3


@dataclass(frozen=True, slots=True)
class ChatSummary:
    id: str
    title: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ChatTranscript:
    id: str
    title: str
    created_at: datetime
    updated_at: datetime
    messages: list[dict[str, Any]]


class AgentChatService:
    """Runs the agent for a signed-in caller and keeps their conversations."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        profiles: ProfileService,
        limiter: RateLimiter,
        clock: Clock,
        model: Model | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.profiles = profiles
        self.limiter = limiter
        self.clock = clock
        self.model = model if model is not None else build_chat_model(settings)
        self.agent: Agent[AgentDeps, str] | None = None
        if self.model is not None:
            import pydantic_ai

            # A server's logs are no place for the library's first-run banner.
            pydantic_ai.BANNER_ENABLED = False
            self.agent = Agent(
                self.model,
                name="sproutgate",
                deps_type=AgentDeps,
                instructions=self.instructions(),
                tools=TOOLS,
                retries={"tools": TOOL_ARGUMENT_RETRIES},
                model_settings=model_settings(settings),
            )

    @classmethod
    def from_services(cls, services: Services, model: Model | None = None) -> AgentChatService:
        return cls(services.settings, services.db, services.profiles, services.limiter, services.clock, model)

    @property
    def configured(self) -> bool:
        return self.agent is not None

    def instructions(self) -> str:
        """Our rules about tools and untrusted text first; the operator's prompt adds to them."""
        extra = self.settings.agent_system_prompt.strip()
        return f"{TOOL_INSTRUCTIONS}\n\n{extra}" if extra else TOOL_INSTRUCTIONS

    # -- runs ---------------------------------------------------------------------------------
    async def start_run(
        self, principal: Principal, message: str, session_id: str | None = None, *, lang: str = "zh-CN"
    ) -> ChatRun:
        """Check and prepare a run; the model is called when ``ChatRun.events()`` is iterated.

        Raises ServiceUnavailable("agent_not_configured"), InvalidInput (message length),
        RateLimited, NotFound("chat_not_found")."""
        if self.agent is None:
            raise ServiceUnavailable("agent_not_configured")
        if not 1 <= len(message) <= MESSAGE_MAX:
            raise InvalidInput({"message": "invalid_value"})
        await self.limiter.hit("agent_run_user", principal.user.id)
        history: list[ModelMessage] = []
        if session_id is None:
            chat_id, is_new = str(uuid.uuid4()), True
        else:
            chat = await self._owned(principal, session_id)
            chat_id, is_new, history = chat.id, False, _readable_history(chat)
        return ChatRun(
            service=self,
            agent=self.agent,
            principal=principal,
            message=message,
            session_id=chat_id,
            is_new=is_new,
            history=history,
            lang=lang,
        )

    async def _owned(self, principal: Principal, session_id: str) -> AgentChat:
        chat_id = _normalized_id(session_id)
        chat = None
        if chat_id is not None:
            async with self.db.read() as s:
                chat = await AgentChatRepository(s).owned(chat_id, principal.user.id)
        if chat is None:
            raise NotFound("chat_not_found")
        return chat

    async def record_turn(self, run: ChatRun, new_messages: list[ModelMessage] | None) -> None:
        """Append a finished turn (``new_messages``), or record a failed one (None): a failed turn
        changes no stored history, it only creates a new conversation, empty."""
        now = self.clock.now()
        limit = self.settings.agent_history_messages
        if run.is_new:
            messages = trim_history(new_messages, limit) if new_messages is not None else []
            async with self.db.write() as s:
                AgentChatRepository(s).add(
                    AgentChat(
                        id=run.session_id,
                        user_id=run.principal.user.id,
                        title=_title(run.message),
                        messages=dump_messages(messages),
                        created_at=now,
                        updated_at=now,
                    )
                )
            return
        if new_messages is None:
            return
        async with self.db.write() as s:
            chat = await AgentChatRepository(s).owned_for_update(run.session_id, run.principal.user.id)
            if chat is None:  # deleted while the model was answering: keep it deleted
                return
            # Re-read inside the transaction: a turn that finished meanwhile in another request
            # stays, and this one is appended after it (whole turns, so no tool pair is split).
            chat.messages = dump_messages(trim_history(_readable_history(chat) + new_messages, limit))
            chat.updated_at = now

    # -- conversations ------------------------------------------------------------------------
    async def list_chats(
        self, principal: Principal, limit: int = LIST_LIMIT, before: str | None = None
    ) -> tuple[list[ChatSummary], str | None]:
        """A page of the caller's conversations, most recently used first, and the cursor of the
        next page (None on the last one). ``before`` is a cursor from an earlier page. Raises
        InvalidInput(before) for a cursor this server did not make."""
        after = _parse_cursor(before) if before is not None else None
        limit = max(1, min(limit, LIST_LIMIT))
        async with self.db.read() as s:
            chats = await AgentChatRepository(s).list_for_user(principal.user.id, limit + 1, after)
        page = [ChatSummary(c.id, c.title, c.created_at, c.updated_at) for c in chats[:limit]]
        more = len(chats) > limit
        return page, _cursor(page[-1]) if more else None

    async def get_chat(self, principal: Principal, session_id: str) -> ChatTranscript:
        """One of the caller's conversations as a transcript. Raises NotFound("chat_not_found")."""
        chat = await self._owned(principal, session_id)
        return ChatTranscript(
            chat.id, chat.title, chat.created_at, chat.updated_at, transcript(_readable_history(chat))
        )

    async def delete_chat(self, principal: Principal, session_id: str) -> None:
        """Delete one of the caller's conversations. Raises NotFound("chat_not_found")."""
        chat_id = _normalized_id(session_id)
        deleted = False
        if chat_id:
            async with self.db.write() as s:
                deleted = await AgentChatRepository(s).delete_owned(chat_id, principal.user.id)
        if not deleted:
            raise NotFound("chat_not_found")


class ChatRun:
    """One prepared run. Iterate ``events()`` once; it calls the model, then saves the turn."""

    def __init__(
        self,
        *,
        service: AgentChatService,
        agent: Agent[AgentDeps, str],
        principal: Principal,
        message: str,
        session_id: str,
        is_new: bool,
        history: list[ModelMessage],
        lang: str,
    ) -> None:
        self.service = service
        self.agent = agent
        self.principal = principal
        self.message = message
        self.session_id = session_id
        self.is_new = is_new
        self.history = history
        self.lang = lang
        self.run_id = str(uuid.uuid4())
        self.output = ""
        self.failed = False

    async def events(self) -> AsyncGenerator[ChatEvent, None]:
        """run_started, the run's deltas and tool events, then run_finished or run_error.

        The turn is saved before run_finished is yielded. Cancelling the iteration (or closing it
        early) cancels the model run and saves nothing."""
        settings = self.service.settings
        yield ChatEvent("run_started", run_id=self.run_id, session_id=self.session_id)
        deps = AgentDeps(principal=self.principal, profiles=self.service.profiles, db=self.service.db)
        translator = EventTranslator()
        new_messages: list[ModelMessage] | None = None
        error: str | None = None
        try:
            async with self.agent.run_stream_events(
                self.message,
                message_history=self.history,
                deps=deps,
                run_id=self.run_id,
                timeout=settings.agent_timeout_seconds,
                usage_limits=UsageLimits(request_limit=MAX_MODEL_REQUESTS),
            ) as stream:
                async for event in stream:
                    if isinstance(event, AgentRunResultEvent):
                        self.output = event.result.output
                        new_messages = event.result.new_messages()
                        continue
                    for out in translator.translate(event):
                        yield out
        except (RunTimedOut, ModelTimeoutError, ModelRequestTimeout):
            error = i18n.t("agent_timeout", self.lang, seconds=_seconds(settings.agent_timeout_seconds))
            log.warning("agent run %s timed out", self.run_id)
        except ModelHTTPError as exc:
            error = i18n.t("agent_model_error", self.lang, status=exc.status_code)
            log.warning("agent run %s: model answered HTTP %s: %s", self.run_id, exc.status_code, exc)
        except ModelConnectionError as exc:
            error = i18n.t("agent_model_unreachable", self.lang)
            log.warning("agent run %s: model unreachable: %s", self.run_id, exc)
        except UsageLimitExceeded:
            error = i18n.t("agent_too_many_steps", self.lang)
            log.warning("agent run %s stopped after %s model requests", self.run_id, MAX_MODEL_REQUESTS)
        except AgentRunError as exc:
            error = i18n.t("agent_run_failed", self.lang)
            log.warning("agent run %s failed: %s: %s", self.run_id, type(exc).__name__, exc)
        except Exception:
            error = i18n.t("agent_run_failed", self.lang)
            log.exception("agent run %s failed", self.run_id)
        if error is None and new_messages is None:
            error = i18n.t("agent_run_failed", self.lang)
        if error is None and new_messages is not None:
            try:
                await self.service.record_turn(self, new_messages)
            except Exception:
                log.exception("agent run %s: the turn could not be saved", self.run_id)
                error = i18n.t("agent_run_failed", self.lang)
            else:
                yield ChatEvent("run_finished", run_id=self.run_id, output=self.output)
                return
        self.failed = True
        self.output = ""
        try:
            await self.service.record_turn(self, None)
        except Exception:
            log.exception("agent run %s: the failed run could not be recorded", self.run_id)
        yield ChatEvent("run_error", run_id=self.run_id, error=error)


def agent_service(services: Services) -> AgentChatService:
    """The process's agent service, built on first use (tests may place their own in extras)."""
    service = services.extras.get("agent")
    if service is None:
        service = services.extras["agent"] = AgentChatService.from_services(services)
    return service


def _normalized_id(value: str) -> str | None:
    """Session ids are UUIDs stored in canonical form; anything else matches no session."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def _readable_history(chat: AgentChat) -> list[ModelMessage]:
    try:
        return load_messages(chat.messages)
    except pydantic.ValidationError:
        # Unreadable history (e.g. written by an incompatible library version) must not lock the
        # user out of the conversation: it continues without the old messages.
        log.warning("agent chat %s has unreadable history; continuing without it", chat.id)
        return []


def _cursor(last: ChatSummary) -> str:
    """An opaque position in a listing: just after ``last``."""
    raw = json.dumps([last.updated_at.isoformat(), last.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, chat_id = json.loads(raw)
        when = datetime.fromisoformat(stamp)
        if when.tzinfo is None or not isinstance(chat_id, str) or len(chat_id) > 64:
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInput({"before": "invalid_value"}) from exc
    return when, chat_id


def _title(message: str) -> str:
    line = " ".join(message.split())
    return line if len(line) <= TITLE_MAX else line[: TITLE_MAX - 1] + "…"


def _seconds(value: float) -> str:
    return f"{value:g}"
