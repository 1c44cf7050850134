"""The `reintegration` command line: one module per context, each parsing its arguments, calling
the use case as the acting user (``common.acting``) and printing the outcome. This module only
assembles them, in the order `reintegration --help` lists them."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from api.cli import (
    audit,
    database,
    demo,
    eligibility,
    housing,
    registry,
    reintegration,
    relocation,
    service,
    surveys,
    tokens,
    witness,
)
from api.cli.common import TokenOption, use_identity

cli = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Return and Reintegration backend."
)


@cli.callback()
def identity(
    token: TokenOption = None,
    purpose: Annotated[
        str | None,
        typer.Option(
            envvar="REINTEGRATION_PURPOSE",
            help="Why personal data is read (recorded in the access log; required of auditors)",
        ),
    ] = None,
) -> None:
    """Return and Reintegration backend."""
    use_identity(token, purpose)


for command in (service.serve, service.api, service.relay, service.project):
    cli.command()(command)

for app, name in (
    (service.projections_cli, "projections"),
    (service.dead_letters_cli, "dead-letters"),
    (service.contract_cli, "contract"),
    (audit.audit_cli, "audit"),
    (database.db_cli, "db"),
    (registry.import_cli, "import"),
    (registry.persons_cli, "persons"),
    (registry.households_cli, "households"),
    (surveys.surveys_cli, "surveys"),
    (demo.demo_cli, "demo"),
    (eligibility.rule_sets_cli, "rule-sets"),
    (eligibility.eligibility_cli, "eligibility"),
    (housing.settlements_cli, "settlements"),
    (housing.lottery_cli, "lottery"),
    (relocation.offers_cli, "offers"),
    (relocation.relocation_cli, "relocation"),
    (reintegration.reintegration_cli, "reintegration"),
    (witness.witness_cli, "witness"),
    (tokens.tokens_cli, "tokens"),
    (tokens.console_cli, "console"),
):
    cli.add_typer(app, name=name)


def main() -> None:
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)
