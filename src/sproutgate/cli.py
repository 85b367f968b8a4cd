"""The ``sproutgate`` command. Commands call services; none of them writes SQL."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from sproutgate.cli_clients import clients_app
from sproutgate.cli_logouts import logouts_app
from sproutgate.cli_ops import keys_app, outbox_app
from sproutgate.cli_services import run_with_services
from sproutgate.config import Settings, served_url
from sproutgate.infra import logs

if TYPE_CHECKING:
    from sproutgate.services import Services

app = typer.Typer(
    help="SproutGate: a self-hosted account and authentication center.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(outbox_app, name="outbox")
app.add_typer(keys_app, name="keys")
app.add_typer(clients_app, name="clients")
app.add_typer(logouts_app, name="logouts")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@app.command()
def serve(
    host: str = typer.Option(None, help="Address to bind (default SPROUTGATE_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default SPROUTGATE_PORT or 8080)."),
    workers: int = typer.Option(1, help="Worker processes (use Redis when more than one)."),
    log_level: str = typer.Option(None, help="Log level (default SPROUTGATE_LOG_LEVEL or info)."),
) -> None:
    """Serve the API and pages (applies pending migrations first)."""
    import uvicorn

    # --host/--port win over SPROUTGATE_HOST/_PORT; without SPROUTGATE_PUBLIC_URL, mailed links
    # then name the address actually served.
    address = {k: v for k, v in (("host", host), ("port", port)) if v}
    settings = Settings.load(**address)
    log_level = (log_level or settings.log_level).lower()
    if log_level == "trace":
        # uvicorn's trace level logs each request's raw query string, which may hold the
        # admin token (?token=): refuse it rather than write secrets to the log.
        typer.secho("--log-level trace would log query strings (admin tokens); use debug.", err=True)
        raise typer.Exit(2)
    host, port = settings.host, settings.port
    # Worker processes (--workers N) build their settings from the environment: hand them this
    # address, so their mailed links name it too.
    os.environ["SPROUTGATE_HOST"], os.environ["SPROUTGATE_PORT"] = host, str(port)
    from sproutgate.api.middleware import current_request_id

    logs.configure(
        log_level,
        access_log=settings.access_log,
        log_format=settings.log_format,
        request_id=current_request_id,
    )
    say = _Notices(json_log=settings.log_format == "json")
    from sproutgate.infra import metrics_files
    from sproutgate.storage.migrate import upgrade

    upgrade(settings)
    if settings.dev_mailbox_enabled:
        # The address this machine reaches the server by (0.0.0.0 -> 127.0.0.1): the mailbox
        # answers loopback Host names only, so a link naming the wildcard would not open.
        say.info(f"Dev mailbox (no SMTP configured): {served_url(host, port)}/dev/mailbox")
        if not _is_loopback(host):
            say.warning(
                "WARNING: serving on a non-loopback address without SMTP: no mail leaves this machine and "
                "users cannot receive codes. Set SPROUTGATE_SMTP_HOST.",
                color=typer.colors.RED,
            )
    if workers > 1 and not settings.argon2_threads:
        # Each worker process bounds its own hashes; together they should not exceed the cores.
        from sproutgate.infra.hasher import hashing_threads

        os.environ["SPROUTGATE_ARGON2_THREADS"] = str(hashing_threads(settings.argon2_parallelism, workers))
    if workers > 1 and not settings.redis_url:
        say.warning(
            "WARNING: several workers without SPROUTGATE_REDIS_URL: rate limits are counted per process.",
            color=typer.colors.YELLOW,
        )
    say.info(
        f"SproutGate on http://{host}:{port} (database: {settings.resolved_database_url.split('://')[0]})"
    )
    # Metrics (infra.metrics): several workers share prometheus-client's multiprocess files in a
    # fresh directory of this run; one process counts in memory. Decided here, before anything
    # imports prometheus-client, which reads the variable once; the workers inherit it.
    run_dir = metrics_files.fresh_run_dir(settings.data_dir) if workers > 1 else None
    if run_dir is not None:
        os.environ[metrics_files.MULTIPROC_ENV] = str(run_dir)
    else:
        os.environ.pop(metrics_files.MULTIPROC_ENV, None)
    try:
        uvicorn.run(
            "sproutgate.asgi:app" if workers > 1 else _factory(settings),
            host=host,
            port=port,
            workers=workers if workers > 1 else None,
            access_log=False,
            log_level=log_level,
            # uvicorn's own lines go through the handler logs.configure set up (text or JSON).
            log_config=None,
            proxy_headers=False,
            server_header=False,
        )
    finally:
        if run_dir is not None:
            metrics_files.remove_run_dir(run_dir)


class _Notices:
    """What ``serve`` tells the person starting it: on the terminal, or, with
    SPROUTGATE_LOG_FORMAT=json, as log lines like every other (one JSON object each)."""

    def __init__(self, *, json_log: bool) -> None:
        self.json_log = json_log
        self.log = logging.getLogger("sproutgate.serve")

    def info(self, message: str) -> None:
        if self.json_log:
            self.log.info(message)
        else:
            typer.echo(message)

    def warning(self, message: str, *, color: str) -> None:
        if self.json_log:
            self.log.warning(message.removeprefix("WARNING: "))
        else:
            typer.secho(message, fg=color, bold=color == typer.colors.RED, err=True)


def _factory(settings: Settings) -> Any:
    from sproutgate.app import create_app

    return create_app(settings)


@app.command()
def migrate(revision: str = typer.Argument("head")) -> None:
    """Apply database migrations (Alembic upgrade)."""
    from sproutgate.storage.migrate import upgrade

    upgrade(Settings.load(), revision)
    typer.echo(f"database at {revision}")


def _record_cli_change(action: str, target: str | None = None, details: dict[str, Any] | None = None) -> None:
    """Add a change made from the command line to the audit trail (warn if the database is down)."""

    async def run(services: Services) -> None:
        await services.admin.record("cli", action, target, details)

    try:
        run_with_services(run)
    except Exception as exc:  # noqa: BLE001 - the change itself is done; say the audit is not
        typer.secho(f"warning: could not record {action} in the audit trail: {exc}", err=True)


def _end_console_sessions_after_rotation() -> None:
    """End every admin console session and record the rotation. Should the database be away,
    the sessions end anyway: each is bound to the token it was opened with."""

    async def run(services) -> None:  # type: ignore[no-untyped-def]
        ended = await services.console_sessions.end_all()
        await services.admin.record("cli", "admin_token.rotate", None, {"consoleSessionsEnded": ended})

    try:
        run_with_services(run)
    except Exception as exc:  # noqa: BLE001 - the rotation itself is done; say what is not
        typer.secho(f"warning: could not record admin_token.rotate in the audit trail: {exc}", err=True)


@user_app.command("promote")
def user_promote(email: str) -> None:
    """Grant the admin role to the user with this address (primary or verified secondary) or
    account name."""
    _set_role(email, "admin")


@user_app.command("demote")
def user_demote(email: str) -> None:
    """Take the admin role away (the user found as by ``user promote``)."""
    _set_role(email, "user")


def _set_role(who: str, role: str) -> None:
    from sproutgate.domain.errors import NotFound

    async def run(services: Services) -> None:
        try:
            user = await services.admin.set_role(who, role, actor="cli")
            typer.echo(f"{user.account} <{user.email}> is now {role}")
        except NotFound:
            typer.secho(f"no user {who}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None

    run_with_services(run)


@user_app.command("reset-mfa")
def user_reset_mfa(email: str) -> None:
    """Turn every second factor of the user with this address (primary or verified secondary) or
    account name off: for a user who lost their authenticator and recovery codes. Their
    sessions end; they are mailed."""
    from sproutgate.domain.errors import NotFound

    async def run(services: Services) -> None:
        try:
            user, had = await services.admin.reset_mfa(email, actor="cli")
        except NotFound:
            typer.secho(f"no user {email}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None
        if had:
            typer.echo(f"{user.account} <{user.email}>: second factors off, sessions ended, user mailed")
        else:
            typer.echo(f"{user.account} <{user.email}> had no second factor on; nothing changed")

    run_with_services(run)


@app.command("admin-token")
def admin_token(
    rotate: bool = typer.Option(False, "--rotate", help="Replace the token with a new one."),
) -> None:
    """Show (or replace) the admin token for /api/admin."""
    from sproutgate.infra import admin_token as tokens

    settings = Settings.load()
    if settings.admin_token:
        if rotate:
            typer.secho("SPROUTGATE_ADMIN_TOKEN is set; change it in the environment.", err=True)
            raise typer.Exit(1)
        typer.echo(settings.admin_token)
        return
    if rotate:
        typer.echo(tokens.rotate(settings))
        _end_console_sessions_after_rotation()
        return
    token, _ = tokens.load_or_create(settings)
    typer.echo(token)


@app.command()
def audit(
    limit: int = typer.Option(50, help="How many events."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines."),
) -> None:
    """List admin changes: who, what, when."""

    async def run(services: Services) -> None:
        events = await services.admin.audit_log(limit)
        for e in events:
            if as_json:
                typer.echo(
                    json.dumps(
                        {
                            "at": e.at.isoformat(),
                            "actor": e.actor,
                            "action": e.action,
                            "target": e.target,
                            "details": e.details,
                            "ip": e.ip,
                        },
                        ensure_ascii=False,
                    )
                )
            else:
                typer.echo(
                    f"{e.at.isoformat()}  {e.actor:<20} {e.action:<18} {e.target or '-'}  "
                    f"{json.dumps(e.details, ensure_ascii=False) if e.details else ''}"
                )

    run_with_services(run)


@app.command("import-sproutgate")
def import_sproutgate(
    directory: Path = typer.Argument(..., help="A SproutGate data/ directory, or the folder holding it."),
    update: bool = typer.Option(
        False, "--update", help="Also update accounts already in the database from their files."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would happen; change nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Import users, the admin token and auth/email config from an existing SproutGate install.

    Idempotent: accounts already in the database are skipped and reported (--update refreshes
    them from the files). Malformed files are reported and skipped; no account is ever deleted."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from sproutgate.domain.importing.service import ImportSourceError, SproutGateImporter
    from sproutgate.services import build_importer
    from sproutgate.storage.migrate import upgrade

    settings = Settings.load()
    try:
        total = SproutGateImporter.count_files(directory)
    except ImportSourceError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    upgrade(settings)
    importer, db = build_importer(settings)
    console = Console(stderr=True)

    async def run():  # type: ignore[no-untyped-def]
        try:
            with Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                disable=as_json,
            ) as bar:
                task = bar.add_task("importing users" + (" (dry run)" if dry_run else ""), total=total)
                return await importer.run(
                    directory, update=update, dry_run=dry_run, progress=lambda _: bar.advance(task)
                )
        finally:
            await db.dispose()

    report = asyncio.run(run())
    if as_json:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
        return
    _print_import_report(report)


def _print_import_report(report: Any) -> None:
    counts = report.counts()
    typer.echo(
        f"{'Dry run, nothing written: would import' if report.dry_run else 'Imported'} {counts['imported']}, "
        f"updated {counts['updated']}, skipped {counts['skipped']}, malformed {counts['malformed']} "
        f"(from {report.source})"
    )
    for o in report.outcomes:
        who = f" ({o.account})" if o.account else ""
        if o.action in ("skipped", "malformed"):
            typer.echo(f"  {o.action:<9} {o.source}{who}: {o.reason}")
        elif o.action == "updated":
            typer.echo(f"  updated   {o.source}{who}: {', '.join(o.changed)}")
        for w in o.warnings:
            typer.echo(f"  warning   {o.source}{who}: {w}")
    typer.echo(f"admin token: {report.admin_token}")
    for name, what in report.config.items():
        typer.echo(f"{name}: {what}")
    if report.not_imported:
        parts = ", ".join(f"{k}/ {v}" for k, v in report.not_imported.items())
        typer.echo(f"not imported (codes that expire in minutes): {parts}")
    typer.echo("Tokens signed by the old installation are not honoured: users sign in again.")


@app.command()
def purge() -> None:
    """Remove expired codes, abandoned sign-ups and ended sessions now."""

    async def run(services: Services) -> None:
        typer.echo(json.dumps(await services.housekeeping.purge_once()))

    run_with_services(run)


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app(prog_name="sproutgate")


if __name__ == "__main__":  # pragma: no cover
    main()
