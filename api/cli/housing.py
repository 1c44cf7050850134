"""`reintegration settlements ...` and `reintegration lottery ...`: settlements of return (cleared,
ready, opened) and their housing units, and the public lottery (announce the seed's hash, draw
with the seed revealed, offer each drawn unit)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.common import (
    DateOption,
    OperatorOption,
    SupervisorOption,
    acting,
    console,
    fail,
    parse_date,
    show,
    views,
)

settlements_cli = typer.Typer(
    no_args_is_help=True, help="Settlements of return and their housing units."
)
lottery_cli = typer.Typer(
    no_args_is_help=True, help="Public housing lotteries: announce (commit), draw (reveal)."
)


# --- settlements --------------------------------------------------------------------------


@settlements_cli.command("register")
def settlements_register(code: str, by: OperatorOption = "operator") -> None:
    """Add a settlement of the reference data to the return programme."""
    with acting(by, "operator", "settlements register") as services:
        services.housing.register_settlement(code)
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
    certified_on = parse_date(on, "--on")
    with acting(by, "operator", "settlements clearance") as services:
        services.housing.certify_clearance(code, agency, certified_on, reference)
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
    certified_on = parse_date(on, "--on")
    with acting(by, "operator", "settlements readiness") as services:
        services.housing.certify_readiness(
            code, [i.strip() for i in items.split(",")], certified_on, reference
        )
    console.print(f"{code}: readiness certified")


@settlements_cli.command("open")
def settlements_open(code: str, on: DateOption, by: SupervisorOption = "supervisor") -> None:
    """Open the settlement for return (supervisor; only after clearance)."""
    opened_on = parse_date(on, "--on")
    with acting(by, "supervisor", "settlements open") as services:
        services.housing.open_for_return(code, opened_on)
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
    with acting(by, "operator", "settlements units") as services:
        ids = services.housing.register_units(code, rows)
    console.print(f"{code}: {len(ids)} units registered")


@settlements_cli.command("show")
def settlements_show(code: str) -> None:
    """The settlement, its units by status and room count, and its lottery rounds."""
    from projections.queries import housing as read_model

    def settlement(cur: Any) -> dict[str, Any]:
        return {
            "settlement": read_model.get_settlement(cur, code),
            "units": read_model.units_by_status(cur, code),
            "rounds": read_model.rounds(cur, code),
        }

    found = views(settlement)
    if found["settlement"] is None:
        raise fail(f"settlement {code} is not in the programme", 1)
    show(found)


# --- lottery ------------------------------------------------------------------------------


@lottery_cli.command("announce")
def lottery_announce(
    code: str,
    seed_hash: Annotated[str, typer.Option(help="sha256:<hex> of the secret seed")],
    by: SupervisorOption = "supervisor",
) -> None:
    """Announce a round: publish the seed's hash, the entrants in order and the units."""
    with acting(by, "supervisor", "lottery announce") as services:
        r = services.housing.announce_round(code, seed_hash)
    show(
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
    with acting(by, "supervisor", "lottery draw") as services:
        r = services.housing.draw_round(code, number, seed, witnesses)
    show(
        {
            "assigned": len(r.assignments),
            "reserve": len(r.reserve),
            "assignments": [a.__dict__ for a in r.assignments],
        }
    )


@lottery_cli.command("offer")
def lottery_offer(code: str, number: int, by: OperatorOption = "operator") -> None:
    """Offer the drawn units not offered yet (after an interrupted draw); safe to repeat."""
    with acting(by, "operator", "lottery offer") as services:
        made = services.housing.offer_drawn(code, number)
    console.print(f"{made} offers made")
