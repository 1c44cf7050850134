"""Questionnaires and survey responses as the domain decides them, with property tests."""

from __future__ import annotations

from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.base import Actor, CommandContext, ValidationFailed, acting_as
from domain.surveys import (
    Option,
    Question,
    ShowIf,
    SurveyResponse,
    SurveyStateError,
    publish,
    questions_from,
    shipped_pre_return_questionnaire,
    shown,
    validate_answer,
    validate_questions,
)


@pytest.fixture(autouse=True)
def operator() -> object:
    with acting_as(CommandContext(Actor("op", "operator"), "c", "k")) as context:
        yield context


def pre_return():
    data = shipped_pre_return_questionnaire()
    return publish(
        data["code"],
        data["version"],
        data["title_az"],
        data["title_en"],
        questions_from(data["questions"]),
    )


def response_to(questionnaire):
    return SurveyResponse(
        household_id=uuid4(),
        questionnaire_id=questionnaire.id,
        questionnaire_code=questionnaire.code,
        questionnaire_version=questionnaire.questionnaire_version,
    )


def q(type_: str, **kw: object) -> Question:
    values = {
        "id": "q",
        "text_az": "s",
        "text_en": "q",
        "type": type_,
        "options": [],
        "required": True,
        "min": None,
        "max": None,
        "show_if": None,
    }
    values.update(kw)
    return Question(**values)  # type: ignore[arg-type]


CHOICES = [Option("a", "a", "a"), Option("b", "b", "b"), Option("c", "c", "c")]


def test_the_shipped_questionnaire_is_valid() -> None:
    questionnaire = pre_return()
    assert questionnaire.code == "pre-return" and len(questionnaire.questions) == 13


def test_a_complete_survey_of_a_family_returning_within_a_year() -> None:
    questionnaire = pre_return()
    response = response_to(questionnaire)
    for question_id, value in [
        ("intention", "within_12_months"),
        ("reasons_to_return", ["home", "family_graves"]),
        ("obstacles", ["housing", "jobs"]),
        ("employment_needed", True),
        ("employment_count", 2),
        ("health_needs", "no"),
        ("school_children", 1),
    ]:
        response.answer(questionnaire, question_id, value)
    response.complete(questionnaire)
    assert response.completed and response.answers["employment_needed"] == "yes"


def test_completion_names_every_required_question_still_unanswered() -> None:
    questionnaire = pre_return()
    response = response_to(questionnaire)
    response.answer(questionnaire, "intention", "no")
    with pytest.raises(ValidationFailed) as raised:
        response.complete(questionnaire)
    fields = {e.field for e in raised.value.errors}
    assert fields == {
        "answers.reasons_not_to_return",
        "answers.obstacles",
        "answers.employment_needed",
        "answers.health_needs",
        "answers.school_children",
    }


def test_a_question_not_shown_for_the_answers_given_cannot_be_answered() -> None:
    questionnaire = pre_return()
    response = response_to(questionnaire)
    response.answer(questionnaire, "employment_needed", "no")
    with pytest.raises(SurveyStateError):
        response.answer(questionnaire, "employment_count", 2)


def test_an_answer_is_given_once_then_corrected_with_a_reason() -> None:
    questionnaire = pre_return()
    response = response_to(questionnaire)
    response.answer(questionnaire, "school_children", 2)
    with pytest.raises(SurveyStateError):
        response.answer(questionnaire, "school_children", 3)
    with pytest.raises(ValidationFailed):
        response.correct(questionnaire, "school_children", 3, " ")
    response.correct(questionnaire, "school_children", 3, "the neighbour's child was counted")
    event = response.collect_events()[-1]
    assert (event.old_value, event.new_value) == ("2", "3")


def test_nothing_is_answered_after_completion() -> None:
    questionnaire = publish("mini", 1, "a", "b", [q("yes_no")])
    response = response_to(questionnaire)
    response.answer(questionnaire, "q", "yes")
    response.complete(questionnaire)
    with pytest.raises(SurveyStateError):
        response.complete(questionnaire)


@pytest.mark.parametrize(
    ("questions", "field"),
    [
        ([q("single_choice", options=CHOICES[:1])], "questions[0].options"),
        ([q("text", options=CHOICES)], "questions[0].options"),
        ([q("number", min=5.0, max=1.0)], "questions[0].min"),
        ([q("poem")], "questions[0].type"),
        ([q("yes_no"), q("yes_no")], "questions[1].id"),
        ([q("yes_no", show_if=ShowIf("later", ["yes"]))], "questions[0].show_if"),
        (
            [q("yes_no", id="a"), q("text", id="b", show_if=ShowIf("a", ["maybe"]))],
            "questions[1].show_if",
        ),
    ],
)
def test_a_malformed_questionnaire_is_refused(questions: list[Question], field: str) -> None:
    assert field in {e.field for e in validate_questions(questions)}


@given(st.lists(st.sampled_from(["a", "b", "c", "x"]), max_size=5))
def test_a_multiple_choice_answer_is_accepted_exactly_when_it_is_distinct_known_options(
    values: list[str],
) -> None:
    question = q("multiple_choice", options=CHOICES)
    valid = bool(values) and "x" not in values and len(set(values)) == len(values)
    if valid:
        assert sorted(validate_answer(question, values)) == sorted(values)
    else:
        with pytest.raises(ValidationFailed):
            validate_answer(question, values)


@given(
    st.one_of(
        st.integers(-100, 100),
        st.floats(-100, 100, allow_nan=False),
        st.text(max_size=3),
        st.booleans(),
    )
)
def test_a_number_answer_is_accepted_exactly_when_it_is_a_number_in_range(value: object) -> None:
    question = q("number", min=0.0, max=20.0)
    valid = isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 20
    if valid:
        assert validate_answer(question, value) == value
    else:
        with pytest.raises(ValidationFailed):
            validate_answer(question, value)


@given(st.one_of(st.sampled_from(["yes", "no", True, False]), st.text(max_size=4), st.integers()))
def test_a_yes_no_answer_is_stored_as_yes_or_no(value: object) -> None:
    question = q("yes_no")
    if value in ("yes", "no") or isinstance(value, bool):
        assert validate_answer(question, value) in ("yes", "no")
    else:
        with pytest.raises(ValidationFailed):
            validate_answer(question, value)


@given(st.dates().map(lambda d: d.isoformat()) | st.text(max_size=12))
def test_a_date_answer_must_be_an_iso_date(value: str) -> None:
    from datetime import date

    try:
        expected = date.fromisoformat(value).isoformat()
    except ValueError:
        with pytest.raises(ValidationFailed):
            validate_answer(q("date"), value)
    else:
        assert validate_answer(q("date"), value) == expected


def test_skip_logic_follows_multiple_choice_answers() -> None:
    question = q("text", show_if=ShowIf("p", ["b"]))
    assert shown(question, {"p": ["a", "b"]})
    assert not shown(question, {"p": ["a"]})
    assert not shown(question, {})
