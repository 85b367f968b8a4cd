"""Agent runs: who may run the model, how a run reports itself, and what is handed to the chats
domain when it ends.

- A run needs a configured model (ServiceUnavailable("agent_not_configured") otherwise); the
  conversation rules (prompt length, the ``agent_run_user`` rate limit, ownership, what is kept,
  the "held other users' content" mark) are the chats domain's (``domain/chats``).
- A run is checked and its history loaded before anything is streamed (``start_run``), so those
  errors reach the client as ordinary problems; the model runs afterwards (``ChatRun.events``).
- Nothing is half-saved. A run that finishes records its whole turn; a run that fails (timeout,
  model error) reports ``run_error`` and records only that it failed (see
  ``ChatService.record_turn``). A run that is cancelled (the streaming client went away) saves
  nothing.
- No database transaction is open while the model runs.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

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
from sproutgate.agent.history import HISTORY, transcript
from sproutgate.agent.model import build_chat_model, model_settings
from sproutgate.agent.tools import TOOL_INSTRUCTIONS, TOOLS, AgentDeps, ProfileTools
from sproutgate.config import Settings
from sproutgate.domain.chats.rules import LIST_LIMIT
from sproutgate.domain.chats.service import ChatService, ChatSummary, Turn
from sproutgate.domain.errors import ServiceUnavailable
from sproutgate.domain.sessions.service import Principal

if TYPE_CHECKING:
    from sproutgate.domain.registry import DomainServices as Services

log = logging.getLogger(__name__)

# Model requests per run: each round of tool calls is one. Bounds the cost of a looping model.
MAX_MODEL_REQUESTS = 10
# Tool calls with arguments that do not validate are returned to the model to fix, this often.
TOOL_ARGUMENT_RETRIES = 3


@dataclass(frozen=True, slots=True)
class ChatTranscript:
    id: str
    title: str
    created_at: datetime
    updated_at: datetime
    messages: list[dict[str, Any]]


class AgentChatService:
    """Runs the agent for a signed-in caller; their conversations are kept by ``ChatService``."""

    def __init__(
        self,
        settings: Settings,
        chats: ChatService,
        profiles: ProfileTools,
        model: Model | None = None,
    ) -> None:
        self.settings = settings
        self.chats = chats
        self.profiles = profiles
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
        return cls(services.settings, services.chats, services.profiles, model)

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
        RateLimited, ChatNotFound."""
        if self.agent is None:
            raise ServiceUnavailable("agent_not_configured")
        turn = await self.chats.start_turn(principal, message, session_id, HISTORY)
        return ChatRun(service=self, agent=self.agent, principal=principal, turn=turn, lang=lang)

    # -- conversations ------------------------------------------------------------------------
    async def list_chats(
        self, principal: Principal, limit: int = LIST_LIMIT, before: str | None = None
    ) -> tuple[list[ChatSummary], str | None]:
        """A page of the caller's conversations and the next page's cursor (``ChatService.list_chats``)."""
        return await self.chats.list_chats(principal, limit, before)

    async def get_chat(self, principal: Principal, session_id: str) -> ChatTranscript:
        """One of the caller's conversations as a transcript. Raises ChatNotFound."""
        chat = await self.chats.get_chat(principal, session_id, HISTORY)
        return ChatTranscript(chat.id, chat.title, chat.created_at, chat.updated_at, transcript(chat.history))

    async def delete_chat(self, principal: Principal, session_id: str) -> None:
        """Delete one of the caller's conversations. Raises ChatNotFound."""
        await self.chats.delete_chat(principal, session_id)


class ChatRun:
    """One prepared run. Iterate ``events()`` once; it calls the model, then saves the turn."""

    def __init__(
        self,
        *,
        service: AgentChatService,
        agent: Agent[AgentDeps, str],
        principal: Principal,
        turn: Turn[ModelMessage],
        lang: str,
    ) -> None:
        self.service = service
        self.agent = agent
        self.principal = principal
        self.turn = turn
        self.lang = lang
        self.run_id = str(uuid.uuid4())
        self.output = ""
        self.failed = False

    @property
    def session_id(self) -> str:
        return self.turn.chat_id

    async def events(self) -> AsyncGenerator[ChatEvent, None]:
        """run_started, the run's deltas and tool events, then run_finished or run_error.

        The turn is saved before run_finished is yielded. Cancelling the iteration (or closing it
        early) cancels the model run and saves nothing."""
        settings = self.service.settings
        yield ChatEvent("run_started", run_id=self.run_id, session_id=self.session_id)
        deps = AgentDeps(
            principal=self.principal,
            profiles=self.service.profiles,
            other_users_content=self.turn.other_users_content,
        )
        translator = EventTranslator()
        new_messages: list[ModelMessage] | None = None
        error: str | None = None
        try:
            async with self.agent.run_stream_events(
                self.turn.prompt,
                message_history=self.turn.history,
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
                await self.service.chats.record_turn(self.turn, new_messages, HISTORY)
            except Exception:
                log.exception("agent run %s: the turn could not be saved", self.run_id)
                error = i18n.t("agent_run_failed", self.lang)
            else:
                yield ChatEvent("run_finished", run_id=self.run_id, output=self.output)
                return
        self.failed = True
        self.output = ""
        try:
            await self.service.chats.record_turn(self.turn, None, HISTORY)
        except Exception:
            log.exception("agent run %s: the failed run could not be recorded", self.run_id)
        yield ChatEvent("run_error", run_id=self.run_id, error=error)


def agent_service(services: Services) -> AgentChatService:
    """The process's agent service, built on first use (tests may place their own in extras)."""
    service = services.extras.get("agent")
    if service is None:
        service = services.extras["agent"] = AgentChatService.from_services(services)
    return service


def _seconds(value: float) -> str:
    return f"{value:g}"
