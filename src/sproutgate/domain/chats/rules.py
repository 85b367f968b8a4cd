"""Rules of conversations, as pure functions and limits (no I/O).

- A message is 1-``MESSAGE_MAX`` characters; a conversation's title is its first message on one
  line, cut to ``TITLE_MAX`` characters.
- Conversation ids are UUIDs in canonical form; anything else names no conversation.
- Listings come a page of at most ``LIST_LIMIT`` at a time, most recently used first; the cursor
  of the next page is opaque to clients (keyset on ``updated_at``, then id).
- Retention: a conversation keeps its most recent messages, at most a configured number
  (``agent_history_messages``), dropping whole turns from the front (``keep_recent_turns``).
- Other users' content: a conversation in which a tool ever returned text written by a user other
  than its owner is marked for its whole life, and a marked conversation takes no profile writes
  (``OtherUsersContent``). Trimming the history never clears the mark: the model may have quoted
  that text into its own answers, which stay.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sproutgate.domain.errors import InvalidInput

MESSAGE_MAX = 8000
TITLE_MAX = 80
LIST_LIMIT = 100

M = TypeVar("M")


def require_message(message: str) -> str:
    """The message, if 1-MESSAGE_MAX characters. Raises InvalidInput(message=invalid_value)."""
    if not 1 <= len(message) <= MESSAGE_MAX:
        raise InvalidInput({"message": "invalid_value"})
    return message


def chat_title(first_message: str) -> str:
    """The first message on one line (whitespace runs become one space), cut to TITLE_MAX."""
    line = " ".join(first_message.split())
    return line if len(line) <= TITLE_MAX else line[: TITLE_MAX - 1] + "…"


def canonical_chat_id(value: str) -> str | None:
    """The id in the stored (canonical UUID) form, or None when it is not a UUID."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def page_size(limit: int) -> int:
    """A requested page size, clamped to 1-LIST_LIMIT."""
    return max(1, min(limit, LIST_LIMIT))


def page_cursor(updated_at: datetime, chat_id: str) -> str:
    """An opaque position in a listing: just after the chat (``updated_at``, ``chat_id``)."""
    raw = json.dumps([updated_at.isoformat(), chat_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_page_cursor(cursor: str) -> tuple[datetime, str]:
    """The (``updated_at``, id) a cursor of ``page_cursor`` holds. Raises InvalidInput(before)
    for anything this server did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, chat_id = json.loads(raw)
        when = datetime.fromisoformat(stamp)
        if when.tzinfo is None or not isinstance(chat_id, str) or len(chat_id) > 64:
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInput({"before": "invalid_value"}) from exc
    return when, chat_id


def keep_recent_turns(messages: Sequence[M], limit: int, starts_turn: Callable[[M], bool]) -> list[M]:
    """At most ``limit`` messages, dropping whole turns from the front; ``starts_turn`` tells
    where a turn begins (the only place history may be cut).

    When even the latest turn is longer than ``limit`` (many tool calls), that turn is kept whole:
    a cut inside it would separate tool calls from their returns, which models reject."""
    kept = list(messages)
    if limit <= 0:
        return []
    if len(kept) <= limit:
        return kept
    for start in range(len(kept) - limit, len(kept)):
        if starts_turn(kept[start]):
            return kept[start:]
    starts = [i for i, m in enumerate(kept) if starts_turn(m)]
    return kept[starts[-1] :] if starts else kept


@dataclass(slots=True)
class OtherUsersContent:
    """Whether a conversation has ever held text written by users other than its owner (names
    and bios from a search, for example), which may carry instructions aimed at the model.

    ``held`` starts from the stored mark; ``record`` sets it when a tool returns content, and
    nothing clears it. The mark is stored with the conversation, so it outlives the history the
    content was in."""

    owner_id: str
    held: bool = False

    def record(self, author_ids: Iterable[str]) -> None:
        """Note content written by ``author_ids`` entering the conversation (the owner's own
        content does not count)."""
        if any(author != self.owner_id for author in author_ids):
            self.held = True

    @property
    def allows_profile_writes(self) -> bool:
        """A conversation that held other users' content takes no profile changes, ever."""
        return not self.held
