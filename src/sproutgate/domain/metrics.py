"""What the server reports for operators to count, as ports: the rules call ``Metrics`` where
they decide (a sign-in's outcome in ``accounts``, a refresh-token reuse in ``sessions``, a
refusal in ``limits``, a delivery in the mail worker) and know nothing of how it is counted;
``MetricsExposition`` renders the counts for ``/metrics`` (``domain.monitoring``).

The Prometheus adapter, ``infra.metrics.PrometheusMetrics``, implements both without importing
the domain (label values reach it as plain strings; ``LABEL_VALUES`` lists them for the
composition root to hand over), and the domain never imports prometheus-client. ``NO_METRICS``
counts nothing (services built without one, unit tests).

Label values are part of the promise to dashboards and alerts: once shipped they never change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from enum import StrEnum
from typing import Protocol, TypeVar

from sproutgate.domain.codes.rules import CodePurpose


class SignInOutcome(StrEnum):
    """How a sign-in step ended (the ``outcome`` label of ``sproutgate_sign_ins_total``): a
    password on every face, a passkey on the pages (passwordless, or as the second step after a
    password; ``domain.passkeys``), and an authenticator or recovery code as the second step on
    every face (``domain.mfa``).

    A sign-in with a second step counts twice, once per step: its password step
    ``second_factor_required``, then its second step once more (``success`` when it opened the
    session). So ``success`` counts every session opened by a sign-in exactly once, and
    ``second_factor_required`` counts the sign-ins that were asked for a second step."""

    SUCCESS = "success"
    # The password did not match, or no account has that identifier (one answer for both).
    WRONG_PASSWORD = "wrong_password"
    RATE_LIMITED = "rate_limited"
    # The password was right, the account is disabled.
    DISABLED = "disabled"
    # The password was right and a second factor was asked for (an authenticator app is on:
    # the sign-in answered mfa_required; domain/mfa).
    SECOND_FACTOR_REQUIRED = "second_factor_required"
    # A passkey assertion opened nothing: an unknown or stale challenge, a passkey not
    # registered here (or not the password step's user's), a failed verification.
    PASSKEY_REFUSED = "passkey_refused"
    # A second step's code was refused: a wrong, replayed or already used authenticator code,
    # or a wrong or used recovery code (the mfa_token counts it; dead after five).
    WRONG_CODE = "wrong_code"


class MailDelivery(StrEnum):
    """What one delivery attempt of a queued mail came to."""

    SENT = "sent"
    RETRY = "retry"  # failed, will be tried again
    FAILED = "failed"  # failed for good (attempts used up, or unreadable with this key)


class LogoutDelivery(StrEnum):
    """What one back-channel logout delivery attempt came to (the same ``result`` values as
    mail: a dashboard reads both alike)."""

    SENT = "sent"  # the client answered 2xx
    RETRY = "retry"  # failed, will be tried again
    FAILED = "failed"  # failed for good (attempts used up)


class Metrics(Protocol):
    """Counts domain events. Implementations must be cheap (called on hot paths, on the event
    loop) and must never raise."""

    def sign_in(self, outcome: SignInOutcome) -> None:
        """One sign-in (with a password, or with a passkey) ended with ``outcome``."""
        ...

    def code_mailed(self, purpose: CodePurpose) -> None:
        """A one-time code of ``purpose`` was queued for mailing (its transaction committed)."""
        ...

    def rate_limited(self, rule: str) -> None:
        """A request was refused by the rate-limit rule named ``rule`` (``infra.ratelimit.RULES``)."""
        ...

    def refresh_token_reused(self) -> None:
        """A refresh token was presented again outside its grace window; its session was revoked."""
        ...

    def mail_delivery(self, result: MailDelivery) -> None:
        """One delivery attempt of a queued message ended with ``result``."""
        ...

    def backchannel_delivery(self, result: LogoutDelivery) -> None:
        """One back-channel logout delivery attempt ended with ``result``."""
        ...


class MetricsExposition(Protocol):
    """Renders every counted value, with the facts ``domain.monitoring`` worked out for this
    scrape, in a format ``content_type`` names."""

    content_type: str

    def exposition(
        self,
        *,
        database_up: bool,
        redis_up: bool | None,
        outbox: Mapping[str, int],
        outbox_oldest_waiting_seconds: float | None,
        logouts: Mapping[str, int] | None = None,
    ) -> bytes:
        """The document. ``redis_up`` None: no Redis configured; ``outbox`` empty and the age
        None: the outbox could not be read; ``logouts``: back-channel logout deliveries per
        status (None or empty: not read). May read files: call it off the event loop."""
        ...


class NoMetrics:
    """A Metrics that counts nothing."""

    def sign_in(self, outcome: SignInOutcome) -> None:
        pass

    def code_mailed(self, purpose: CodePurpose) -> None:
        pass

    def rate_limited(self, rule: str) -> None:
        pass

    def refresh_token_reused(self) -> None:
        pass

    def mail_delivery(self, result: MailDelivery) -> None:
        pass

    def backchannel_delivery(self, result: LogoutDelivery) -> None:
        pass


NO_METRICS: Metrics = NoMetrics()

_T = TypeVar("_T")


async def counted_sign_in(
    metrics: Metrics, step: Awaitable[_T], refusals: Mapping[type[Exception], SignInOutcome]
) -> _T:
    """Await one step of a sign-in and count how it ended (``Metrics.sign_in``): ``success``
    when it returns; when it raises, the outcome of the first class in ``refusals`` the
    exception is an instance of, and nothing for any other (bad input, a dead ``mfa_token``:
    no sign-in step). The exception propagates. Used by the steps after a password (a passkey,
    an authenticator or recovery code) and by passwordless passkey sign-ins."""
    try:
        result = await step
    except Exception as exc:
        outcome = next((o for cls, o in refusals.items() if isinstance(exc, cls)), None)
        if outcome is not None:
            metrics.sign_in(outcome)
        raise
    metrics.sign_in(SignInOutcome.SUCCESS)
    return result


# Every label value the domain can report, by label name: the adapter creates each series at
# zero up front, so a rate() over it exists before the first event. (``limit`` values are the
# rate limiter's rule names.) A decoy code is never mailed.
LABEL_VALUES: dict[str, tuple[str, ...]] = {
    "outcome": tuple(o.value for o in SignInOutcome),
    "purpose": tuple(p.value for p in CodePurpose if p is not CodePurpose.DECOY),
    "result": tuple(r.value for r in MailDelivery),  # LogoutDelivery: the same values
}
