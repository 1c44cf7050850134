"""`reintegration settlements|lottery|offers|relocation|reintegration ...`, `audit lottery`
and `demo great-return`."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli import (
    _date_option,
    _show,
    audit_cli,
    cli,
    console,
    demo_cli,
    fail,
    running,
    table_console,
)
from api.cli_eligibility import OperatorOption, SupervisorOption, _uuid, acting

settlements_cli = typer.Typer(
    no_args_is_help=True, help="Settlements of return and their housing units."
)
lottery_cli = typer.Typer(
    no_args_is_help=True, help="Public housing lotteries: announce (commit), draw (reveal)."
)
offers_cli = typer.Typer(no_args_is_help=True, help="Housing offers: accept, decline, expire.")
relocation_cli = typer.Typer(no_args_is_help=True, help="Consent, convoys and the steps of a move.")
reintegration_cli = typer.Typer(no_args_is_help=True, help="Follow-up after return.")
for app_, name in (
    (settlements_cli, "settlements"),
    (lottery_cli, "lottery"),
    (offers_cli, "offers"),
    (relocation_cli, "relocation"),
    (reintegration_cli, "reintegration"),
):
    cli.add_typer(app_, name=name)
DateOption = Annotated[str, typer.Option("--on", help="YYYY-MM-DD")]


def _views(query: Any, *args: Any) -> Any:
    with running() as (container, _stop):
        container.catch_up_read_models()
        return container.query(query, *args)


# --- settlements --------------------------------------------------------------------------


@settlements_cli.command("register")
def settlements_register(code: str, by: OperatorOption = "operator") -> None:
    """Add a settlement of the reference data to the return programme."""
    with acting(by, "operator", "settlements register") as container:
        container.housing.register_settlement(code)
    console.print(f"{code} registered")


@settlements_cli.command("clearance")
def settlements_clearance(
    code: str,
    agency: Annotated[str, typer.Option(help="The certifying agency")],
    reference: Annotated[str, typer.Option(help="The certificate's reference")],
    on: DateOption,
    by: OperatorOption = "operator",
) -> None:
    """Record the certified security clearance (demining)."""
    certified_on = _date_option(on, "--on")
    with acting(by, "operator", "settlements clearance") as container:
        container.housing.certify_clearance(code, agency, certified_on, reference)
    console.print(f"{code}: clearance certified")


@settlements_cli.command("readiness")
def settlements_readiness(
    code: str,
    items: Annotated[
        str,
        typer.Option(help="Comma-separated: electricity,gas,water,roads,school,clinic,internet"),
    ],
    reference: Annotated[str, typer.Option()],
    on: DateOption,
    by: OperatorOption = "operator",
) -> None:
    """Record certified infrastructure readiness."""
    certified_on = _date_option(on, "--on")
    with acting(by, "operator", "settlements readiness") as container:
        container.housing.certify_readiness(
            code, [i.strip() for i in items.split(",")], certified_on, reference
        )
    console.print(f"{code}: readiness certified")


@settlements_cli.command("open")
def settlements_open(code: str, on: DateOption, by: SupervisorOption = "supervisor") -> None:
    """Open the settlement for return (supervisor; only after clearance)."""
    opened_on = _date_option(on, "--on")
    with acting(by, "supervisor", "settlements open") as container:
        container.housing.open_for_return(code, opened_on)
    console.print(f"{code}: open for return from {opened_on}")


@settlements_cli.command("units")
def settlements_units(
    code: str,
    file: Annotated[Path, typer.Argument(help="CSV with reference,address,rooms,kind,floor")],
    by: OperatorOption = "operator",
) -> None:
    """Register housing units from a CSV file; every row is checked before any is recorded."""
    try:
        with file.open(encoding="utf-8", newline="") as handle:
            rows = [{**r, "floor": r.get("floor") or None} for r in csv.DictReader(handle)]
    except OSError as exc:
        raise fail(f"{file}: {exc.strerror}") from None
    with acting(by, "operator", "settlements units") as container:
        ids = container.housing.register_units(code, rows)
    console.print(f"{code}: {len(ids)} units registered")


@settlements_cli.command("show")
def settlements_show(code: str) -> None:
    """The settlement, its units by status and room count, and its lottery rounds."""
    from projections import housing as views

    def query(cur: Any) -> Any:
        return {
            "settlement": views.get_settlement(cur, code),
            "units": views.units_by_status(cur, code),
            "rounds": views.rounds(cur, code),
        }

    found = _views(query)
    if found["settlement"] is None:
        raise fail(f"settlement {code} is not in the programme", 1)
    _show(found)


# --- lottery ------------------------------------------------------------------------------


@lottery_cli.command("announce")
def lottery_announce(
    code: str,
    seed_hash: Annotated[str, typer.Option(help="sha256:<hex> of the secret seed")],
    by: SupervisorOption = "supervisor",
) -> None:
    """Announce a round: publish the seed's hash, the entrants in order and the units."""
    with acting(by, "supervisor", "lottery announce") as container:
        container.catch_up_read_models()
        r = container.housing.announce_round(code, seed_hash)
    _show(
        {
            "round": r.round_number,
            "round_id": r.id,
            "entrants": len(r.entrants),
            "units": len(r.units),
            "seed_hash": r.seed_hash,
        }
    )


@lottery_cli.command("draw")
def lottery_draw(
    code: str,
    number: int,
    seed: Annotated[str, typer.Option(help="The seed whose hash was published")],
    witnesses: Annotated[str, typer.Option(help="Who witnessed the draw")],
    by: SupervisorOption = "supervisor",
) -> None:
    """Reveal the seed, draw, and offer every drawn unit to its household."""
    with acting(by, "supervisor", "lottery draw") as container:
        r = container.housing.draw_round(code, number, seed, witnesses)
    _show(
        {
            "assigned": len(r.assignments),
            "reserve": len(r.reserve),
            "assignments": [a.__dict__ for a in r.assignments],
        }
    )


@lottery_cli.command("offer")
def lottery_offer(code: str, number: int, by: OperatorOption = "operator") -> None:
    """Offer the drawn units not offered yet (after an interrupted draw); safe to repeat."""
    with acting(by, "operator", "lottery offer") as container:
        made = container.housing.offer_drawn(code, number)
    console.print(f"{made} offers made")


# --- offers -------------------------------------------------------------------------------


@offers_cli.command("accept")
def offers_accept(household_id: str, by: OperatorOption = "operator") -> None:
    with acting(by, "operator", "offers accept") as container:
        case = container.housing.accept_offer(_uuid(household_id, "household"))
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
    with acting(by, "operator", "offers decline") as container:
        successor = container.housing.decline_offer(_uuid(household_id, "household"), reason, note)
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
    on = _date_option(today, "--today") if today else None
    with acting(by, "operator", "offers expire") as container:
        container.catch_up_read_models()  # the settlement's households come from the view
        done = container.housing.expire_offers(code, on)
    _show([{"expired": h, "offered_next_to": n} for h, n in done])


# --- relocation ---------------------------------------------------------------------------


@relocation_cli.command("consent")
def relocation_consent(
    household_id: str,
    document: Annotated[str, typer.Option(help="The signed consent form's reference")],
    informed_of: Annotated[str, typer.Option(help="Comma-separated: what the family was told")],
    recorded_by: Annotated[str, typer.Option(help="Who took the consent")],
    by: OperatorOption = "operator",
) -> None:
    with acting(by, "operator", "relocation consent") as container:
        container.housing.give_consent(
            _uuid(household_id, "household"),
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
    with acting(by, "operator", "relocation withdraw") as container:
        container.housing.withdraw_consent(_uuid(household_id, "household"), reason)
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
    on = _date_option(departs_on, "--departs-on")
    with acting(by, "operator", "relocation convoy") as container:
        convoy = container.housing.schedule_convoy(
            code, on, vehicles, [_uuid(h, "household") for h in household_ids]
        )
    print(convoy.id)


@relocation_cli.command("depart")
def relocation_depart(convoy_id: str, on: DateOption, by: OperatorOption = "operator") -> None:
    """The convoy departed with every family still in it."""
    departed_on = _date_option(on, "--on")
    with acting(by, "operator", "relocation depart") as container:
        done = container.housing.convoy_departed(_uuid(convoy_id, "convoy"), departed_on)
    console.print(f"{len(done)} families departed")


def _step(household_id: str, act: str, by: str, **kwargs: Any) -> None:
    with acting(by, "operator", f"relocation {act}") as container:
        case = container.housing.step(_uuid(household_id, "household"), act, **kwargs)
    console.print(f"{household_id}: {case.stage}")


@relocation_cli.command("arrive")
def relocation_arrive(
    household_id: str,
    on: DateOption,
    members: Annotated[int, typer.Option()],
    by: OperatorOption = "operator",
) -> None:
    _step(household_id, "arrive", by, arrived_on=_date_option(on, "--on"), members_arrived=members)


@relocation_cli.command("keys")
def relocation_keys(household_id: str, on: DateOption, by: OperatorOption = "operator") -> None:
    _step(household_id, "hand_over_keys", by, handed_over_on=_date_option(on, "--on"))


@relocation_cli.command("residence")
def relocation_residence(
    household_id: str,
    on: DateOption,
    reference: Annotated[str, typer.Option()],
    by: OperatorOption = "operator",
) -> None:
    """Register residence at the new address (opens the reintegration follow-up)."""
    with acting(by, "operator", "relocation residence") as container:
        case = container.housing.register_residence(
            _uuid(household_id, "household"), _date_option(on, "--on"), reference
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
    _step(
        household_id,
        "connect_utility",
        by,
        utility=utility,
        connected_on=_date_option(on, "--on"),
        account_reference=account,
    )


@relocation_cli.command("complete")
def relocation_complete(household_id: str, on: DateOption, by: OperatorOption = "operator") -> None:
    _step(household_id, "complete", by, completed_on=_date_option(on, "--on"))


@relocation_cli.command("pipeline")
def relocation_pipeline(settlement: Annotated[str | None, typer.Argument()] = None) -> None:
    """Households per stage per settlement."""
    from rich.table import Table

    from projections import housing as views

    table = Table("settlement", "stage", "households")
    for r in _views(views.pipeline, settlement):
        table.add_row(r["settlement_code"], r["stage"], str(r["households"]))
    table_console().print(table)


@relocation_cli.command("convoys")
def relocation_convoys(settlement: Annotated[str | None, typer.Argument()] = None) -> None:
    """Convoys with their families and each family's stage."""
    from projections import housing as views

    _show(_views(views.convoys, settlement))


# --- reintegration ------------------------------------------------------------------------


def _follow_up(household_id: str, act: str, by: str, **kwargs: Any) -> None:
    with acting(by, "operator", f"reintegration {act}") as container:
        done = container.housing.follow_up(_uuid(household_id, "household"), act, **kwargs)
    console.print(
        f"{household_id}: recorded; unmet IASC criteria: {', '.join(done.unmet_criteria) or 'none'}"
    )


@reintegration_cli.command("need")
def reintegration_need(
    household_id: str,
    persons: Annotated[int, typer.Option()],
    sectors: str = "",
    by: OperatorOption = "operator",
) -> None:
    """Record the household's employment need."""
    _follow_up(
        household_id,
        "record_employment_need",
        by,
        persons=persons,
        sectors=[s for s in sectors.split(",") if s],
        note=None,
    )


@reintegration_cli.command("employ")
def reintegration_employ(
    household_id: str,
    fin: Annotated[str, typer.Option(help="The member employed")],
    employer: Annotated[str, typer.Option()],
    start: Annotated[str, typer.Option(help="YYYY-MM-DD")],
    programme: str | None = None,
    by: OperatorOption = "operator",
) -> None:
    _follow_up(
        household_id,
        "provide_employment",
        by,
        person_fin=fin,
        employer=employer,
        programme=programme,
        start_date=_date_option(start, "--start"),
    )


@reintegration_cli.command("enrol")
def reintegration_enrol(
    household_id: str,
    service: Annotated[str, typer.Option(help="school, clinic or kindergarten")],
    institution: Annotated[str, typer.Option()],
    on: DateOption,
    fin: str | None = None,
    by: OperatorOption = "operator",
) -> None:
    _follow_up(
        household_id,
        "enrol",
        by,
        service=service,
        institution=institution,
        person_fin=fin,
        enrolled_on=_date_option(on, "--on"),
    )


@reintegration_cli.command("assess")
def reintegration_assess(
    household_id: str,
    criterion: str,
    evidence: Annotated[str, typer.Option()],
    on: DateOption,
    met: Annotated[bool, typer.Option("--met/--not-met")] = True,
    framework: Annotated[str, typer.Option(help="iasc or iris")] = "iasc",
    by: OperatorOption = "operator",
) -> None:
    """Assess one durable-solution criterion (IASC) or sub-criterion (IRIS)."""
    _follow_up(
        household_id,
        "assess",
        by,
        framework=framework,
        criterion=criterion,
        met=met,
        evidence=evidence,
        assessor=by,
        assessed_on=_date_option(on, "--on"),
    )


@reintegration_cli.command("returnees")
def reintegration_returnees(settlement: Annotated[str | None, typer.Argument()] = None) -> None:
    """Returnee households with their reintegration status and unmet IASC criteria."""
    from projections import housing as views

    _show(_views(views.returnees, settlement))


# --- audit and demo -----------------------------------------------------------------------


@audit_cli.command("lottery")
def audit_lottery(code: str, number: int) -> None:
    """Re-run a drawn round from its recorded seed, entrants and units: exit 1 on a difference."""
    from domain.base import DomainError

    with running() as (container, _stop):
        try:
            check = container.housing.verify_lottery(code, number)
        except DomainError as exc:
            raise fail(str(exc), 1) from None
    _show(check.as_dict())
    if not check.matches:
        raise typer.Exit(1)


@demo_cli.command("great-return")
def demo_great_return(
    families: Annotated[int, typer.Option(min=50, max=5_000, help="Families from Aghali")] = 400,
    seed: Annotated[int, typer.Option(help="Random seed")] = 2026,
) -> None:
    """Aghali's 200 houses: clearance, the lottery among its eligible families, offers (some
    declined, some expired), consent, convoys, arrivals; then the resulting views."""
    from infra.demo import AGHALI, great_return
    from projections import housing as views

    with running() as (container, _stop):
        container.prepare_read_models()
        summary = great_return(container, families, seed)
        with container.read_pool.connection() as conn, conn.cursor() as cur:
            units = views.units_by_status(cur, AGHALI)
            pipeline = views.pipeline(cur, AGHALI)
            convoys = views.convoys(cur, AGHALI)
            returnees = views.returnees(cur, AGHALI)
    _show(
        {
            "summary": summary,
            "units_by_status": units["totals"],
            "pipeline": {r["stage"]: r["households"] for r in pipeline},
            "convoys": [
                {
                    "convoy_id": c["convoy_id"],
                    "departs_on": c["departs_on"],
                    "families": len(c["families"]),
                    "stages": sorted({f["stage"] for f in c["families"]}),
                }
                for c in convoys
            ],
            "returnees": len(returnees),
            "a_returnee": returnees[0] if returnees else None,
            "try": [
                f"reintegration audit lottery {AGHALI} {summary['round']}",
                f"reintegration settlements show {AGHALI}",
                f"reintegration relocation pipeline {AGHALI}",
            ],
        }
    )
