"""`reintegration reintegration ...`: the follow-up after a family registers residence in its
settlement (employment needs and jobs, services, durable-solution assessments)."""

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
    views,
)

reintegration_cli = typer.Typer(no_args_is_help=True, help="Follow-up after return.")


def _follow_up(household_id: str, act: str, by: str, **kwargs: Any) -> None:
    with acting(by, "operator", f"reintegration {act}") as services:
        done = services.reintegration.follow_up(
            parse_uuid(household_id, "household"), act, **kwargs
        )
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
    start_date = parse_date(start, "--start")
    _follow_up(
        household_id,
        "provide_employment",
        by,
        person_fin=fin,
        employer=employer,
        programme=programme,
        start_date=start_date,
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
    enrolled_on = parse_date(on, "--on")
    _follow_up(
        household_id,
        "enrol",
        by,
        service=service,
        institution=institution,
        person_fin=fin,
        enrolled_on=enrolled_on,
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
    assessed_on = parse_date(on, "--on")
    _follow_up(
        household_id,
        "assess",
        by,
        framework=framework,
        criterion=criterion,
        met=met,
        evidence=evidence,
        assessor=by,
        assessed_on=assessed_on,
    )


@reintegration_cli.command("returnees")
def reintegration_returnees(settlement: Annotated[str | None, typer.Argument()] = None) -> None:
    """Returnee households with their reintegration status and unmet IASC criteria."""
    from projections.queries import housing as read_model

    show(views(read_model.returnees, settlement))
