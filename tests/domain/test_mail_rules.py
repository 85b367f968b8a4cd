"""The outbox's rules, without HTTP or a database: statuses, backoff, attempt budget, lease,
and what administrators see of a subject."""

from __future__ import annotations

from datetime import timedelta

from sproutgate.config import Settings
from sproutgate.domain.mail.rules import (
    DUE_LEASED,
    DUE_WAITING,
    RETRYABLE,
    WAITING,
    MailStatus,
    RetryPolicy,
    error_text,
    lease,
    mask_codes,
)


def test_statuses_keep_their_stored_values():
    assert [s.value for s in MailStatus] == ["pending", "sending", "sent", "failed"]
    assert (DUE_WAITING, DUE_LEASED) == ("pending", "sending")
    assert WAITING == {"pending", "sending"} and "failed" in RETRYABLE and "sent" not in RETRYABLE


def test_backoff_doubles_from_the_base_up_to_the_ceiling():
    policy = RetryPolicy(base_seconds=2, max_seconds=30, max_attempts=5)
    assert [policy.delay(n).total_seconds() for n in range(1, 7)] == [2, 4, 8, 16, 30, 30]
    assert policy.delay(0) == timedelta(seconds=2)  # never below the base


def test_attempt_budget_gives_up_on_the_last_attempt():
    policy = RetryPolicy(base_seconds=1, max_seconds=10, max_attempts=3)
    assert [policy.gives_up(n) for n in (1, 2, 3, 4)] == [False, False, True, True]


def test_policy_comes_from_settings(tmp_path):
    settings = Settings(
        data_dir=tmp_path, mail_retry_base_seconds=0.5, mail_retry_max_seconds=9, mail_max_attempts=4
    )
    assert RetryPolicy.from_settings(settings) == RetryPolicy(0.5, 9, 4)


def test_lease_outlasts_three_smtp_timeouts_and_a_minute():
    assert lease(5) == timedelta(seconds=60)
    assert lease(30) == timedelta(seconds=90)


def test_listed_subject_masks_six_digit_codes_only():
    assert mask_codes("Your code is 123456") == "Your code is ******"
    assert mask_codes("1234567 and 12345 stay") == "1234567 and 12345 stay"
    assert mask_codes("两个码 111111/222222") == "两个码 ******/******"


def test_error_text_is_bounded_and_names_the_error():
    text = error_text(ConnectionError("x" * 5000))
    assert text.startswith("ConnectionError: x") and len(text) == 1000
