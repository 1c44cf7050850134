"""Surveys: versioned questionnaires, and each household's answers to one of them.

A questionnaire version, once published, never changes; a change is a new version. A
response belongs to a household and a questionnaire version; each answer is its own event,
checked against the question's type, options, range and skip logic (a question shown only
for a given earlier answer). A response completes only when every required question that is
shown for the answers given has an answer.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain import text
from domain.base import (
    CaseAggregate,
    DomainError,
    FieldError,
    HouseholdCaseAggregate,
    HouseholdEvent,
    ValidationFailed,
)

QUESTION_TYPES = ("yes_no", "single_choice", "multiple_choice", "number", "text", "date")
MAX_TEXT_ANSWER = 2000
MAX_QUESTIONS = 200
MAX_OPTIONS = 50
MAX_VERSION = 10_000
MAX_NUMBER = 1e12  # answers and ranges of number questions are within plus or minus this
CODE = text.IDENTIFIER.at_most(64)
QUESTION_TEXT = text.PARAGRAPH.at_most(1000)
TEXT_ANSWER = text.PARAGRAPH.at_most(MAX_TEXT_ANSWER)
QUESTIONNAIRE_NAMESPACE = uuid5(NAMESPACE_URL, "urn:reintegration:questionnaire")
RESPONSE_NAMESPACE = uuid5(NAMESPACE_URL, "urn:reintegration:survey-response")


class SurveyError(DomainError):
    pass


class SurveyStateError(SurveyError):
    """The command does not fit the response's state (HTTP 409)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Option:
    value: str
    label_az: str
    label_en: str


@dataclass(frozen=True)
class ShowIf:
    """Show the question only when the answer to ``question_id`` is (or includes) one of ``values``."""

    question_id: str
    values: list[str]


@dataclass(frozen=True)
class Question:
    id: str
    text_az: str
    text_en: str
    type: str
    options: list[Option]
    required: bool
    min: float | None
    max: float | None
    show_if: ShowIf | None


def questionnaire_id(code: str, version: int) -> UUID:
    return uuid5(QUESTIONNAIRE_NAMESPACE, f"{code}:{version}")


def response_id(household_id: UUID, code: str, ordinal: int) -> UUID:
    """A household's responses to a questionnaire are numbered 1, 2, ...: the write model finds
    them without an index, and two surveys started at once cannot both be number n."""
    return uuid5(RESPONSE_NAMESPACE, f"{household_id}:{code}:{ordinal}")


def validate_questions(questions: list[Question]) -> list[FieldError]:
    errors: list[FieldError] = []
    seen: dict[str, Question] = {}
    if not questions:
        errors.append(FieldError("questions", "at least one question"))
    if len(questions) > MAX_QUESTIONS:
        return [FieldError("questions", f"at most {MAX_QUESTIONS} questions")]
    for i, q in enumerate(questions):
        at = f"questions[{i}]"
        qid = text.clean(errors, f"{at}.id", q.id, CODE, required="a unique, non-empty id")
        if qid is not None and qid in seen:
            errors.append(FieldError(f"{at}.id", "a unique, non-empty id"))
        for name in ("text_az", "text_en"):
            text.clean(errors, f"{at}.{name}", getattr(q, name), QUESTION_TEXT, required="required")
        if len(q.options) > MAX_OPTIONS:
            errors.append(FieldError(f"{at}.options", f"at most {MAX_OPTIONS} options"))
        for j, option in enumerate(q.options[:MAX_OPTIONS]):
            text.clean(errors, f"{at}.options[{j}].value", option.value, CODE, required="required")
            for name in ("label_az", "label_en"):
                text.clean(
                    errors,
                    f"{at}.options[{j}].{name}",
                    getattr(option, name),
                    text.LINE,
                    required="required",
                )
        for bound in ("min", "max"):
            limit = getattr(q, bound)
            if limit is not None and not (
                math.isfinite(limit) and -MAX_NUMBER <= limit <= MAX_NUMBER
            ):
                errors.append(
                    FieldError(
                        f"{at}.{bound}", f"a number between -{MAX_NUMBER:g} and {MAX_NUMBER:g}"
                    )
                )
        if q.type not in QUESTION_TYPES:
            errors.append(FieldError(f"{at}.type", f"one of {', '.join(QUESTION_TYPES)}"))
        choices = q.type in ("single_choice", "multiple_choice")
        values = [o.value for o in q.options]
        if choices and (len(values) < 2 or len(set(values)) != len(values)):
            errors.append(FieldError(f"{at}.options", "at least two options with distinct values"))
        if not choices and q.options:
            errors.append(FieldError(f"{at}.options", f"a {q.type} question has no options"))
        if q.type != "number" and (q.min is not None or q.max is not None):
            errors.append(FieldError(f"{at}.min", "only a number question has a range"))
        if q.min is not None and q.max is not None and q.min > q.max:
            errors.append(FieldError(f"{at}.min", "min is greater than max"))
        if q.show_if is not None:
            earlier = seen.get(q.show_if.question_id)
            if earlier is None:
                errors.append(FieldError(f"{at}.show_if", "must refer to an earlier question"))
            elif earlier.type == "yes_no":
                if not set(q.show_if.values) <= {"yes", "no"}:
                    errors.append(FieldError(f"{at}.show_if", "a yes/no answer is yes or no"))
            elif earlier.type in ("single_choice", "multiple_choice"):
                if not set(q.show_if.values) <= {o.value for o in earlier.options}:
                    errors.append(
                        FieldError(f"{at}.show_if", "values must be options of that question")
                    )
            else:
                errors.append(
                    FieldError(f"{at}.show_if", "may depend on a yes/no or choice question only")
                )
        seen[q.id] = q
    return errors


def validate_answer(question: Question, value: Any) -> Any:
    """The answer in its canonical form, or ValidationFailed naming ``value``."""

    def bad(reason: str) -> ValidationFailed:
        return ValidationFailed([FieldError("value", reason)])

    if question.type == "yes_no":
        if isinstance(value, bool):
            return "yes" if value else "no"
        if value not in ("yes", "no"):
            raise bad("yes or no")
        return value
    if question.type == "single_choice":
        if value not in [o.value for o in question.options]:
            raise bad(f"one of {', '.join(o.value for o in question.options)}")
        return value
    if question.type == "multiple_choice":
        allowed = [o.value for o in question.options]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise bad("a non-empty list of options")
        unknown = [v for v in value if v not in allowed]
        if unknown:
            raise bad(f"{unknown[0]!r} is not one of {', '.join(allowed)}")
        if len(set(value)) != len(value):
            raise bad("each option at most once")
        return [v for v in allowed if v in value]
    if question.type == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad("a number")
        if not (math.isfinite(value) and -MAX_NUMBER <= value <= MAX_NUMBER):
            raise bad(f"a number between -{MAX_NUMBER:g} and {MAX_NUMBER:g}")
        if question.min is not None and value < question.min:
            raise bad(f"at least {question.min:g}")
        if question.max is not None and value > question.max:
            raise bad(f"at most {question.max:g}")
        return int(value) if float(value).is_integer() else float(value)
    if question.type == "text":
        return text.required_text("value", value, TEXT_ANSWER, "non-empty text")
    if question.type == "date":
        if not isinstance(value, str):
            raise bad("a date, YYYY-MM-DD")
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            raise bad("a date, YYYY-MM-DD") from None
    raise bad(f"unknown question type {question.type}")


def shown(question: Question, answers: dict[str, Any]) -> bool:
    """Whether the question is shown for the answers given so far."""
    if question.show_if is None:
        return True
    given = answers.get(question.show_if.question_id)
    if isinstance(given, list):
        return any(v in question.show_if.values for v in given)
    return given in question.show_if.values


class Questionnaire(CaseAggregate):
    class Published(CaseAggregate.Created):
        code: str
        questionnaire_version: int
        title_az: str
        title_en: str
        questions: list[Question]

    @staticmethod
    def create_id(code: str, questionnaire_version: int) -> UUID:
        return questionnaire_id(code, questionnaire_version)

    @event(Published)
    def __init__(
        self,
        code: str,
        questionnaire_version: int,
        title_az: str,
        title_en: str,
        questions: list[Question],
    ) -> None:
        self.code = code
        self.questionnaire_version = questionnaire_version
        self.title_az = title_az
        self.title_en = title_en
        self.questions = list(questions)

    def question(self, question_id: str) -> Question:
        for q in self.questions:
            if q.id == question_id:
                return q
        raise ValidationFailed(
            [FieldError("question_id", f"no question {question_id!r} in this questionnaire")]
        )


CODE_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _normalised(q: Question) -> Question:
    """A question that passed :func:`validate_questions`, its text as it is stored."""

    def line(value: str, kind: text.TextKind) -> str:
        return text.normalise(value, kind)

    return Question(
        id=line(q.id, CODE),
        text_az=line(q.text_az, QUESTION_TEXT),
        text_en=line(q.text_en, QUESTION_TEXT),
        type=q.type,
        options=[
            Option(line(o.value, CODE), line(o.label_az, text.LINE), line(o.label_en, text.LINE))
            for o in q.options
        ],
        required=q.required,
        min=q.min,
        max=q.max,
        show_if=q.show_if,
    )


def publish(
    code: str, version: int, title_az: str, title_en: str, questions: list[Question]
) -> Questionnaire:
    errors: list[FieldError] = []
    if not CODE_PATTERN.fullmatch(code):
        errors.append(FieldError("code", "1 to 64 Latin letters, digits, - and _"))
    if not 1 <= version <= MAX_VERSION:
        errors.append(FieldError("version", f"1 to {MAX_VERSION}"))
    titles = [
        text.clean(errors, name, title, text.LINE, required="a title in Azerbaijani and English")
        for name, title in (("title_az", title_az), ("title_en", title_en))
    ]
    errors += validate_questions(questions)
    if errors:
        raise ValidationFailed(errors)
    return Questionnaire(
        code=code,
        questionnaire_version=version,
        title_az=titles[0] or "",
        title_en=titles[1] or "",
        questions=[_normalised(q) for q in questions],
    )


class SurveyResponse(HouseholdCaseAggregate):
    class Started(CaseAggregate.Created):
        household_id: UUID
        questionnaire_id: UUID
        questionnaire_code: str
        questionnaire_version: int

        @property
        def case_id(self) -> UUID:
            return self.household_id

    class QuestionAnswered(HouseholdEvent):
        question_id: str
        value: str  # JSON

    class AnswerCorrected(HouseholdEvent):
        question_id: str
        old_value: str  # JSON
        new_value: str  # JSON
        reason: str

    class Completed(HouseholdEvent):
        answered: int

    @event(Started)
    def __init__(
        self,
        household_id: UUID,
        questionnaire_id: UUID,
        questionnaire_code: str,
        questionnaire_version: int,
    ) -> None:
        self.household_id = household_id
        self.questionnaire_id = questionnaire_id
        self.questionnaire_code = questionnaire_code
        self.questionnaire_version = questionnaire_version
        self.answers: dict[str, Any] = {}
        self.completed = False

    @classmethod
    def start(
        cls, household_id: UUID, questionnaire: Questionnaire, ordinal: int
    ) -> SurveyResponse:
        response: SurveyResponse = cls._create(
            cls.Started,
            id=response_id(household_id, questionnaire.code, ordinal),
            household_id=household_id,
            questionnaire_id=questionnaire.id,
            questionnaire_code=questionnaire.code,
            questionnaire_version=questionnaire.questionnaire_version,
        )
        return response

    def answer(self, questionnaire: Questionnaire, question_id: str, value: Any) -> None:
        question = self._reachable(questionnaire, question_id)
        if question_id in self.answers:
            raise SurveyStateError(
                "already answered: correct the answer with a reason instead", "question_id"
            )
        self._answered(
            question_id=question_id,
            value=json.dumps(validate_answer(question, value), ensure_ascii=False),
        )

    @event(QuestionAnswered)
    def _answered(self, question_id: str, value: str) -> None:
        self.answers[question_id] = json.loads(value)

    def correct(
        self, questionnaire: Questionnaire, question_id: str, value: Any, reason: str
    ) -> None:
        question = questionnaire.question(question_id)
        why = text.required_text("reason", reason, text.LINE, "a reason is required")
        if question_id not in self.answers:
            raise SurveyStateError("not answered yet: answer it first", "question_id")
        new = validate_answer(question, value)
        if new == self.answers[question_id]:
            raise SurveyStateError("the answer is already that", "value")
        self._corrected(
            question_id=question_id,
            old_value=json.dumps(self.answers[question_id], ensure_ascii=False),
            new_value=json.dumps(new, ensure_ascii=False),
            reason=why,
        )

    @event(AnswerCorrected)
    def _corrected(self, question_id: str, old_value: str, new_value: str, reason: str) -> None:
        self.answers[question_id] = json.loads(new_value)

    def complete(self, questionnaire: Questionnaire) -> None:
        self._must_be_open()
        missing = [
            q.id
            for q in questionnaire.questions
            if q.required and shown(q, self.answers) and q.id not in self.answers
        ]
        if missing:
            raise ValidationFailed(
                [FieldError(f"answers.{q}", "required and not answered") for q in missing]
            )
        self._completed(answered=len(self.answers))

    @event(Completed)
    def _completed(self, answered: int) -> None:
        self.completed = True

    def _must_be_open(self) -> None:
        if self.completed:
            raise SurveyStateError("the survey is completed")

    def _reachable(self, questionnaire: Questionnaire, question_id: str) -> Question:
        self._must_be_open()
        question = questionnaire.question(question_id)
        if not shown(question, self.answers):
            raise SurveyStateError(
                f"{question_id} is not asked for the answers given", "question_id"
            )
        return question


def questions_from(data: list[dict[str, Any]]) -> list[Question]:
    """Questions from their JSON form (as published through the API or shipped in reference/)."""
    out = []
    if not isinstance(data, list):
        raise ValidationFailed([FieldError("questions", "a list of questions")])
    if len(data) > MAX_QUESTIONS:
        raise ValidationFailed([FieldError("questions", f"at most {MAX_QUESTIONS} questions")])
    for i, q in enumerate(data):
        if not isinstance(q, dict):
            raise ValidationFailed([FieldError(f"questions[{i}]", "a question is an object")])
        try:
            show_if = q.get("show_if")
            out.append(
                Question(
                    id=str(q["id"]),
                    text_az=str(q["text_az"]),
                    text_en=str(q["text_en"]),
                    type=str(q["type"]),
                    options=[
                        Option(str(o["value"]), str(o["label_az"]), str(o["label_en"]))
                        for o in q.get("options", [])
                    ],
                    required=bool(q.get("required", False)),
                    min=None if q.get("min") is None else float(q["min"]),
                    max=None if q.get("max") is None else float(q["max"]),
                    show_if=None
                    if not show_if
                    else ShowIf(str(show_if["question_id"]), [str(v) for v in show_if["values"]]),
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise ValidationFailed(
                [FieldError(f"questions[{i}]", f"malformed question: {type(exc).__name__}")]
            ) from None
    return out


def shipped_pre_return_questionnaire() -> dict[str, Any]:
    from importlib.resources import files

    text = (
        files("domain")
        .joinpath("reference/pre_return_questionnaire.v1.json")
        .read_text(encoding="utf-8")
    )
    data: dict[str, Any] = json.loads(text)
    return data
