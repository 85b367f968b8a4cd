"""``sproutgate logouts``: the back-channel logout queue (OpenID Connect Back-Channel Logout 1.0)
for operators, over ``BackchannelService``: ``list`` shows counts and recent deliveries (client,
URI, status, attempts, last error; never a token, they are signed at each attempt), ``retry``
puts a failed delivery (or every one, ``--failed``) back in line with a fresh attempt budget."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from sproutgate.cli_services import run_with_services

if TYPE_CHECKING:
    from sproutgate.domain.backchannel.service import Delivery
    from sproutgate.services import Services

logouts_app = typer.Typer(
    help="Back-channel logout deliveries: which apps were told a session ended, which not yet.",
    no_args_is_help=True,
)

STATUSES = ("pending", "sending", "delivered", "failed")


def _when(dt: datetime | None) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if dt else "-"


def _row(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "client_id": d.client_id,
        "uri": d.uri,
        "sid": d.session_id,
        "reason": d.reason,
        "status": d.status,
        "attempts": d.attempts,
        "created_at": _when(d.created_at),
        "next_attempt_at": _when(d.next_attempt_at),
        "delivered_at": _when(d.delivered_at),
        "last_error": d.last_error,
    }


@logouts_app.command("list")
def logouts_list(
    status: str = typer.Option(None, help="Only this status: pending, sending, delivered or failed."),
    limit: int = typer.Option(50, help="How many deliveries, newest first."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object."),
) -> None:
    """Counts per status and the newest deliveries."""
    if status is not None and status not in STATUSES:
        typer.secho(f"unknown status {status!r}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)

    async def work(services: Services) -> tuple[dict[str, int], list[Delivery]]:
        return await services.backchannel.counts(), await services.backchannel.recent(limit, status)

    counts, rows = run_with_services(work)
    if as_json:
        typer.echo(json.dumps({"counts": counts, "deliveries": [_row(d) for d in rows]}))
        return
    typer.echo("  ".join(f"{name} {counts[name]}" for name in STATUSES))
    for d in rows:
        line = f"{_when(d.created_at)}  {d.status:<9} {d.attempts:>2}x  {d.id}  {d.client_id}  {d.uri}"
        if d.last_error and d.status != "delivered":
            line += f"  last error: {d.last_error}"
        typer.echo(line)


@logouts_app.command("retry")
def logouts_retry(
    delivery_id: str = typer.Argument(None, help="The delivery id (from `sproutgate logouts list`)."),
    failed: bool = typer.Option(False, "--failed", help="Every failed delivery."),
) -> None:
    """Try failed deliveries again (running servers pick them up within a few seconds)."""
    if bool(delivery_id) == failed:
        typer.secho("give a delivery id or --failed", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    from sproutgate.domain.errors import NotFound

    async def work(services: Services) -> int:
        if failed:
            return await services.backchannel.retry_failed()
        await services.backchannel.retry(delivery_id)
        return 1

    try:
        count = run_with_services(work)
    except NotFound:
        typer.secho(f"no failed or waiting delivery {delivery_id}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{count} delivery(ies) back in line")
