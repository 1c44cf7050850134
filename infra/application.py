"""The write side: an eventsourcing Application on PostgreSQL.

Methods are commands: validate in the domain, save every new event in one transaction.
"""

from __future__ import annotations

import secrets
from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, JSONTranscoder, StoredEvent, Transcoding
from psycopg.sql import SQL, Identifier

from domain import eligibility, housing, rules, surveys, text
from domain.base import DomainError, FieldError, NotFound, ValidationFailed
from domain.registry import (
    MAX_MEMBERS,
    RELATIONSHIPS,
    Household,
    InvalidState,
    Member,
    NewMember,
    Person,
    PersonAlreadyRegistered,
    RegisterHousehold,
    new_person,
    person_id_for,
    register_household,
    validate_member,
)


class ConcurrentUpdate(DomainError):
    """Someone else changed the case between our read and our write; theirs is kept."""

    def __init__(self) -> None:
        super().__init__(
            "the case was changed by someone else at the same time; reload and try again"
        )


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class MemberAsDict(Transcoding):
    type = Member
    name = "household_member"

    def encode(self, obj: Member) -> dict[str, Any]:
        return {"person_id": obj.person_id, "fin": obj.fin, "relationship": obj.relationship}

    def decode(self, data: dict[str, Any]) -> Member:
        return Member(**data)


class DataclassAsDict(Transcoding):
    """A frozen dataclass of the domain, stored as a dict of its fields."""

    def __init__(self, cls: type, name: str) -> None:
        self.type = cls
        self.name = name

    def encode(self, obj: Any) -> dict[str, Any]:
        return {f: getattr(obj, f) for f in obj.__dataclass_fields__}

    def decode(self, data: dict[str, Any]) -> Any:
        return self.type(**data)


class ReintegrationApplication(Application[UUID]):
    name = "reintegration"  # events table: reintegration_events

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._questionnaires: dict[UUID, surveys.Questionnaire] = {}

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())
        transcoder.register(MemberAsDict())
        transcoder.register(DataclassAsDict(surveys.Question, "survey_question"))
        transcoder.register(DataclassAsDict(surveys.Option, "survey_option"))
        transcoder.register(DataclassAsDict(surveys.ShowIf, "survey_show_if"))
        transcoder.register(DataclassAsDict(rules.CriterionOutcome, "criterion_outcome"))
        transcoder.register(DataclassAsDict(housing.Entrant, "lottery_entrant"))
        transcoder.register(DataclassAsDict(housing.RoundUnit, "lottery_unit"))
        transcoder.register(DataclassAsDict(housing.Assignment, "lottery_assignment"))
        transcoder.register(DataclassAsDict(housing.ReservePlace, "lottery_reserve_place"))

    def register_household(self, command: RegisterHousehold, today: date | None = None) -> UUID:
        household, persons = register_household(command, today or date.today())
        try:
            self.save(household, *persons)
        except IntegrityError:
            raise self._already_registered(persons) from None
        return household.id

    def get_household(self, household_id: UUID) -> Household:
        try:
            household: Household = self.repository.get(household_id)
            return household
        except AggregateNotFoundError:
            raise NotFound("household", household_id) from None

    def get_person(self, fin: str) -> Person:
        try:
            person: Person = self.repository.get(person_id_for(fin))
            return person
        except AggregateNotFoundError:
            raise NotFound("person with that FIN") from None

    def load_many(self, ids: list[UUID]) -> dict[UUID, Any]:
        """Many aggregates in one query (batch work: determinations of a settlement); ids
        that do not exist are simply absent."""
        if not ids:
            return {}
        recorder: Any = self.recorder
        statement = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {} "
            "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
        ).format(Identifier(recorder.events_table_name))
        with recorder.datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(statement, (list(ids),))
            rows = cur.fetchall()
        aggregates: dict[UUID, Any] = {}
        for r in rows:
            stored = StoredEvent(
                r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"])
            )
            event: Any = self.mapper.to_domain_event(stored)
            aggregates[event.originator_id] = event.mutate(aggregates.get(event.originator_id))
        return aggregates

    def count_numbered(self, id_for: Any, keys: list[Any], window: int = 4) -> dict[Any, int]:
        """For aggregates numbered 1, 2, ... per key (a household's decisions, its survey
        responses): how many each key has, in one query for the usual few."""
        if not keys:
            return {}
        recorder: Any = self.recorder
        candidates = {id_for(key, n): (key, n) for key in keys for n in range(1, window + 1)}
        statement = SQL(
            "SELECT originator_id FROM {} WHERE originator_id = ANY(%s) AND originator_version = 1"
        ).format(Identifier(recorder.events_table_name))
        with recorder.datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(statement, (list(candidates),))
            found = {candidates[r["originator_id"]] for r in cur.fetchall()}
        counts = {}
        for key in keys:
            n = 0
            while (key, n + 1) in found:
                n += 1
            if n == window:  # rare: more than the window; probe on one by one
                while recorder.select_events(id_for(key, n + 1), limit=1):
                    n += 1
            counts[key] = n
        return counts

    def get(self, aggregate_id: UUID, kind: str) -> Any:
        """Any aggregate by id; NotFound names ``kind`` when there is none."""
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(kind, aggregate_id) from None

    def save_all(self, *aggregates: Any) -> None:
        """Save in one transaction; a concurrent change to any of them refuses all."""
        self._save(*aggregates)

    def _save(self, *aggregates: Any) -> None:
        try:
            self.save(*aggregates)
        except IntegrityError:
            raise ConcurrentUpdate from None

    # --- households ------------------------------------------------------------------------

    def add_member(
        self, household_id: UUID, member: NewMember, reason: str, today: date | None = None
    ) -> UUID:
        """A new person joins (birth, marriage...); a registered person who belongs to no
        household any more (removed after a marriage, say) may join too."""
        household = self.get_household(household_id)
        errors: list[FieldError] = []
        member = validate_member(errors, "", member, today or date.today())
        if errors:
            raise ValidationFailed(errors)
        try:
            person = self.get_person(member.fin)
        except NotFound:
            person = new_person(member, household_id, household.origin_settlement_code)
        else:
            current = self.get_household(person.household_id)
            if current.member(person.id) is not None:
                raise InvalidState(
                    f"the person is a member of household {current.id}: remove them there first",
                    "fin",
                )
            person.move_to(household_id, reason)
        household.add_member(person.id, person.fin, member.relationship, reason)
        self._save(household, person)
        return person.id

    def remove_member(
        self, household_id: UUID, person_id: UUID, reason: str, note: str | None
    ) -> None:
        household = self.get_household(household_id)
        household.remove_member(person_id, reason, note)
        self._save(household)

    def change_head(
        self, household_id: UUID, head_person_id: UUID, former_head_relationship: str, reason: str
    ) -> None:
        household = self.get_household(household_id)
        household.change_head(head_person_id, former_head_relationship, reason)
        self._save(household)

    def split_household(
        self,
        household_id: UUID,
        head_person_id: UUID,
        relationships: dict[UUID, str],
        current_address: str,
        reason: str,
    ) -> UUID:
        """Members leave to form a new household: the old one records the split, the new one is
        registered with them, and each person moves; all in one transaction."""
        household = self.get_household(household_id)
        errors: list[FieldError] = []
        address = text.clean(
            errors, "current_address", current_address, text.LINE, required="must not be empty"
        )
        why = text.clean(errors, "reason", reason, text.LINE, required="a reason is required")
        if len(relationships) > MAX_MEMBERS:
            errors.append(FieldError("relationships", f"at most {MAX_MEMBERS} members"))
        if head_person_id not in relationships:
            errors.append(FieldError("head_person_id", "must be one of the members split off"))
        for person_id, relationship in relationships.items():
            expected = "head" if person_id == head_person_id else relationship
            if relationship != expected or relationship not in RELATIONSHIPS:
                errors.append(
                    FieldError(
                        f"relationships.{person_id}",
                        "the new head is 'head'; others one of " + ", ".join(RELATIONSHIPS[1:]),
                    )
                )
        if errors:
            raise ValidationFailed(errors)
        members = []
        for person_id, relationship in relationships.items():
            existing = household.member(person_id)
            if existing is None:
                raise InvalidState(
                    f"{person_id} is not a member of this household", "relationships"
                )
            members.append(Member(person_id, existing.fin, relationship))
        new_household = Household(
            head_person_id=head_person_id,
            members=members,
            origin_settlement_code=household.origin_settlement_code,
            current_address=address or "",
            contact_phone=None,
        )
        new_id: UUID = new_household.id
        household.split_off(new_id, list(relationships), why or "")
        persons = []
        for person_id in relationships:
            person: Person = self.repository.get(person_id)
            person.move_to(new_id, why or "")
            persons.append(person)
        self._save(household, new_household, *persons)
        return new_id

    def record_housing_condition(
        self, household_id: UUID, condition: str, note: str | None
    ) -> None:
        household = self.get_household(household_id)
        household.record_housing_condition(condition, note)
        self._save(household)

    def verify_circumstances(
        self,
        household_id: UUID,
        living_at_registered_address: bool,
        private_housing_after_displacement: bool,
        sham_marriage_or_divorce: bool,
        verified_on: date,
        document_reference: str,
        note: str | None,
    ) -> None:
        household = self.get_household(household_id)
        household.verify_circumstances(
            living_at_registered_address,
            private_housing_after_displacement,
            sham_marriage_or_divorce,
            verified_on,
            document_reference,
            note,
            date.today(),
        )
        self._save(household)

    def record_vulnerability(
        self, household_id: UUID, vulnerability: str, person_id: UUID | None, note: str | None
    ) -> None:
        household = self.get_household(household_id)
        household.record_vulnerability(vulnerability, person_id, note)
        self._save(household)

    def clear_vulnerability(
        self, household_id: UUID, vulnerability: str, person_id: UUID | None, reason: str
    ) -> None:
        household = self.get_household(household_id)
        household.clear_vulnerability(vulnerability, person_id, reason)
        self._save(household)

    # --- persons ---------------------------------------------------------------------------

    def correct_person(
        self,
        fin: str,
        field: str,
        new_value: str | None,
        reason: str,
        document_reference: str | None,
    ) -> Person:
        person = self.get_person(fin)
        person.correct(field, new_value, reason, document_reference, date.today())
        self._save(person)
        return person

    def grant_idp_status(
        self, fin: str, basis: str, effective_date: date, certificate_number: str | None
    ) -> Person:
        person = self.get_person(fin)
        person.grant_idp_status(basis, effective_date, certificate_number, date.today())
        self._save(person)
        return person

    def end_idp_status(self, fin: str, basis: str, effective_date: date, reason: str) -> Person:
        person = self.get_person(fin)
        person.end_idp_status(basis, effective_date, reason, date.today())
        self._save(person)
        return person

    def record_death(self, fin: str, date_of_death: date, document_reference: str | None) -> Person:
        person = self.get_person(fin)
        person.record_death(date_of_death, document_reference, date.today())
        self._save(person)
        return person

    def issue_status_reference(self, fin: str) -> tuple[Person, str]:
        """A reference of the person's IDP status with a code integration clients can verify."""
        person = self.get_person(fin)
        code = "-".join(secrets.token_hex(2).upper() for _ in range(4))
        person.issue_status_reference(code)
        self._save(person)
        return person, code

    def _already_registered(self, persons: list[Person]) -> PersonAlreadyRegistered:
        """Name the member whose FIN collided: the first whose id the store already holds."""
        for i, person in enumerate(persons):
            if self.recorder.select_events(person.id, limit=1):
                return PersonAlreadyRegistered(f"members[{i}].fin")
        return PersonAlreadyRegistered("members")

    # --- surveys ---------------------------------------------------------------------------

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
                [FieldError("body", f"malformed questionnaire: {exc}")]
            ) from None
        try:
            self.save(questionnaire)
        except IntegrityError:
            raise InvalidState(
                f"questionnaire {questionnaire.code} version {questionnaire.questionnaire_version} is already "
                "published; publish a new version instead",
                "version",
            ) from None
        return questionnaire

    def get_questionnaire(self, code: str, version: int) -> surveys.Questionnaire:
        try:
            questionnaire: surveys.Questionnaire = self.repository.get(
                surveys.questionnaire_id(code, version)
            )
            return questionnaire
        except AggregateNotFoundError:
            raise NotFound("questionnaire", f"{code} version {version}") from None

    def _questionnaire(self, questionnaire_id: UUID) -> surveys.Questionnaire:
        """A published questionnaire never changes: each is loaded once per process."""
        found = self._questionnaires.get(questionnaire_id)
        if found is None:
            found = self.repository.get(questionnaire_id)
            self._questionnaires[questionnaire_id] = found
        return found

    def get_response(self, response_id: UUID) -> surveys.SurveyResponse:
        try:
            response: surveys.SurveyResponse = self.repository.get(response_id)
            return response
        except AggregateNotFoundError:
            raise NotFound("survey response", response_id) from None

    def start_survey(self, household_id: UUID, code: str, version: int) -> UUID:
        self.get_household(household_id)
        questionnaire = self.get_questionnaire(code, version)
        ordinal = len(self.survey_responses(household_id, code)) + 1
        response = surveys.SurveyResponse.start(household_id, questionnaire, ordinal)
        self._save(response)
        return response.id

    def survey_responses(self, household_id: UUID, code: str) -> list[UUID]:
        """The household's responses to a questionnaire (any version), oldest first."""
        found: list[UUID] = []
        while self.recorder.select_events(
            surveys.response_id(household_id, code, len(found) + 1), limit=1
        ):
            found.append(surveys.response_id(household_id, code, len(found) + 1))
        return found

    def answer_survey(
        self, response_id: UUID, question_id: str, value: Any
    ) -> surveys.SurveyResponse:
        response = self.get_response(response_id)
        response.answer(self._questionnaire(response.questionnaire_id), question_id, value)
        self._save(response)
        return response

    def correct_survey_answer(
        self, response_id: UUID, question_id: str, value: Any, reason: str
    ) -> surveys.SurveyResponse:
        response = self.get_response(response_id)
        response.correct(self._questionnaire(response.questionnaire_id), question_id, value, reason)
        self._save(response)
        return response

    def complete_survey(self, response_id: UUID) -> surveys.SurveyResponse:
        response = self.get_response(response_id)
        response.complete(self._questionnaire(response.questionnaire_id))
        self._save(response)
        return response

    # --- eligibility: rule sets ------------------------------------------------------------

    def rule_set_versions(self, code: str) -> list[eligibility.RuleSet]:
        """Every version of a rule set, from version 1 up (versions are numbered without gaps)."""
        versions: list[eligibility.RuleSet] = []
        while True:
            try:
                versions.append(
                    self.repository.get(eligibility.rule_set_id(code, len(versions) + 1))
                )
            except AggregateNotFoundError:
                return versions

    def get_rule_set(self, code: str, version: int) -> eligibility.RuleSet:
        try:
            rule_set: eligibility.RuleSet = self.repository.get(
                eligibility.rule_set_id(code, version)
            )
            return rule_set
        except AggregateNotFoundError:
            raise NotFound("rule set", f"{code} version {version}") from None

    def draft_rule_set(
        self, document: rules.RuleSetDocument, validation: rules.Validation
    ) -> eligibility.RuleSet:
        if validation.errors:
            raise ValidationFailed(list(validation.errors))
        existing = self.rule_set_versions(document.code)
        if document.version != len(existing) + 1:
            raise eligibility.EligibilityStateError(
                f"{document.code} has {len(existing)} version(s): the next is "
                f"{len(existing) + 1} (revise a draft instead of drafting it again)",
                "version",
            )
        rule_set = eligibility.RuleSet(
            code=document.code,
            rule_set_version=document.version,
            document=rules.canonical_json(document.source),
            document_hash=document.hash,
            example_failures=list(validation.example_failures),
        )
        self._save(rule_set)
        return rule_set

    def revise_rule_set(
        self,
        document: rules.RuleSetDocument,
        validation: rules.Validation,
        reason: str,
    ) -> eligibility.RuleSet:
        if validation.errors:
            raise ValidationFailed(list(validation.errors))
        rule_set = self.get_rule_set(document.code, document.version)
        rule_set.revise(document, validation, reason)
        self._save(rule_set)
        return rule_set

    def approve_rule_set(
        self,
        code: str,
        version: int,
        act_reference: str,
        effective_from: date | None,
        validation: rules.Validation,
    ) -> eligibility.RuleSet:
        """Approve a draft; the earlier approved version is superseded in the same transaction
        (it stays in force until the new version's effective date)."""
        versions = self.rule_set_versions(code)
        if not 1 <= version <= len(versions):
            raise NotFound("rule set", f"{code} version {version}")
        rule_set = versions[version - 1]
        later = [r for r in versions if r.rule_set_version > version and r.status != "draft"]
        if later:
            raise eligibility.EligibilityStateError(
                f"version {later[0].rule_set_version} is already approved: draft a new version",
                "version",
            )
        rule_set.approve(act_reference, effective_from, validation)
        earlier = [r for r in versions if r.rule_set_version < version and r.status == "approved"]
        for older in earlier:
            older.supersede(version, rule_set.effective_from or date.today())
        self._save(rule_set, *earlier)
        return rule_set

    # --- eligibility: decisions ------------------------------------------------------------

    def current_decision(self, household_id: UUID) -> eligibility.EligibilityDecision | None:
        """The household's latest decision: decisions are numbered 1, 2, ... without gaps."""
        sequence = 0
        while self.recorder.select_events(
            eligibility.decision_id(household_id, sequence + 1), limit=1
        ):
            sequence += 1
        if sequence == 0:
            return None
        decision: eligibility.EligibilityDecision = self.repository.get(
            eligibility.decision_id(household_id, sequence)
        )
        return decision

    def get_decision(self, decision_id: UUID) -> eligibility.EligibilityDecision:
        try:
            decision: eligibility.EligibilityDecision = self.repository.get(decision_id)
            return decision
        except AggregateNotFoundError:
            raise NotFound("eligibility decision", decision_id) from None

    def record_decisions(self, *decisions: eligibility.EligibilityDecision) -> None:
        self._save(*decisions)

    def _current(self, decision_id: UUID) -> eligibility.EligibilityDecision:
        decision = self.get_decision(decision_id)
        successor = eligibility.decision_id(decision.household_id, decision.sequence + 1)
        if self.recorder.select_events(successor, limit=1):
            raise eligibility.EligibilityStateError(
                f"decision {decision_id} is superseded by {successor}: act on the current one",
                "decision_id",
            )
        return decision

    def override_decision(
        self,
        decision_id: UUID,
        result: str,
        priority_group: str | None,
        rooms_entitled: int | None,
        justification: str,
    ) -> eligibility.EligibilityDecision:
        decision = self._current(decision_id)
        decision.override(result, priority_group, rooms_entitled, justification)
        self._save(decision)
        return decision

    def lodge_appeal(self, decision_id: UUID, grounds: str) -> UUID:
        decision = self._current(decision_id)
        appeal_id = decision.lodge_appeal(grounds)
        self._save(decision)
        return appeal_id

    def decide_appeal(
        self,
        decision_id: UUID,
        appeal_id: UUID,
        outcome: str,
        reasons: str,
        result: str | None,
        priority_group: str | None,
    ) -> eligibility.EligibilityDecision:
        decision = self.get_decision(decision_id)
        decision.decide_appeal(appeal_id, outcome, reasons, result, priority_group)
        self._save(decision)
        return decision
