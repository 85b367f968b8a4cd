"""The admin commands that find a user by address (`sproutgate user promote|demote|reset-mfa`,
``AdminService.set_role`` / ``reset_mfa``) find them by any address they sign in with: the
primary one or a verified secondary one, in the accounts rules' one normalized form
(``normalize_email``: case and the ``xn--`` / Unicode spellings of a domain agree), as sign-in
does. An address nobody signs in with finds nobody (NotFound), never a 500."""

from __future__ import annotations

import asyncio
import os

import pytest
from typer.testing import CliRunner, Result

from sproutgate.cli import app as cli_app
from sproutgate.domain.admin.service import UserFields
from sproutgate.domain.errors import NotFound

pytestmark = pytest.mark.both_engines

PASSWORD = "correct horse battery staple 9"


async def _user_with_secondary(harness, account: str) -> None:
    await harness.services.admin.create_user(
        UserFields(
            account=account,
            email=f"{account}@example.com",
            password=PASSWORD,
            secondary_emails=[f"{account}.alt@bücher.example"],
        ),
        actor="test",
    )


async def test_promote_and_demote_find_a_user_by_a_secondary_address(harness):
    await _user_with_secondary(harness, "by-second")
    admin = harness.services.admin
    promoted = await admin.set_role("  BY-SECOND.ALT@xn--bcher-kva.example ", "admin", actor="cli")
    assert (promoted.account, promoted.role) == ("by-second", "admin")
    assert (await admin.get_user("by-second")).user.role == "admin"
    demoted = await admin.set_role("by-second.alt@BÜCHER.example", "user", actor="cli")
    assert (demoted.account, demoted.role) == ("by-second", "user")
    # The primary address and the account name still find the same user.
    assert (await admin.set_role("By-Second@Example.com", "user", actor="cli")).account == "by-second"
    assert (await admin.set_role("BY-SECOND", "user", actor="cli")).account == "by-second"


async def test_reset_mfa_finds_a_user_by_a_secondary_address(harness):
    await _user_with_secondary(harness, "mfa-second")
    user, had = await harness.services.admin.reset_mfa("mfa-second.alt@xn--bcher-kva.example", actor="cli")
    assert (user.account, had) == ("mfa-second", False)


@pytest.mark.parametrize(
    "text", ["nobody@example.com", "by-nobody.alt@bücher.example", "not an address@", "@", "x" * 400]
)
async def test_an_address_nobody_signs_in_with_finds_nobody(harness, text):
    await _user_with_secondary(harness, "by-none")
    with pytest.raises(NotFound):
        await harness.services.admin.set_role(text, "admin", actor="cli")
    with pytest.raises(NotFound):
        await harness.services.admin.reset_mfa(text, actor="cli")


async def test_the_commands_find_a_user_by_a_secondary_address(harness):
    """`sproutgate user promote|demote|reset-mfa` go through the same look-up."""
    await _user_with_secondary(harness, "cli-second")
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SPROUTGATE_")}
    env.update(
        SPROUTGATE_DATA_DIR=str(harness.services.settings.data_dir),
        SPROUTGATE_DATABASE_URL=harness.services.settings.database_url,
    )

    async def cli(*args: str) -> Result:
        return await asyncio.to_thread(lambda: CliRunner().invoke(cli_app, ["user", *args], env=env))

    done = await cli("promote", "CLI-SECOND.ALT@xn--bcher-kva.example")
    assert done.exit_code == 0, done.stderr
    assert done.stdout.strip() == "cli-second <cli-second@example.com> is now admin"
    assert (await harness.services.admin.get_user("cli-second")).user.role == "admin"
    done = await cli("demote", "cli-second.alt@bücher.example")
    assert done.stdout.strip() == "cli-second <cli-second@example.com> is now user"
    done = await cli("reset-mfa", "cli-second.alt@bücher.example")
    assert done.exit_code == 0 and "had no second factor on" in done.stdout, done.stderr
    done = await cli("promote", "cli-nobody.alt@bücher.example")
    assert done.exit_code == 1 and "no user cli-nobody.alt@bücher.example" in done.stderr
