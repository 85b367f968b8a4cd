"""The chats domain's pure rules, without HTTP or a database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sproutgate.domain.chats.rules import (
    LIST_LIMIT,
    MESSAGE_MAX,
    TITLE_MAX,
    OtherUsersContent,
    canonical_chat_id,
    chat_title,
    keep_recent_turns,
    page_cursor,
    page_size,
    parse_page_cursor,
    require_message,
)
from sproutgate.domain.errors import InvalidInput


def test_other_users_content_marks_only_content_of_others_and_never_clears():
    mark = OtherUsersContent("me")
    mark.record([])
    mark.record(["me", "me"])
    assert not mark.held and mark.allows_profile_writes
    mark.record(["me", "mallory"])
    assert mark.held and not mark.allows_profile_writes
    mark.record(["me"])
    mark.record([])
    assert mark.held  # nothing unmarks a conversation


def test_a_conversation_stored_marked_takes_no_profile_writes():
    assert not OtherUsersContent("me", held=True).allows_profile_writes


def test_keep_recent_turns_cuts_only_where_a_turn_starts():
    # "T" starts a turn; each turn here is T plus its steps.
    history = ["T1", "a", "b", "T2", "c", "T3"]
    starts = str.startswith
    assert keep_recent_turns(history, 6, lambda m: starts(m, "T")) == history
    assert keep_recent_turns(history, 3, lambda m: starts(m, "T")) == ["T2", "c", "T3"]
    assert keep_recent_turns(history, 1, lambda m: starts(m, "T")) == ["T3"]
    assert keep_recent_turns(history, 0, lambda m: starts(m, "T")) == []
    # the latest turn is longer than the limit: kept whole
    assert keep_recent_turns(["T1", "T2", "a", "b"], 2, lambda m: starts(m, "T")) == ["T2", "a", "b"]


@pytest.mark.parametrize("message", ["", "x" * (MESSAGE_MAX + 1)])
def test_messages_outside_the_limits_are_invalid(message):
    with pytest.raises(InvalidInput) as exc:
        require_message(message)
    assert exc.value.fields == {"message": "invalid_value"}


def test_titles_are_one_line_cut_to_the_limit():
    assert chat_title("  hello\n  world ") == "hello world"
    long = chat_title("x" * 200)
    assert len(long) == TITLE_MAX and long.endswith("…")


@pytest.mark.parametrize("value", ["", "not-a-uuid", "1" * 36, "../etc"])
def test_ids_that_are_not_uuids_name_no_chat(value):
    assert canonical_chat_id(value) is None


def test_ids_are_compared_in_canonical_form():
    assert canonical_chat_id("6F9619FF-8B86-D011-B42D-00CF4FC964FF") == "6f9619ff-8b86-d011-b42d-00cf4fc964ff"


def test_cursors_round_trip_and_foreign_ones_are_invalid():
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_page_cursor(page_cursor(at, "abc")) == (at, "abc")
    for bad in ["", "!!!", "WzFd", page_cursor(at, "x" * 65), "WyIyMDI2LTAxLTAyVDAzOjA0OjA1IiwgImEiXQ"]:
        with pytest.raises(InvalidInput):
            parse_page_cursor(bad)


def test_page_sizes_are_clamped():
    assert page_size(0) == 1 and page_size(LIST_LIMIT + 5) == LIST_LIMIT and page_size(7) == 7
