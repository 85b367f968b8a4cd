"""History trimming and storage round trips, on pydantic-ai's own message types."""

from __future__ import annotations

from pydantic_ai.messages import (
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)

from sproutgate.agent.history import dump_messages, load_messages, starts_turn, transcript, trim_history


def turn(prompt: str, tool_rounds: int = 0) -> list:
    """One user turn: the prompt, ``tool_rounds`` call/return pairs, then the answer."""
    messages: list = [ModelRequest(parts=[UserPromptPart(prompt)])]
    for i in range(tool_rounds):
        messages.append(
            ModelResponse(parts=[ToolCallPart("get_my_profile", {}, tool_call_id=f"{prompt}{i}")])
        )
        messages.append(
            ModelRequest(parts=[ToolReturnPart("get_my_profile", "{}", tool_call_id=f"{prompt}{i}")])
        )
    messages.append(ModelResponse(parts=[TextPart(f"answer to {prompt}")]))
    return messages


def assert_pairs_intact(messages: list) -> None:
    calls = {p.tool_call_id for m in messages for p in m.parts if isinstance(p, ToolCallPart)}
    returns = {p.tool_call_id for m in messages for p in m.parts if isinstance(p, ToolReturnPart)}
    assert calls == returns


def test_short_history_is_kept_whole():
    history = turn("a") + turn("b", 1)
    assert trim_history(history, 60) == history


def test_trim_cuts_only_at_the_start_of_a_turn():
    history = turn("a", 1) + turn("b", 1) + turn("c")  # 4 + 4 + 2 messages
    for limit in range(2, 10):
        kept = trim_history(history, limit)
        assert len(kept) <= limit
        assert starts_turn(kept[0])
        assert_pairs_intact(kept)
        assert kept[-1] == history[-1]
    assert trim_history(history, 7) == history[4:]


def test_a_turn_longer_than_the_limit_is_kept_whole():
    history = turn("a") + turn("b", 5)  # the last turn has 12 messages
    kept = trim_history(history, 4)
    assert kept == history[2:]
    assert_pairs_intact(kept)


def test_limit_zero_keeps_nothing():
    assert trim_history(turn("a"), 0) == []


def test_stored_form_round_trips_through_json():
    history = turn("a", 2)
    stored = dump_messages(history)
    assert isinstance(stored, list) and stored[0]["kind"] == "request"
    restored = load_messages(stored)
    assert [type(m) for m in restored] == [type(m) for m in history]
    assert restored[1].parts[0].tool_call_id == "a0"


def test_transcript_shows_text_tool_calls_and_results():
    entries = transcript(turn("hello", 1))
    assert [e["role"] for e in entries] == ["user", "tool_call", "tool_result", "assistant"]
    assert entries[0]["content"] == "hello"
    assert entries[1]["tool_name"] == entries[2]["tool_name"] == "get_my_profile"
    assert entries[3]["content"] == "answer to hello"
