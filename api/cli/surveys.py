"""`reintegration surveys ...`: questionnaires published as versions, a household's survey
answered from the command line, and the survey statistics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.common import (
    ByOption,
    OperatorOption,
    acting,
    console,
    fail,
    parse_id,
    running,
    table_console,
)

surveys_cli = typer.Typer(no_args_is_help=True, help="Questionnaires and survey statistics.")


def _answer_value(text: str) -> Any:
    """An answer typed on the command line: JSON when it parses (2, true, ["a","b"]), else text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


@surveys_cli.command("publish")
def surveys_publish(
    file: Annotated[
        Path | None,
        typer.Argument(help="Questionnaire JSON (default: the shipped pre-return survey)"),
    ] = None,
    by: ByOption = "supervisor",
) -> None:
    """Publish a questionnaire version, acting as a supervisor."""
    from domain.surveys import shipped_pre_return_questionnaire

    try:
        data = (
            json.loads(file.read_text(encoding="utf-8"))
            if file
            else shipped_pre_return_questionnaire()
        )
    except (OSError, ValueError) as exc:
        raise fail(f"{file}: {exc}") from None
    with acting(by, "supervisor", "surveys publish") as services:
        questionnaire = services.surveys.publish_questionnaire(data)
    console.print(f"published {questionnaire.code} version {questionnaire.questionnaire_version}")


@surveys_cli.command("start")
def surveys_start(
    household_id: str,
    questionnaire: str = "pre-return",
    version: int = 1,
    by: OperatorOption = "operator",
) -> None:
    """Start a household's survey; prints the response id."""
    with acting(by, "operator", "surveys start") as services:
        response_id = services.surveys.start_survey(parse_id(household_id), questionnaire, version)
    print(response_id)


@surveys_cli.command("answer")
def surveys_answer(
    response_id: str,
    question_id: str,
    value: Annotated[
        str, typer.Argument(help='JSON or text: yes, 2, \'["housing","jobs"]\', 2026-05-01')
    ],
    by: OperatorOption = "operator",
) -> None:
    """Answer one question."""
    with acting(by, "operator", "surveys answer") as services:
        response = services.surveys.answer(
            parse_id(response_id, "survey response"), question_id, _answer_value(value)
        )
    console.print(f"{question_id}: {response.answers[question_id]}")


@surveys_cli.command("correct")
def surveys_correct(
    response_id: str,
    question_id: str,
    value: str,
    reason: Annotated[str, typer.Option()],
    by: OperatorOption = "operator",
) -> None:
    """Correct an answer, with a reason."""
    with acting(by, "operator", "surveys correct") as services:
        response = services.surveys.correct(
            parse_id(response_id, "survey response"), question_id, _answer_value(value), reason
        )
    console.print(f"{question_id}: {response.answers[question_id]}")


@surveys_cli.command("complete")
def surveys_complete(response_id: str, by: OperatorOption = "operator") -> None:
    """Complete the survey (refused while a required question that is shown is unanswered)."""
    with acting(by, "operator", "surveys complete") as services:
        services.surveys.complete(parse_id(response_id, "survey response"))
    console.print("completed")


@surveys_cli.command("statistics")
def surveys_statistics(
    questionnaire: str = "pre-return",
    by: Annotated[str, typer.Option(help="settlement or district")] = "settlement",
) -> None:
    """Intention to return, top obstacles and employment needs per origin."""
    from rich.table import Table

    from projections.queries import households

    if by not in ("settlement", "district"):
        raise fail("--by is settlement or district")
    with running() as (container, _stop):
        rows = container.query(households.survey_statistics, questionnaire, by)
    table = Table(
        by, "households", "intention", "top obstacles", "households needing jobs", "persons"
    )
    for r in rows:
        table.add_row(
            r["origin"],
            str(r["households"]),
            ", ".join(f"{k} {v}" for k, v in (r["intention"] or {}).items()),
            ", ".join(f"{o['obstacle']} {o['households']}" for o in (r["top_obstacles"] or [])),
            str(r["households_needing_jobs"]),
            str(r["persons_needing_jobs"]),
        )
    table_console().print(table if rows else "no completed surveys")
