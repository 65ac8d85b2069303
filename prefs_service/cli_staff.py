"""`prefs staff`: staff accounts for the console at /staff."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from .access import service as access
from .access.models import REVIEWER, ROLES
from .cli_common import CLI_ACTOR, fail, require_migrated
from .errors import DomainError
from .extensions import db


@click.group("staff", cls=AppGroup)  # each command runs in the app context
def staff_cli():
    """Staff accounts for the console at /staff."""


def _new_password() -> str:
    """A password from standard input (first line) when it is not a terminal,
    otherwise asked for twice."""
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\n")


def _staff_account(email: str):
    try:
        return access.staff_by_email(email)
    except DomainError as exc:
        fail(exc)


@staff_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), default=REVIEWER, show_default=True, help="admin also manages staff and API keys.")
def staff_create(email, role):
    """Create a staff account. The password is read from standard input (first
    line) when it is not a terminal, otherwise asked for twice."""
    require_migrated()
    password = _new_password()
    try:
        user = access.create_staff(email=email, password=password, role=role, actor=CLI_ACTOR)
    except DomainError as exc:
        fail(exc)
    db.session.commit()
    click.echo(f"Created staff account {user.id} for {user.email} ({user.role}).")


@staff_cli.command("list")
def staff_list():
    """Every staff account: role, state and last sign-in."""
    for user in access.list_staff():
        state = "disabled" if not user.active else "locked" if access.is_locked(user) else "active"
        last = f"{user.last_login_at:%Y-%m-%d %H:%M}" if user.last_login_at else "never"
        click.echo(f"{user.email:<40} {user.role:<9} {state:<9} last sign-in {last}")


def _change(email: str, change, done: str, unchanged: str) -> None:
    user = _staff_account(email)
    try:
        changed = change(user)
    except DomainError as exc:
        fail(exc)
    db.session.commit()
    click.echo((done if changed else unchanged).format(email=user.email))


@staff_cli.command("disable")
@click.argument("email")
def staff_disable(email):
    """Refuse the account's sign-ins and end its sessions."""
    _change(
        email,
        lambda u: access.disable_staff(user=u, actor=CLI_ACTOR),
        "Disabled {email}; its sessions have ended.",
        "{email} was disabled already.",
    )


@staff_cli.command("enable")
@click.argument("email")
def staff_enable(email):
    """Let a disabled account sign in again."""
    _change(email, lambda u: access.enable_staff(user=u, actor=CLI_ACTOR), "Enabled {email}.", "{email} was enabled already.")


@staff_cli.command("unlock")
@click.argument("email")
def staff_unlock(email):
    """Lift a lock-out after too many wrong passwords."""
    _change(email, lambda u: access.unlock_staff(user=u, actor=CLI_ACTOR), "Unlocked {email}.", "{email} was not locked.")


@staff_cli.command("reset-password")
@click.argument("email")
def staff_reset_password(email):
    """Set a new password (read as `staff create` reads it) and end the account's sessions."""
    user = _staff_account(email)
    password = _new_password()
    try:
        access.reset_password(user=user, password=password, actor=CLI_ACTOR)
    except DomainError as exc:
        fail(exc)
    db.session.commit()
    click.echo(f"Set a new password for {user.email}; its sessions have ended.")


@staff_cli.command("set-role")
@click.argument("email")
@click.argument("role", type=click.Choice(ROLES))
def staff_set_role(email, role):
    """Make the account an admin or a reviewer."""
    _change(
        email, lambda u: access.set_role(user=u, role=role, actor=CLI_ACTOR), f"{{email}} is now {role}.", f"{{email}} was {role} already."
    )
