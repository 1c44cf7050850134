"""Survey endpoints: questionnaires, responses, answers, corrections, completion, statistics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from domain.base import Actor, FieldError, NotFound, ValidationFailed
from infra.bootstrap import Container
from projections import households

Strict = ConfigDict(extra="forbid")


class StartSurveyIn(BaseModel):
    model_config = Strict
    questionnaire_code: str = Field(examples=["pre-return"])
    questionnaire_version: int = Field(examples=[1])


class AnswerIn(BaseModel):
    model_config = Strict
    question_id: str
    value: Any = Field(
        description='"yes"/"no" (or true/false), an option value, a list of options, a number, text or YYYY-MM-DD'
    )


class CorrectAnswerIn(AnswerIn):
    reason: str


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
        body: dict[str, Any], request: Request, actor: Actor = require("supervisor")
    ) -> dict[str, Any]:
        """Publish a questionnaire version (supervisors). A published version never changes."""
        with command(request, actor):
            questionnaire = container.application.publish_questionnaire(body)
        return {
            "questionnaire_id": questionnaire.id,
            "code": questionnaire.code,
            "version": questionnaire.questionnaire_version,
        }

    @app.get("/api/v1/questionnaires/{code}/{version}", tags=["surveys"])
    def questionnaire(
        code: str, version: int, actor: Actor = require(*read_roles)
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
        questionnaire: str = "pre-return",
        by: str = "settlement",
        actor: Actor = require(*read_roles),
    ) -> dict[str, Any]:
        """Per origin settlement (or district): intention to return, top obstacles, employment needs."""
        if by not in ("settlement", "district"):
            raise ValidationFailed([FieldError("by", "settlement or district")])
        with container.read_pool.connection() as conn, conn.cursor() as cur:
            rows = households.survey_statistics(cur, questionnaire, by)
        return {"questionnaire": questionnaire, "by": by, "origins": rows}
