"""Surveys over HTTP: questionnaires, responses, answers, corrections, completion, statistics."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.http.boundary import Utf8JsonRoute
from api.http.dependencies import Reader, Supervisor, Use, Views, Writer
from api.http.models import (
    MAX_VERSION,
    QUESTIONNAIRE_PATTERN,
    Line,
    QuestionnairePath,
    Strict,
    VersionPath,
    text_field,
)
from api.http.scopes import query_districts
from domain import surveys as sv
from domain.base import NotFound
from domain.text import PARAGRAPH
from projections.queries import households

router = APIRouter(tags=["surveys"], route_class=Utf8JsonRoute)

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


def state(response: sv.SurveyResponse) -> dict[str, Any]:
    return {
        "response_id": response.id,
        "household_id": response.household_id,
        "version": response.version,
        "completed": response.completed,
        "answers": response.answers,
    }


@router.post("/api/v1/questionnaires", status_code=201)
def publish(body: QuestionnaireIn, _: Supervisor, use: Use) -> dict[str, Any]:
    """Publish a questionnaire version (supervisors). A published version never changes."""
    questionnaire = use.surveys.publish_questionnaire(body.model_dump(exclude_none=True))
    return {
        "questionnaire_id": questionnaire.id,
        "code": questionnaire.code,
        "version": questionnaire.questionnaire_version,
    }


@router.get("/api/v1/questionnaires/{code}/{version}")
def questionnaire(
    code: QuestionnairePath, version: VersionPath, _: Reader, views: Views
) -> dict[str, Any]:
    found = views(households.get_questionnaire, code, version)
    if found is None:
        raise NotFound("questionnaire", f"{code} version {version}")
    return found


@router.post("/api/v1/households/{household_id}/surveys", status_code=201)
def start(household_id: UUID, body: StartSurveyIn, _: Writer, use: Use) -> dict[str, Any]:
    response_id = use.surveys.start_survey(
        household_id, body.questionnaire_code, body.questionnaire_version
    )
    return {"response_id": response_id, "household_id": household_id}


@router.post("/api/v1/surveys/{response_id}/answers")
def answer(response_id: UUID, body: AnswerIn, _: Writer, use: Use) -> dict[str, Any]:
    """Answer one question; checked against its type, options, range and skip logic."""
    return state(use.surveys.answer(response_id, body.question_id, body.value))


@router.post("/api/v1/surveys/{response_id}/corrections")
def correct(response_id: UUID, body: CorrectAnswerIn, _: Writer, use: Use) -> dict[str, Any]:
    return state(use.surveys.correct(response_id, body.question_id, body.value, body.reason))


@router.post("/api/v1/surveys/{response_id}/completion")
def complete(response_id: UUID, _: Writer, use: Use) -> dict[str, Any]:
    """Complete the survey: refused (422, naming each question) while a required question that is
    shown for the answers given is unanswered."""
    return state(use.surveys.complete(response_id))


@router.get("/api/v1/surveys/statistics")
def statistics(
    actor: Reader,
    views: Views,
    questionnaire: Annotated[str, Query(pattern=QUESTIONNAIRE_PATTERN)] = "pre-return",
    by: Literal["settlement", "district"] = "settlement",
) -> dict[str, Any]:
    """Per origin settlement (or district): intention to return, top obstacles, employment needs."""
    rows = views(households.survey_statistics, questionnaire, by, query_districts(actor))
    return {"questionnaire": questionnaire, "by": by, "origins": rows}
