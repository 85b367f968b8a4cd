"""Operations commands of ``sproutgate``: the mail outbox and the signing keys.

``sproutgate outbox`` lists counts and recent messages (``--failed`` only the failed ones),
``sproutgate outbox retry [ID | --all-failed]`` puts mail back in line. ``sproutgate keys list``
and ``sproutgate keys rotate`` manage the shared signing keys in ``<data_dir>/keys``;
``keys rotate-outbox`` and ``keys rotate-mfa`` replace the keys sealing queued mail and
authenticator secrets."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer

from sproutgate.cli_services import run_with_services
from sproutgate.config import Settings

if TYPE_CHECKING:
    from sproutgate.domain.mail.service import OutboxPage
    from sproutgate.services import Services

outbox_app = typer.Typer(
    help="The mail outbox: what waits, what was sent, what failed.", invoke_without_command=True
)
keys_app = typer.Typer(
    help="Token signing keys, outbox keys and the mfa key, shared by every instance.", no_args_is_help=True
)


def _when(dt: datetime | None) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if dt else "-"


@outbox_app.callback()
def outbox(
    ctx: typer.Context,
    failed: bool = typer.Option(False, "--failed", help="Only messages that failed for good."),
    status: str = typer.Option(None, help="Only this status: pending, sending, sent or failed."),
    limit: int = typer.Option(50, help="How many messages."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object."),
) -> None:
    """Counts per status and the newest messages, with attempts and last error."""
    if ctx.invoked_subcommand is not None:
        return
    wanted = "failed" if failed else status

    async def work(services: Services) -> OutboxPage:
        # Subjects decrypted, with any code masked; a message sealed with another key says so.
        return await services.mail_outbox.overview(wanted, 1, limit)

    from sproutgate.domain.errors import InvalidInput

    try:
        result = run_with_services(work)
    except InvalidInput:
        typer.secho(f"unknown status {wanted!r}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    c = result.counts
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "counts": {
                        "pending": c.pending,
                        "sending": c.sending,
                        "sent": c.sent,
                        "failed": c.failed,
                        "retrying": c.retrying,
                    },
                    "total": result.total,
                    "messages": [
                        {
                            "id": m.id,
                            "message_id": m.message_id,
                            "to": m.to_addr,
                            "subject": m.subject,
                            "kind": m.kind,
                            "status": m.status,
                            "attempts": m.attempts,
                            "created_at": _when(m.created_at),
                            "next_attempt_at": _when(m.next_attempt_at),
                            "sent_at": _when(m.sent_at),
                            "last_error": m.last_error,
                        }
                        for m in result.messages
                    ],
                },
                ensure_ascii=False,
            )
        )
        return
    typer.echo(
        f"pending {c.pending} (retrying {c.retrying})  sending {c.sending}  sent {c.sent}  failed {c.failed}"
    )
    for m in result.messages:
        line = f"{_when(m.created_at)}  {m.status:<8} {m.attempts:>2}x  {m.id}  {m.kind:<18} {m.to_addr}"
        if m.last_error and m.status != "sent":
            line += f"  last error: {m.last_error}"
        typer.echo(line)


@outbox_app.command("retry")
def outbox_retry(
    message_id: str = typer.Argument(None, help="The message id (first column of `sproutgate outbox`)."),
    all_failed: bool = typer.Option(False, "--all-failed", help="Every failed message."),
) -> None:
    """Send failed mail again (running servers pick it up within a few seconds)."""
    if bool(message_id) == all_failed:
        typer.secho("give a message id or --all-failed", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    from sproutgate.domain.errors import NotFound

    async def work(services: Services) -> int:
        if all_failed:
            return await services.mail_outbox.retry_failed()
        await services.mail_outbox.retry(message_id)
        return 1

    try:
        count = run_with_services(work)
    except NotFound:
        typer.secho(f"no failed or waiting message {message_id}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{count} message(s) back in line")


@keys_app.command("list")
def keys_list() -> None:
    """Signing keys, oldest first; the last one signs new tokens."""
    from sproutgate.infra.keys import load_signing_keys

    keys = load_signing_keys(Settings.load().data_dir, create=False)
    for i, (kid, _) in enumerate(keys):
        typer.echo(f"{kid}{'  (signing)' if i == len(keys) - 1 else ''}")


@keys_app.command("rotate-outbox")
def keys_rotate_outbox() -> None:
    """Add a new outbox key (encrypts queued mail). Every instance sharing the data dir seals new
    mail with it within a minute and opens it at once; older keys keep opening the mail they
    sealed. Delete an older key file once no mail it sealed remains (7 days after rotating)."""
    from sproutgate.infra.sealing import add_outbox_key

    name = add_outbox_key(Settings.load().data_dir)
    typer.echo(f"new outbox key {name}")


RESEAL_PASSES = 3  # the second pass catches an enrolment committed during the first


@keys_app.command("rotate-mfa")
def keys_rotate_mfa(
    keep_old: bool = typer.Option(
        False, "--keep-old", help="Leave the older mfa keys in data/keys (they keep opening, never seal)."
    ),
) -> None:
    """Replace the key that seals authenticator secrets (data/keys/mfa.key): add a new key,
    re-seal every secret under it in one transaction (the older keys open them until it
    commits), then move the older keys to data/keys/retired/. Running instances seal with the
    new key at their next enrolment and open re-sealed secrets at once; no restart."""
    from sproutgate.infra.sealing import add_mfa_key, retire_mfa_keys

    data_dir = Settings.load().data_dir
    name = add_mfa_key(data_dir)
    typer.echo(f"new mfa key {name}")

    async def work(services: Services) -> tuple[int, int, list[str]]:
        total = 0
        report = None
        for _ in range(RESEAL_PASSES):
            report = await services.mfa.reseal_secrets()
            total += report.resealed
            if report.resealed == 0:
                break
        assert report is not None
        return total, report.current, report.unopened

    resealed, current, unopened = run_with_services(work)
    typer.echo(f"re-sealed {resealed} authenticator secret(s); {current} now under {name}")
    if unopened:
        typer.secho(
            f"{len(unopened)} secret(s) open with no mfa key (users {', '.join(unopened)}): older keys "
            "kept; restore the lost key or reset those users' factors (sproutgate user reset-mfa)",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(1)
    if keep_old:
        return
    for old in retire_mfa_keys(data_dir, keep=name):
        typer.echo(f"retired {old} (moved to keys/retired/)")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Add a new signing key. Every instance sharing the data dir signs with it within a minute
    and verifies it at once; older keys keep verifying until you delete their files."""
    from sproutgate.infra.keys import generate_signing_key

    kid = generate_signing_key(Settings.load().data_dir)
    typer.echo(f"new signing key {kid}")
