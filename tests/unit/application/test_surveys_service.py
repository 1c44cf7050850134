"""Surveys in memory: a published questionnaire never changes, and a response follows it."""

from __future__ import annotations

from uuid import uuid4

import pytest

from application.services import Services
from domain.base import CommandContext, NotFound, ValidationFailed
from domain.registry import InvalidState
from domain.surveys import SurveyStateError, shipped_pre_return_questionnaire
from tests.unit.application.conftest import family


def test_a_questionnaire_version_is_published_once(
    services: Services, operator: CommandContext
) -> None:
    published = services.surveys.publish_questionnaire(shipped_pre_return_questionnaire())
    assert services.surveys.get_questionnaire("pre-return", 1).id == published.id
    with pytest.raises(InvalidState, match="already published"):
        services.surveys.publish_questionnaire(shipped_pre_return_questionnaire())


def test_a_malformed_questionnaire_is_invalid_input_not_a_crash(
    services: Services, operator: CommandContext
) -> None:
    with pytest.raises(ValidationFailed):
        services.surveys.publish_questionnaire({"code": "x", "version": "one", "questions": 7})


def test_a_survey_is_answered_corrected_and_completed_only_when_every_shown_question_is(
    services: Services, operator: CommandContext
) -> None:
    services.surveys.publish_questionnaire(shipped_pre_return_questionnaire())
    household_id = services.registry.register_household(family(2))
    response_id = services.surveys.start_survey(household_id, "pre-return", 1)
    services.surveys.answer(response_id, "intention", "no")
    with pytest.raises(ValidationFailed) as unanswered:
        services.surveys.complete(response_id)
    assert "answers.reasons_not_to_return" in {e.field for e in unanswered.value.errors}
    services.surveys.correct(response_id, "intention", "now", "misheard at the interview")
    for question, value in (
        ("obstacles", ["none"]),
        ("employment_needed", "no"),
        ("health_needs", "no"),
        ("school_children", 0),
    ):
        services.surveys.answer(response_id, question, value)
    done = services.surveys.complete(response_id)
    assert done.completed and done.answers["intention"] == "now"
    with pytest.raises(SurveyStateError):
        services.surveys.answer(response_id, "health_needs", "yes")
    second = services.surveys.start_survey(household_id, "pre-return", 1)
    assert services.surveys.responses(household_id, "pre-return") == [response_id, second]


def test_a_survey_needs_a_registered_household_and_a_published_questionnaire(
    services: Services, operator: CommandContext
) -> None:
    with pytest.raises(NotFound):
        services.surveys.start_survey(uuid4(), "pre-return", 1)
    household_id = services.registry.register_household(family(1))
    with pytest.raises(NotFound):
        services.surveys.start_survey(household_id, "pre-return", 1)
