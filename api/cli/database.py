"""`reintegration db ...`: the database's two roles, the owner and the application role (ADR 10)."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli.common import console, fail, running

db_cli = typer.Typer(no_args_is_help=True, help="The database: its owner and application roles.")


@db_cli.command("create-roles")
def create_roles(
    owner: Annotated[
        str, typer.Option(help="The role that owns every table: schema changes and upgrades")
    ] = "reintegration_owner",
    app: Annotated[
        str,
        typer.Option(
            "--app", help="The role the services run as: adds to history, changes no table"
        ),
    ] = "reintegration_app",
    owner_password: Annotated[
        str | None,
        typer.Option(
            envvar="REINTEGRATION_OWNER_PASSWORD",
            show_default=False,
            help="Lets the owner log in (for migrations); without it the owner cannot log in",
        ),
    ] = None,
    app_password: Annotated[
        str | None,
        typer.Option(
            envvar="REINTEGRATION_APP_PASSWORD",
            show_default=False,
            help="The application role's password (kept when not given again)",
        ),
    ] = None,
) -> None:
    """With an administrator's DATABASE_URL (a superuser, or the database's owner with
    CREATEROLE): create or repair the owner and application roles, create or upgrade every
    table as the owner, and grant the application role what it needs and nothing else. Run it
    again after every upgrade. Passwords are best given in the environment."""
    from infra.database_roles import Role, RolesError
    from infra.database_roles import create_roles as make_roles

    try:
        roles = Role(owner, owner_password), Role(app, app_password)
    except RolesError as exc:
        raise fail(str(exc)) from None
    with running() as (container, _stop):
        try:
            outcome = make_roles(container.database_url, *roles)
        except RolesError as exc:
            raise fail(str(exc)) from None
    for name, change in outcome.roles.items():
        console.print(f"role {name}: {change}", highlight=False, soft_wrap=True)
    if outcome.given_to_owner:
        console.print(
            f"objects given to {owner}: {outcome.given_to_owner}", highlight=False, soft_wrap=True
        )
    console.print(
        f"schema created or brought up to date as {owner}", highlight=False, soft_wrap=True
    )
    console.print(
        f"granted to {app}: {', '.join(outcome.granted)}", highlight=False, soft_wrap=True
    )
    if outcome.skipped:
        console.print(
            f"not there yet (granted by a later run): {', '.join(outcome.skipped)}",
            highlight=False,
            soft_wrap=True,
        )
    console.print(
        f"Run the services with the DATABASE_URL of {app} and DATABASE_SCHEMA_MANAGED=owner.",
        highlight=False,
        soft_wrap=True,
    )
