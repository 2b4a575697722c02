"""CLI commands for web sign-in: ``admin create`` and ``workers passwd``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from closedloop.cli.common import fail, run
from closedloop.errors import ValidationError
from closedloop.web.accounts import Accounts, check_password_rule

__all__ = ["register"]

PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from standard input (one line) instead of a prompt.",
    ),
]


def _read_password(from_stdin: bool) -> str:
    """The new password, from stdin or an interactive prompt; at least 12 characters."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        fail(
            "no password given: pipe it to --password-stdin or type it at the prompt", 2
        )
    try:
        check_password_rule(password)
    except ValidationError as exc:  # names the length and the rule, never the password
        fail(exc.message, 2)
    return password


def register(app: typer.Typer, workers_app: typer.Typer) -> None:
    """Add ``closedloop admin create`` and ``closedloop workers passwd`` to the CLI."""
    admin_app = typer.Typer(help="Operators of the /admin pages.", no_args_is_help=True)
    app.add_typer(admin_app, name="admin")

    @admin_app.command("create")
    def admin_create(name: str, password_stdin: PasswordStdin = False) -> None:
        """Create an operator who signs in to /admin with NAME and a password."""
        password = _read_password(password_stdin)
        run(lambda e: Accounts(e.ctx).create_operator(name, password))
        typer.echo(f"operator {name} created; sign in at /admin/login")

    @workers_app.command("passwd")
    def workers_passwd(name: str, password_stdin: PasswordStdin = False) -> None:
        """Set the password worker NAME uses to sign in to /review; ends their sessions."""
        password = _read_password(password_stdin)
        run(lambda e: Accounts(e.ctx).set_worker_password(name, password))
        typer.echo(f"password set for worker {name}; they sign in at /review/login")
