"""`reintegration tokens mint`: a static token for a service account or for development,
printed once; the service keeps only its hash (``API_TOKEN_HASHES``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from api.cli.common import console, fail
from domain.base import ROLES
from infra.identity import IdentityError, mint

tokens_cli = typer.Typer(
    no_args_is_help=True, help="Static tokens (service accounts, development)."
)


@tokens_cli.command("mint")
def tokens_mint(
    user: Annotated[str, typer.Option(help="User id the token acts as (recorded on events)")],
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}")],
    district: Annotated[
        list[str] | None,
        typer.Option(help="District code the token is limited to (repeat; none: national)"),
    ] = None,
    expires_in: Annotated[
        int | None, typer.Option(min=1, help="Days until the token expires (none: never)")
    ] = None,
) -> None:
    """Print a new token (once: it is not stored anywhere) and its API_TOKEN_HASHES entry.
    Add the entry to API_TOKEN_HASHES and restart; remove it to revoke the token."""
    if not user.strip() or any(c in user for c in ":=,@ "):
        raise fail("--user must be a name without spaces, ':', '=', ',' or '@'")
    if role not in ROLES:
        raise fail(f"--role {role!r} is not one of {', '.join(ROLES)}")
    expires = datetime.now(UTC) + timedelta(days=expires_in) if expires_in else None
    try:
        token, entry = mint(user, role, tuple(district or ()), expires)
    except IdentityError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"token: {token}")
    typer.echo(f"API_TOKEN_HASHES entry: {entry}")
    console.print("the token is shown once: give it to its holder; keep only the entry")


console_cli = typer.Typer(no_args_is_help=True, help="The web console (/console).")


@console_cli.command("keygen")
def console_keygen() -> None:
    """A key for the console's session cookies (``CONSOLE_SESSION_KEY``): every API worker
    gets the same one; a new key signs everyone out."""
    from cryptography.fernet import Fernet

    print(Fernet.generate_key().decode())
