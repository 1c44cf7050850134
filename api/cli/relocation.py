"""`reintegration offers ...` and `reintegration relocation ...`: a household's offer (accepted,
declined or expired, the unit passing to the reserve list), consent, convoys, the steps of the
move, and the views of the pipeline."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from api.cli.common import (
    DateOption,
    OperatorOption,
    acting,
    console,
    parse_date,
    parse_uuid,
    show,
    table_console,
    views,
)

offers_cli = typer.Typer(no_args_is_help=True, help="Housing offers: accept, decline, expire.")
relocation_cli = typer.Typer(no_args_is_help=True, help="Consent, convoys and the steps of a move.")


# --- offers -------------------------------------------------------------------------------


@offers_cli.command("accept")
def offers_accept(household_id: str, by: OperatorOption = "operator") -> None:
    with acting(by, "operator", "offers accept") as services:
        case = services.relocation.accept_offer(parse_uuid(household_id, "household"))
    console.print(
        f"{household_id}: unit {case.allocated_unit} allocated ({case.allocated_address})"
    )


@offers_cli.command("decline")
def offers_decline(
    household_id: str,
    reason: Annotated[
        str, typer.Option(help="location, size, condition, not_ready_to_move, other")
    ],
    note: str | None = None,
    by: OperatorOption = "operator",
) -> None:
    """Decline; the unit is offered to the next household on the reserve list."""
    with acting(by, "operator", "offers decline") as services:
        successor = services.relocation.decline_offer(
            parse_uuid(household_id, "household"), reason, note
        )
    console.print(
        f"declined; offered next to {successor.household_id if successor else 'nobody (reserve list empty)'}"
    )


@offers_cli.command("expire")
def offers_expire(
    code: str,
    today: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default today)")] = None,
    by: OperatorOption = "operator",
) -> None:
    """Expire the offers past their deadline (run daily by a scheduler, or by an operator)."""
    on = parse_date(today, "--today") if today else None
    with acting(by, "operator", "offers expire") as services:
        done = services.relocation.expire_offers(code, on)
    show([{"expired": h, "offered_next_to": n} for h, n in done])


# --- consent and convoys ------------------------------------------------------------------


@relocation_cli.command("consent")
def relocation_consent(
    household_id: str,
    document: Annotated[str, typer.Option(help="The signed consent form's reference")],
    informed_of: Annotated[str, typer.Option(help="Comma-separated: what the family was told")],
    recorded_by: Annotated[str, typer.Option(help="Who took the consent")],
    by: OperatorOption = "operator",
) -> None:
    with acting(by, "operator", "relocation consent") as services:
        services.relocation.give_consent(
            parse_uuid(household_id, "household"),
            [i.strip() for i in informed_of.split(",")],
            document,
            recorded_by,
        )
    console.print(f"{household_id}: consent recorded")


@relocation_cli.command("withdraw")
def relocation_withdraw(
    household_id: str, reason: Annotated[str, typer.Option()], by: OperatorOption = "operator"
) -> None:
    """Withdraw consent before departure (no penalty to IDP status)."""
    with acting(by, "operator", "relocation withdraw") as services:
        services.relocation.withdraw_consent(parse_uuid(household_id, "household"), reason)
    console.print(f"{household_id}: consent withdrawn")


@relocation_cli.command("convoy")
def relocation_convoy(
    code: str,
    household_ids: Annotated[list[str], typer.Argument(help="The families")],
    departs_on: Annotated[str, typer.Option(help="YYYY-MM-DD")],
    vehicles: Annotated[int, typer.Option()] = 1,
    by: OperatorOption = "operator",
) -> None:
    """Schedule a convoy with its families (each consented and allocated a house here)."""
    on = parse_date(departs_on, "--departs-on")
    with acting(by, "operator", "relocation convoy") as services:
        convoy = services.relocation.schedule_convoy(
            code, on, vehicles, [parse_uuid(h, "household") for h in household_ids]
        )
    print(convoy.id)


@relocation_cli.command("depart")
def relocation_depart(convoy_id: str, on: DateOption, by: OperatorOption = "operator") -> None:
    """The convoy departed with every family still in it."""
    departed_on = parse_date(on, "--on")
    with acting(by, "operator", "relocation depart") as services:
        done = services.relocation.convoy_departed(parse_uuid(convoy_id, "convoy"), departed_on)
    console.print(f"{len(done)} families departed")


# --- the steps after departure ------------------------------------------------------------


def _step(household_id: str, act: str, by: str, **kwargs: Any) -> None:
    with acting(by, "operator", f"relocation {act}") as services:
        case = services.relocation.step(parse_uuid(household_id, "household"), act, **kwargs)
    console.print(f"{household_id}: {case.stage}")


@relocation_cli.command("arrive")
def relocation_arrive(
    household_id: str,
    on: DateOption,
    members: Annotated[int, typer.Option()],
    by: OperatorOption = "operator",
) -> None:
    arrived_on = parse_date(on, "--on")
    _step(household_id, "arrive", by, arrived_on=arrived_on, members_arrived=members)


@relocation_cli.command("keys")
def relocation_keys(household_id: str, on: DateOption, by: OperatorOption = "operator") -> None:
    handed_over_on = parse_date(on, "--on")
    _step(household_id, "hand_over_keys", by, handed_over_on=handed_over_on)


@relocation_cli.command("residence")
def relocation_residence(
    household_id: str,
    on: DateOption,
    reference: Annotated[str, typer.Option()],
    by: OperatorOption = "operator",
) -> None:
    """Register residence at the new address (opens the reintegration follow-up)."""
    registered_on = parse_date(on, "--on")
    with acting(by, "operator", "relocation residence") as services:
        case = services.relocation.register_residence(
            parse_uuid(household_id, "household"), registered_on, reference
        )
    console.print(f"{household_id}: {case.stage}")


@relocation_cli.command("utility")
def relocation_utility(
    household_id: str,
    utility: str,
    on: DateOption,
    account: str | None = None,
    by: OperatorOption = "operator",
) -> None:
    connected_on = parse_date(on, "--on")
    _step(
        household_id,
        "connect_utility",
        by,
        utility=utility,
        connected_on=connected_on,
        account_reference=account,
    )


@relocation_cli.command("complete")
def relocation_complete(household_id: str, on: DateOption, by: OperatorOption = "operator") -> None:
    completed_on = parse_date(on, "--on")
    _step(household_id, "complete", by, completed_on=completed_on)


# --- views --------------------------------------------------------------------------------


@relocation_cli.command("pipeline")
def relocation_pipeline(settlement: Annotated[str | None, typer.Argument()] = None) -> None:
    """Households per stage per settlement."""
    from rich.table import Table

    from projections.queries import housing as read_model

    table = Table("settlement", "stage", "households")
    for r in views(read_model.pipeline, settlement):
        table.add_row(r["settlement_code"], r["stage"], str(r["households"]))
    table_console().print(table)


@relocation_cli.command("convoys")
def relocation_convoys(settlement: Annotated[str | None, typer.Argument()] = None) -> None:
    """Convoys with their families and each family's stage."""
    from projections.queries import housing as read_model

    show(views(read_model.convoys, settlement))
