"""The surveys' use cases: questionnaires published as versions, and each household's answers."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from application.ports import ConcurrentUpdate, EventStore
from domain import surveys
from domain.base import FieldError, NotFound, ValidationFailed
from domain.registry import InvalidState


class Surveys:
    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._questionnaires: dict[UUID, surveys.Questionnaire] = {}

    def publish_questionnaire(self, data: dict[str, Any]) -> surveys.Questionnaire:
        """Publish a questionnaire version; publishing the same code and version again is refused."""
        try:
            questionnaire = surveys.publish(
                str(data.get("code", "")),
                int(data.get("version", 0)),
                str(data.get("title_az", "")),
                str(data.get("title_en", "")),
                surveys.questions_from(list(data.get("questions", []))),
            )
        except (TypeError, ValueError) as exc:
            raise ValidationFailed(
                [FieldError("body", f"malformed questionnaire: {type(exc).__name__}")]
            ) from None
        try:
            self.store.save(questionnaire)
        except ConcurrentUpdate:
            raise InvalidState(
                f"questionnaire {questionnaire.code} version {questionnaire.questionnaire_version} "
                "is already published; publish a new version instead",
                "version",
            ) from None
        return questionnaire

    def get_questionnaire(self, code: str, version: int) -> surveys.Questionnaire:
        found: surveys.Questionnaire = self.store.get(
            surveys.questionnaire_id(code, version), f"questionnaire {code} version {version}"
        )
        return found

    def _questionnaire(self, questionnaire_id: UUID) -> surveys.Questionnaire:
        """A published questionnaire never changes: each is loaded once per process."""
        found = self._questionnaires.get(questionnaire_id)
        if found is None:
            found = self.store.get(questionnaire_id, "questionnaire")
            self._questionnaires[questionnaire_id] = found
        return found

    def get_response(self, response_id: UUID) -> surveys.SurveyResponse:
        found: surveys.SurveyResponse = self.store.get(response_id, "survey response")
        return found

    def responses(self, household_id: UUID, code: str) -> list[UUID]:
        """The household's responses to a questionnaire (any version), oldest first."""

        def response(key: UUID, n: int) -> UUID:
            return surveys.response_id(key, code, n)

        count = self.store.count_numbered(response, [household_id])[household_id]
        return [response(household_id, n) for n in range(1, count + 1)]

    def start_survey(self, household_id: UUID, code: str, version: int) -> UUID:
        if not self.store.exists(household_id):
            raise NotFound("household", household_id)
        questionnaire = self.get_questionnaire(code, version)
        ordinal = len(self.responses(household_id, code)) + 1
        response = surveys.SurveyResponse.start(household_id, questionnaire, ordinal)
        self.store.save(response)
        return response.id

    def answer(self, response_id: UUID, question_id: str, value: Any) -> surveys.SurveyResponse:
        response = self.get_response(response_id)
        response.answer(self._questionnaire(response.questionnaire_id), question_id, value)
        self.store.save(response)
        return response

    def correct(
        self, response_id: UUID, question_id: str, value: Any, reason: str
    ) -> surveys.SurveyResponse:
        response = self.get_response(response_id)
        response.correct(self._questionnaire(response.questionnaire_id), question_id, value, reason)
        self.store.save(response)
        return response

    def complete(self, response_id: UUID) -> surveys.SurveyResponse:
        response = self.get_response(response_id)
        response.complete(self._questionnaire(response.questionnaire_id))
        self.store.save(response)
        return response
