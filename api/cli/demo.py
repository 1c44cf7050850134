"""`reintegration demo ...`: reproducible demonstration data, and the Great Return in Aghali
end to end with the views it leaves."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from api.cli.common import console, fail, running, show

demo_cli = typer.Typer(no_args_is_help=True, help="Demonstration data (development only).")


def _development_only(container: Any) -> None:
    """Demonstration data is made by no one in particular: never in a real registry."""
    if not container.settings.development:
        raise fail(
            "demonstration data is written only in development (REINTEGRATION_ENV=development)"
        )


@demo_cli.command("seed")
def demo_seed(
    households: Annotated[int, typer.Option(min=1, max=10_000, help="How many households")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same families)")] = 2026,
    documented: Annotated[
        bool,
        typer.Option(
            help="Also record IDP status, housing, a verification and a pre-return survey"
        ),
    ] = True,
) -> None:
    """Register demonstration households (reproducible from the seed), acting as demo-operator."""
    from application.demo import seed_households

    with running() as (container, _stop):
        _development_only(container)
        ids = seed_households(container.services, households, seed, documented)
    console.print(f"registered {len(ids)} demo households; the first is {ids[0] if ids else '-'}")
    for household_id in ids[:3]:
        print(household_id)


@demo_cli.command("great-return")
def demo_great_return(
    families: Annotated[int, typer.Option(min=50, max=5_000, help="Families from Aghali")] = 400,
    seed: Annotated[int, typer.Option(help="Random seed")] = 2026,
) -> None:
    """Aghali's 200 houses: clearance, the lottery among its eligible families, offers (some
    declined, some expired), consent, convoys, arrivals; then the resulting views."""
    from application.demo import AGHALI, great_return
    from projections.queries import housing as read_model

    with running() as (container, _stop):
        _development_only(container)
        summary = great_return(container.services, families, seed)
        container.projections.catch_up()  # the views below show what the demo did
        with container.read_pool.connection() as conn, conn.cursor() as cur:
            units = read_model.units_by_status(cur, AGHALI)
            pipeline = read_model.pipeline(cur, AGHALI)
            convoys = read_model.convoys(cur, AGHALI)
            returnees = read_model.returnees(cur, AGHALI)
    show(
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
