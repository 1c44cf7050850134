"""Survey endpoints: questionnaires, responses, answers, corrections, completion, statistics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import FastAPI, Query, Request
from pydantic import BaseModel, Field

from api.http_models import (
    MAX_VERSION,
    QUESTIONNAIRE_PATTERN,
    Line,
    QuestionnairePath,
    Strict,
    VersionPath,
    text_field,
)
from domain import surveys as sv
from domain.base import Actor, NotFound
from domain.text import PARAGRAPH
from infra.bootstrap import Container
from projections import households

Code = Annotated[str, Field(pattern=QUESTIONNAIRE_PATTERN, examples=["pre-return"])]
Number = Annotated[float, Field(ge=-sv.MAX_NUMBER, le=sv.MAX_NUMBER, allow_inf_nan=False)]
QuestionText = Annotated[str, text_field(sv.QUESTION_TEXT)]


class StartSurveyIn(BaseModel):
    model_config = Strict
    questionnaire_code: Code
    questionnaire_version: int = Field(ge=1, le=MAX_VERSION, examples=[1])


class AnswerIn(BaseModel):
    model_config = Strict
    question_id: Code
    value: (
        bool
        | Annotated[int, Field(ge=-int(sv.MAX_NUMBER), le=int(sv.MAX_NUMBER))]
        | Number
        | Annotated[str, text_field(PARAGRAPH.at_most(sv.MAX_TEXT_ANSWER))]
        | Annotated[list[Code], Field(max_length=sv.MAX_OPTIONS)]
    ) = Field(
        description='"yes"/"no" (or true/false), an option value, a list of options, a number, '
        "text or YYYY-MM-DD"
    )


class CorrectAnswerIn(AnswerIn):
    reason: Line


class OptionIn(BaseModel):
    model_config = Strict
    value: Code
    label_az: Line
    label_en: Line


class ShowIfIn(BaseModel):
    model_config = Strict
    question_id: Code
    values: list[Code] = Field(max_length=sv.MAX_OPTIONS)


class QuestionIn(BaseModel):
    model_config = Strict
    id: Code
    text_az: QuestionText
    text_en: QuestionText
    type: Literal[sv.QUESTION_TYPES]  # type: ignore[valid-type]
    options: list[OptionIn] = Field(default=[], max_length=sv.MAX_OPTIONS)
    required: bool = False
    min: Number | None = None
    max: Number | None = None
    show_if: ShowIfIn | None = None


class QuestionnaireIn(BaseModel):
    model_config = Strict
    code: Code
    version: int = Field(ge=1, le=MAX_VERSION)
    title_az: Line
    title_en: Line
    questions: list[QuestionIn] = Field(min_length=1, max_length=sv.MAX_QUESTIONS)


def install(
    app: FastAPI,
    container: Container,
    require: Callable[..., Any],
    command: Callable[[Request, Actor], Any],
    audited_read: Callable[[Request, Actor, str, list[UUID]], None],
    write_roles: tuple[str, ...],
    read_roles: tuple[str, ...],
) -> None:
    def state(response: Any) -> dict[str, Any]:
        return {
            "response_id": response.id,
            "household_id": response.household_id,
            "version": response.version,
            "completed": response.completed,
            "answers": response.answers,
        }

    @app.post("/api/v1/questionnaires", status_code=201, tags=["surveys"])
    def publish(
        body: QuestionnaireIn, request: Request, actor: Actor = require("supervisor")
    ) -> dict[str, Any]:
        """Publish a questionnaire version (supervisors). A published version never changes."""
        with command(request, actor):
            questionnaire = container.application.publish_questionnaire(
                body.model_dump(exclude_none=True)
            )
        return {
            "questionnaire_id": questionnaire.id,
            "code": questionnaire.code,
            "version": questionnaire.questionnaire_version,
        }

    @app.get("/api/v1/questionnaires/{code}/{version}", tags=["surveys"])
    def questionnaire(
        code: QuestionnairePath, version: VersionPath, actor: Actor = require(*read_roles)
    ) -> dict[str, Any]:
        with container.read_pool.connection() as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT * FROM rm_questionnaires WHERE code = %s AND version = %s", (code, version)
            )
            row = cur.fetchone()
        if row is None:
            raise NotFound("questionnaire", f"{code} version {version}")
        return dict(row)

    @app.post("/api/v1/households/{household_id}/surveys", status_code=201, tags=["surveys"])
    def start(
        household_id: UUID,
        body: StartSurveyIn,
        request: Request,
        actor: Actor = require(*write_roles),
    ) -> dict[str, Any]:
        with command(request, actor):
            response_id = container.application.start_survey(
                household_id, body.questionnaire_code, body.questionnaire_version
            )
        return {"response_id": response_id, "household_id": household_id}

    @app.post("/api/v1/surveys/{response_id}/answers", tags=["surveys"])
    def answer(
        response_id: UUID, body: AnswerIn, request: Request, actor: Actor = require(*write_roles)
    ) -> dict[str, Any]:
        """Answer one question; checked against its type, options, range and skip logic."""
        with command(request, actor):
            return state(
                container.application.answer_survey(response_id, body.question_id, body.value)
            )

    @app.post("/api/v1/surveys/{response_id}/corrections", tags=["surveys"])
    def correct(
        response_id: UUID,
        body: CorrectAnswerIn,
        request: Request,
        actor: Actor = require(*write_roles),
    ) -> dict[str, Any]:
        with command(request, actor):
            return state(
                container.application.correct_survey_answer(
                    response_id, body.question_id, body.value, body.reason
                )
            )

    @app.post("/api/v1/surveys/{response_id}/completion", tags=["surveys"])
    def complete(
        response_id: UUID, request: Request, actor: Actor = require(*write_roles)
    ) -> dict[str, Any]:
        """Complete the survey: refused (422, naming each question) while a required question that is
        shown for the answers given is unanswered."""
        with command(request, actor):
            return state(container.application.complete_survey(response_id))

    @app.get("/api/v1/surveys/statistics", tags=["surveys"])
    def statistics(
        questionnaire: Annotated[str, Query(pattern=QUESTIONNAIRE_PATTERN)] = "pre-return",
        by: Literal["settlement", "district"] = "settlement",
        actor: Actor = require(*read_roles),
    ) -> dict[str, Any]:
        """Per origin settlement (or district): intention to return, top obstacles, employment needs."""
        with container.read_pool.connection() as conn, conn.cursor() as cur:
            rows = households.survey_statistics(cur, questionnaire, by)
        return {"questionnaire": questionnaire, "by": by, "origins": rows}
