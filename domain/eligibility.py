"""Eligibility: rule set versions through their lifecycle, and decisions an auditor can re-run.

A rule set version is drafted (and revised while a draft), approved by a supervisor with the act
that adopts it, effective from a date, and superseded by a later version; an approved version
never changes. A decision records everything it used: the rule set id, version and hash, the
facts snapshot and its hash, each criterion's outcome, the result, priority group and score, and
the engine version (:mod:`domain.rules` computes it). Overrides and appeals are recorded beside
the determination, which is never edited.

Why one module of about 570 lines: the events of both aggregates are stored under topics that
name this module (``domain.eligibility:EligibilityDecision.Determined``), so they stay here; the
engine that computes a determination is :mod:`domain.engine`, the documents it reads
:mod:`domain.rules`, and the words an applicant reads :mod:`domain.explanation`.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.domain import event

from domain import text
from domain.base import (
    CaseAggregate,
    DomainError,
    FieldError,
    HouseholdCaseAggregate,
    HouseholdEvent,
    NotFound,
    ValidationFailed,
    current_context,
)
from domain.engine import CriterionOutcome, Determination, RuleEngine, Validation
from domain.rules import (
    FACTS_SCHEMA_VERSION,
    RESULTS,
    RuleSetDocument,
    canonical_json,
    content_hash,
    parse_document,
)

APPEAL_OUTCOMES = ("upheld", "rejected")
RULE_SET_NAMESPACE = uuid5(NAMESPACE_URL, "urn:reintegration:rule-set")
DECISION_NAMESPACE = uuid5(NAMESPACE_URL, "urn:reintegration:eligibility-decision")
MIN_JUSTIFICATION_WORDS = 5
MAX_ROOMS_ENTITLED = 12
PRIORITY_GROUP = text.IDENTIFIER.at_most(64)


class EligibilityError(DomainError):
    pass


class EligibilityStateError(EligibilityError):
    """The command does not fit the rule set's or the decision's state (HTTP 409)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotPermitted(EligibilityError):
    """The actor's role or part in the case does not allow this act (HTTP 403)."""


# --- aggregates -------------------------------------------------------------------------


def rule_set_id(code: str, version: int) -> UUID:
    return uuid5(RULE_SET_NAMESPACE, f"{code}:{version}")


def _must_be_supervisor(act: str) -> None:
    role = current_context().actor.role
    if role != "supervisor":
        raise NotPermitted(f"only a supervisor may {act} (you act as {role})")


class RuleSet(CaseAggregate):
    """One version of a rule set: drafted (and revised while a draft), approved by a supervisor
    with the act that adopted it, effective from a date, superseded by a later version."""

    class Drafted(CaseAggregate.Created):
        code: str
        rule_set_version: int
        document: str  # canonical JSON
        document_hash: str
        example_failures: list[str]

    class DraftRevised(CaseAggregate.Event):
        document: str
        document_hash: str
        example_failures: list[str]
        reason: str

    class Approved(CaseAggregate.Event):
        act_reference: str
        effective_from: date
        document_hash: str

    class Superseded(CaseAggregate.Event):
        by_version: int
        effective_from: date

    @staticmethod
    def create_id(code: str, rule_set_version: int) -> UUID:
        return rule_set_id(code, rule_set_version)

    @event(Drafted)
    def __init__(
        self,
        code: str,
        rule_set_version: int,
        document: str,
        document_hash: str,
        example_failures: list[str],
    ) -> None:
        self.code = code
        self.rule_set_version = rule_set_version
        self.document = document
        self.document_hash = document_hash
        self.example_failures = list(example_failures)
        self.status = "draft"
        self.act_reference: str | None = None
        self.effective_from: date | None = None
        self.approved_by: str | None = None
        self.superseded_by: int | None = None

    @property
    def parsed(self) -> RuleSetDocument:
        return parse_document(json.loads(self.document))

    def revise(self, document: RuleSetDocument, validation: Validation, reason: str) -> None:
        self._must_be("draft", "revised")
        why = text.required_text("reason", reason, text.LINE, "say what the revision changes")
        if document.hash == self.document_hash:
            raise EligibilityStateError("the draft already has this content", "document")
        self._revised(
            document=canonical_json(document.source),
            document_hash=document.hash,
            example_failures=list(validation.example_failures),
            reason=why,
        )

    @event(DraftRevised)
    def _revised(
        self, document: str, document_hash: str, example_failures: list[str], reason: str
    ) -> None:
        self.document = document
        self.document_hash = document_hash
        self.example_failures = list(example_failures)

    def approve(
        self, act_reference: str, effective_from: date | None, validation: Validation
    ) -> None:
        _must_be_supervisor("approve a rule set")
        self._must_be("draft", "approved")
        act = text.required_text(
            "act_reference",
            act_reference,
            text.LINE,
            "the act that adopts the rule set is required",
        )
        if validation.errors:
            raise ValidationFailed(list(validation.errors))
        if validation.example_failures:
            raise EligibilityStateError(
                "its examples fail, so it cannot be approved: "
                + " | ".join(validation.example_failures),
                "examples",
            )
        self._approved(
            act_reference=act,
            effective_from=effective_from or self.parsed.effective_from,
            document_hash=self.document_hash,
        )

    @event(Approved)
    def _approved(
        self,
        act_reference: str,
        effective_from: date,
        document_hash: str,
        actor_id: str | None = None,
    ) -> None:
        self.status = "approved"
        self.approved_by = actor_id
        self.act_reference = act_reference
        self.effective_from = effective_from

    def supersede(self, by_version: int, effective_from: date) -> None:
        self._must_be("approved", "superseded")
        self._superseded(by_version=by_version, effective_from=effective_from)

    @event(Superseded)
    def _superseded(self, by_version: int, effective_from: date) -> None:
        self.status = "superseded"
        self.superseded_by = by_version

    def _must_be(self, status: str, act: str) -> None:
        if self.status != status:
            raise EligibilityStateError(
                f"rule set {self.code} version {self.rule_set_version} is {self.status}: "
                f"only a {status} one can be {act}",
                "status",
            )


def in_force(versions: list[RuleSet], on: date) -> RuleSet | None:
    """The approved version in force on a date: the latest effective date not after it."""
    approved = [
        r
        for r in versions
        if r.effective_from is not None and r.status in ("approved", "superseded")
    ]
    candidates = [r for r in approved if r.effective_from is not None and r.effective_from <= on]
    if not candidates:
        return None
    return max(candidates, key=lambda r: (r.effective_from, r.rule_set_version))


def draft(document: RuleSetDocument, validation: Validation, versions: list[RuleSet]) -> RuleSet:
    """The next version of a rule set, drafted (``versions`` are the ones before it): one
    whose expressions do not compile is refused; failing examples are recorded."""
    if validation.errors:
        raise ValidationFailed(list(validation.errors))
    if document.version != len(versions) + 1:
        raise EligibilityStateError(
            f"{document.code} has {len(versions)} version(s): the next is {len(versions) + 1} "
            "(revise a draft instead of drafting it again)",
            "version",
        )
    return RuleSet(
        code=document.code,
        rule_set_version=document.version,
        document=canonical_json(document.source),
        document_hash=document.hash,
        example_failures=list(validation.example_failures),
    )


def approve(
    code: str,
    versions: list[RuleSet],
    version: int,
    act_reference: str,
    effective_from: date | None,
    validation: Validation,
    today: date,
) -> list[RuleSet]:
    """Approve one version of ``versions`` (every version of rule set ``code``, from 1); the earlier
    approved version is superseded from the new one's effective date (it stays in force until
    then). Returns the rule sets that changed, the approved one first."""
    if not 1 <= version <= len(versions):
        raise NotFound("rule set", f"{code} version {version}")
    rule_set = versions[version - 1]
    later = [r for r in versions if r.rule_set_version > version and r.status != "draft"]
    if later:
        raise EligibilityStateError(
            f"version {later[0].rule_set_version} is already approved: draft a new version",
            "version",
        )
    rule_set.approve(act_reference, effective_from, validation)
    earlier = [r for r in versions if r.rule_set_version < version and r.status == "approved"]
    for older in earlier:
        older.supersede(version, rule_set.effective_from or today)
    return [rule_set, *earlier]


def decision_id(household_id: UUID, sequence: int) -> UUID:
    """Decisions of a household are numbered: two determinations racing to supersede the same
    decision both try to create the same next id, and the event store lets one win."""
    return uuid5(DECISION_NAMESPACE, f"{household_id}:{sequence}")


class EligibilityDecision(HouseholdCaseAggregate):
    """One determination for one household, and what happened to it: an override by a
    supervisor, appeals lodged and decided. The determination itself is never edited."""

    class Determined(CaseAggregate.Created):
        household_id: UUID
        sequence: int
        supersedes_decision_id: UUID | None
        origin_settlement_code: str
        rule_set_id: UUID
        rule_set_code: str
        rule_set_version: int
        rule_set_hash: str
        facts_schema_version: int
        facts: str  # canonical JSON
        facts_hash: str
        outcomes: list[CriterionOutcome]
        result: str
        priority_group: str | None
        priority_rank: int | None
        score: float | None
        tie_breakers: str  # JSON list
        rooms_entitled: int | None
        engine_version: str
        reason: str

        @property
        def case_id(self) -> UUID:
            return self.household_id

    class Overridden(HouseholdEvent):
        result: str
        priority_group: str | None
        rooms_entitled: int | None
        justification: str

    class AppealLodged(HouseholdEvent):
        appeal_id: UUID
        grounds: str

    class AppealDecided(HouseholdEvent):
        appeal_id: UUID
        outcome: str
        reasons: str
        result: str | None
        priority_group: str | None

    @staticmethod
    def create_id(household_id: UUID, sequence: int, **_: Any) -> UUID:
        return decision_id(household_id, sequence)

    @event(Determined)
    def __init__(
        self,
        household_id: UUID,
        sequence: int,
        supersedes_decision_id: UUID | None,
        origin_settlement_code: str,
        rule_set_id: UUID,
        rule_set_code: str,
        rule_set_version: int,
        rule_set_hash: str,
        facts_schema_version: int,
        facts: str,
        facts_hash: str,
        outcomes: list[CriterionOutcome],
        result: str,
        priority_group: str | None,
        priority_rank: int | None,
        score: float | None,
        tie_breakers: str,
        rooms_entitled: int | None,
        engine_version: str,
        reason: str,
        actor_id: str | None = None,  # from the event: who determined it
    ) -> None:
        self.household_id = household_id
        self.sequence = sequence
        self.supersedes_decision_id = supersedes_decision_id
        self.origin_settlement_code = origin_settlement_code
        self.rule_set_id = rule_set_id
        self.rule_set_code = rule_set_code
        self.rule_set_version = rule_set_version
        self.rule_set_hash = rule_set_hash
        self.facts_schema_version = facts_schema_version
        self.facts = facts
        self.facts_hash = facts_hash
        self.outcomes = list(outcomes)
        self.result = result
        self.priority_group = priority_group
        self.priority_rank = priority_rank
        self.score = score
        self.tie_breakers = tie_breakers
        self.rooms_entitled = rooms_entitled
        self.engine_version = engine_version
        self.reason = reason
        self.determined_by = actor_id
        self.overridden_by: str | None = None
        self.effective_result = result
        self.effective_priority_group = priority_group
        self.effective_rooms = rooms_entitled
        self.appeals: dict[UUID, dict[str, Any]] = {}

    @property
    def facts_snapshot(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.facts)
        return data

    @property
    def determination(self) -> Determination:
        return Determination(
            tuple(self.outcomes),
            self.result,
            self.priority_group,
            self.priority_rank,
            self.score,
            tuple(json.loads(self.tie_breakers)),
            self.rooms_entitled,
        )

    # commands

    def override(
        self,
        result: str,
        priority_group: str | None,
        rooms_entitled: int | None,
        justification: str,
    ) -> None:
        _must_be_supervisor("override a decision")
        errors = _result_errors(result, priority_group, rooms_entitled)
        why = _sentence(errors, justification, "justification")
        if errors:
            raise ValidationFailed(errors)
        if (result, priority_group, rooms_entitled) == (
            self.effective_result,
            self.effective_priority_group,
            self.effective_rooms,
        ):
            raise EligibilityStateError("the decision already says that", "result")
        self._overridden(
            result=result,
            priority_group=priority_group,
            rooms_entitled=rooms_entitled,
            justification=why,
        )

    @event(Overridden)
    def _overridden(
        self,
        result: str,
        priority_group: str | None,
        rooms_entitled: int | None,
        justification: str,
        actor_id: str | None = None,
    ) -> None:
        self.effective_result = result
        self.effective_priority_group = priority_group
        self.effective_rooms = rooms_entitled
        self.overridden_by = actor_id

    def lodge_appeal(self, grounds: str) -> UUID:
        errors: list[FieldError] = []
        why = _sentence(errors, grounds, "grounds")
        if errors:
            raise ValidationFailed(errors)
        if any(a["outcome"] is None for a in self.appeals.values()):
            raise EligibilityStateError(
                "an appeal against this decision is already open", "grounds"
            )
        appeal_id = uuid4()
        self._appealed(appeal_id=appeal_id, grounds=why)
        return appeal_id

    @event(AppealLodged)
    def _appealed(self, appeal_id: UUID, grounds: str) -> None:
        self.appeals[appeal_id] = {"grounds": grounds, "outcome": None}

    def decide_appeal(
        self,
        appeal_id: UUID,
        outcome: str,
        reasons: str,
        result: str | None,
        priority_group: str | None,
    ) -> None:
        _must_be_supervisor("decide an appeal")
        appeal = self.appeals.get(appeal_id)
        if appeal is None:
            raise EligibilityStateError(f"no appeal {appeal_id} against this decision", "appeal_id")
        if appeal["outcome"] is not None:
            raise EligibilityStateError("this appeal is already decided", "appeal_id")
        me = current_context().actor.user_id
        if me in (self.determined_by, self.overridden_by):
            raise NotPermitted(
                "an appeal is decided by a supervisor who did not make the decision under appeal"
            )
        errors: list[FieldError] = []
        if outcome not in APPEAL_OUTCOMES:
            errors.append(FieldError("outcome", "upheld or rejected"))
        why = _sentence(errors, reasons, "reasons")
        if outcome == "upheld":
            if result is None:
                errors.append(FieldError("result", "an upheld appeal says what the result becomes"))
            else:
                errors += _result_errors(result, priority_group, None)
        elif result is not None or priority_group is not None:
            errors.append(FieldError("result", "a rejected appeal leaves the decision as it is"))
        if errors:
            raise ValidationFailed(errors)
        self._appeal_decided(
            appeal_id=appeal_id,
            outcome=outcome,
            reasons=why,
            result=result,
            priority_group=priority_group,
        )

    @event(AppealDecided)
    def _appeal_decided(
        self,
        appeal_id: UUID,
        outcome: str,
        reasons: str,
        result: str | None,
        priority_group: str | None,
    ) -> None:
        self.appeals[appeal_id] = {**self.appeals[appeal_id], "outcome": outcome}
        if outcome == "upheld" and result is not None:
            self.effective_result = result
            self.effective_priority_group = priority_group


def _result_errors(result: str, priority_group: str | None, rooms: int | None) -> list[FieldError]:
    errors = []
    if result not in RESULTS:
        errors.append(FieldError("result", f"one of {', '.join(RESULTS)}"))
    if result == "eligible" and not priority_group:
        errors.append(FieldError("priority_group", "an eligible household has a priority group"))
    if result != "eligible" and priority_group:
        errors.append(FieldError("priority_group", "only an eligible household has one"))
    if priority_group:
        text.clean(errors, "priority_group", priority_group, PRIORITY_GROUP)
    if rooms is not None and not 1 <= rooms <= MAX_ROOMS_ENTITLED:
        errors.append(FieldError("rooms_entitled", f"1 to {MAX_ROOMS_ENTITLED}"))
    return errors


def _sentence(errors: list[FieldError], given: str | None, name: str) -> str:
    """A justification, grounds or reasons: at least a sentence, recorded on one line."""
    before = len(errors)
    words = (text.clean(errors, name, given, text.PARAGRAPH) or "").split()
    if len(errors) == before and len(words) < MIN_JUSTIFICATION_WORDS:
        errors.append(
            FieldError(name, f"required: at least a sentence ({MIN_JUSTIFICATION_WORDS} words)")
        )
    return " ".join(words)


def decide(
    household_id: UUID,
    sequence: int,
    supersedes: UUID | None,
    origin_settlement_code: str,
    rule_set: RuleSet,
    engine: RuleEngine,
    facts: dict[str, Any],
    reason: str,
) -> EligibilityDecision:
    """Decide first, then record: the determination is computed, then one event holds it."""
    determination = engine.determine(facts)
    return EligibilityDecision(
        household_id=household_id,
        sequence=sequence,
        supersedes_decision_id=supersedes,
        origin_settlement_code=origin_settlement_code,
        rule_set_id=rule_set.id,
        rule_set_code=rule_set.code,
        rule_set_version=rule_set.rule_set_version,
        rule_set_hash=rule_set.document_hash,
        facts_schema_version=FACTS_SCHEMA_VERSION,
        facts=canonical_json(facts),
        facts_hash=content_hash(facts),
        outcomes=list(determination.outcomes),
        result=determination.result,
        priority_group=determination.priority_group,
        priority_rank=determination.priority_rank,
        score=determination.score,
        tie_breakers=canonical_json(list(determination.tie_breakers)),
        rooms_entitled=determination.rooms_entitled,
        engine_version=engine.version,
        reason=reason,
    )
