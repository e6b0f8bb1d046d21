"""``winwin users``: create, list and disable staff accounts from the command line."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING, TextIO

from services import accounts, passwords
from services.accounts import Actor
from services.bootstrap import bootstrap
from services.config import dev_secret
from services.db.migrate import upgrade
from services.domain.roles import ActorKind, Role, parse_role
from services.errors import UsageError

if TYPE_CHECKING:
    from services.application import Container
    from services.config import Settings


def users_command(settings: Settings, args: argparse.Namespace, stdin: TextIO = sys.stdin) -> int:
    if settings.env == "dev":  # a fresh checkout: no `winwin db upgrade` needed first
        upgrade(settings.database_url)
    c = bootstrap(settings)
    match args.users_command:
        case "create":
            return _create(c, args.email, parse_role(args.role), args.generate, stdin)
        case "list":
            for a in accounts.list_accounts(c):
                disabled = f"disabled {a.disabled_at:%Y-%m-%d}" if a.disabled_at else "active"
                print(f"{a.email}\t{a.role}\tcreated {a.created_at:%Y-%m-%d}\t{disabled}")
            return 0
        case "disable":
            if not accounts.disable_account(c, args.email, cli_actor()):
                raise UsageError(f"no account {args.email.strip().lower()}")
            print(f"disabled {args.email.strip().lower()}; its sessions are ended")
            return 0
    return 2


def cli_actor() -> Actor:
    """The command line acts as an admin, named by the operating system's user."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "cli"
    return Actor(ActorKind.CLI, who, Role.ADMIN)


def _create(c: Container, email: str, role: Role, generate: bool, stdin: TextIO) -> int:
    password = "" if generate else _read_password(stdin)
    made = not password
    password = password or passwords.generated()
    account = accounts.create_account(c, email, role, password, cli_actor())
    print(f"created {account.email} ({account.role})")
    if made:
        print(f"password (shown once): {password}")
    return 0


def _read_password(stdin: TextIO) -> str:
    """At a terminal: asked twice; otherwise the first line of standard input ("" when
    it is empty: a password is then generated)."""
    if stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Again: "):
            raise UsageError("the two passwords differ")
        return first
    return stdin.readline().rstrip("\r\n")


#: The first admin that `winwin up` and `winwin demo` create in dev mode.
DEV_ADMIN = "admin@winwin.example"


def dev_admin_sign_in(settings: Settings) -> str:
    """In dev mode, "EMAIL / PASSWORD" of the first admin, made when there is no admin
    yet (its password kept in the state directory, as the dev API token is); "" when
    not in dev mode or when that account's password is no longer the kept one."""
    if settings.env != "dev":
        return ""
    c = bootstrap(settings)
    try:
        password = dev_secret(settings.state_dir, "admin_password")
        if not accounts.any_admin(c):
            by = Actor(ActorKind.CLI, "winwin up", Role.ADMIN)
            accounts.create_account(c, DEV_ADMIN, Role.ADMIN, password, by)
        if accounts.check_password(c, DEV_ADMIN, password) is None:
            return ""
        return f"{DEV_ADMIN} / {password}"
    finally:
        c.engine.dispose()
