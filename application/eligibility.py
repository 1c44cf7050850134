"""Eligibility's use cases: rule sets through their lifecycle, determinations one at a time or in
batches, reassessment when a new version takes effect, overrides and appeals.

The facts of a determination come from the write model (the household, its people, its latest
completed pre-return survey), and so do the households a batch covers (the log's own list of
registrations by origin): no decision rests on a read model that may lag.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

import structlog

from application.ports import ConcurrentUpdate, EventStore, ExpressionLanguage
from domain import eligibility as el
from domain import rules, surveys
from domain.base import DomainError, NotFound, ValidationFailed
from domain.engine import RuleEngine, Validation
from domain.geography import settlement
from domain.registry import Household

log = structlog.get_logger(__name__)

PRE_RETURN_SURVEY = "pre-return"
BATCH_SIZE = 50  # decisions saved per transaction (one event each)
REASSESSMENT_BATCH = 5000  # households whose current decision is read in one query


@dataclass
class Case:
    """What a determination reads of one household, from the write model."""

    household: Household
    persons: list[Any]
    survey_answers: dict[str, Any] | None
    current: el.EligibilityDecision | None


@dataclass
class Outcome:
    """What one determination did: decided (a new decision) or unchanged (same rule set
    version and facts as the current decision, so nothing was recorded)."""

    household_id: UUID
    status: str
    decision: el.EligibilityDecision | None


@dataclass
class BatchSummary:
    decided: int = 0
    unchanged: int = 0
    failed: list[tuple[UUID, str]] = field(default_factory=list)
    results: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "decided": self.decided,
            "unchanged": self.unchanged,
            "failed": [{"household_id": str(h), "error": e} for h, e in self.failed],
            "results": self.results,
        }


def rule_set_versions(store: EventStore, code: str) -> list[el.RuleSet]:
    """Every version of a rule set, from version 1 up (versions are numbered without gaps)."""
    count = store.count_numbered(el.rule_set_id, [code])[code]
    loaded = store.load_many([el.rule_set_id(code, n) for n in range(1, count + 1)])
    return [loaded[el.rule_set_id(code, n)] for n in range(1, count + 1)]


def rule_set_in_force(store: EventStore, code: str, on: date | None = None) -> el.RuleSet:
    rule_set = el.in_force(rule_set_versions(store, code), on or date.today())
    if rule_set is None:
        raise NotFound("rule set in force", f"{code} on {(on or date.today()).isoformat()}")
    return rule_set


def current_decision(store: EventStore, household_id: UUID) -> el.EligibilityDecision | None:
    """The household's latest decision: decisions are numbered 1, 2, ... without gaps."""
    sequence = store.count_numbered(el.decision_id, [household_id])[household_id]
    if sequence == 0:
        return None
    decision: el.EligibilityDecision = store.get(
        el.decision_id(household_id, sequence), "eligibility decision"
    )
    return decision


class Eligibility:
    def __init__(
        self, store: EventStore, language: ExpressionLanguage, default_rule_set: str
    ) -> None:
        self.store = store
        self.language = language
        self.default_rule_set = default_rule_set
        self._engines: dict[tuple[UUID, str], RuleEngine] = {}

    # --- rule sets -------------------------------------------------------------------------

    def check(self, data: Any) -> tuple[rules.RuleSetDocument, Validation]:
        """Parse and validate a document: compile errors, and failing examples."""
        document = rules.parse_document(data)
        return document, RuleEngine(document, self.language).validate()

    def draft(self, data: Any) -> tuple[el.RuleSet, Validation]:
        document, validation = self.check(data)
        rule_set = el.draft(document, validation, rule_set_versions(self.store, document.code))
        self.store.save(rule_set)
        return rule_set, validation

    def revise(self, data: Any, reason: str) -> tuple[el.RuleSet, Validation]:
        document, validation = self.check(data)
        if validation.errors:
            raise ValidationFailed(list(validation.errors))
        rule_set = self.get_rule_set(document.code, document.version)
        rule_set.revise(document, validation, reason)
        self.store.save(rule_set)
        return rule_set, validation

    def approve(
        self, code: str, version: int, act_reference: str, effective_from: date | None
    ) -> el.RuleSet:
        versions = rule_set_versions(self.store, code)
        validation = (
            RuleEngine(versions[version - 1].parsed, self.language).validate()
            if 1 <= version <= len(versions)
            else Validation((), ())
        )
        changed = el.approve(
            code, versions, version, act_reference, effective_from, validation, date.today()
        )
        self.store.save(*changed)
        return changed[0]

    def get_rule_set(self, code: str, version: int) -> el.RuleSet:
        found: el.RuleSet | None = self.store.find(el.rule_set_id(code, version))
        if found is None:
            raise NotFound("rule set", f"{code} version {version}")
        return found

    def versions(self, code: str) -> list[el.RuleSet]:
        return rule_set_versions(self.store, code)

    def in_force(self, code: str | None = None, on: date | None = None) -> el.RuleSet:
        return rule_set_in_force(self.store, code or self.default_rule_set, on)

    def engine(self, rule_set: el.RuleSet) -> RuleEngine:
        key = (rule_set.id, rule_set.document_hash)
        if key not in self._engines:
            self._engines[key] = RuleEngine(rule_set.parsed, self.language)
        return self._engines[key]

    # --- facts -----------------------------------------------------------------------------

    def facts(self, household_id: UUID, on: date | None = None) -> dict[str, Any]:
        case = self._load([household_id])[household_id]
        return self._facts_of(case, on or date.today())

    def _load(self, household_ids: list[UUID]) -> dict[UUID, Case]:
        """What determinations need, for many households in three reads: the households; which
        pre-return surveys and decisions each has (one probe for both); then, together, their
        people, their surveys and their current decisions. All from the write model."""
        store = self.store
        households = store.load_many(household_ids)
        missing = [h for h in household_ids if not isinstance(households.get(h), Household)]
        if len(household_ids) == 1 and missing:
            raise NotFound("household", missing[0])
        present = [h for h in household_ids if h not in missing]

        def response(h: UUID, n: int) -> UUID:
            return surveys.response_id(h, PRE_RETURN_SURVEY, n)

        def numbered(key: tuple[str, UUID], n: int) -> UUID:
            kind, h = key
            return response(h, n) if kind == "survey" else el.decision_id(h, n)

        counts = store.count_numbered(
            numbered, [(kind, h) for h in present for kind in ("survey", "decision")]
        )
        survey_counts = {h: counts["survey", h] for h in present}
        decision_counts = {h: counts["decision", h] for h in present}
        loaded = store.load_many(
            [
                *(m.person_id for h in present for m in households[h].members),
                *(
                    response(h, n)
                    for h, count in survey_counts.items()
                    for n in range(1, count + 1)
                ),
                *(el.decision_id(h, count) for h, count in decision_counts.items() if count),
            ]
        )
        cases: dict[UUID, Case] = {}
        for h in present:
            completed = [
                loaded[response(h, n)]
                for n in range(survey_counts[h], 0, -1)
                if loaded[response(h, n)].completed
            ]
            cases[h] = Case(
                household=households[h],
                persons=[loaded[m.person_id] for m in households[h].members],
                survey_answers=dict(completed[0].answers) if completed else None,
                current=loaded.get(el.decision_id(h, decision_counts[h])),
            )
        return cases

    @staticmethod
    def _facts_of(case: Case, on: date) -> dict[str, Any]:
        household = case.household
        return rules.household_facts(
            household,
            case.persons,
            case.survey_answers,
            settlement(household.origin_settlement_code) is not None,
            on,
        )

    # --- determinations --------------------------------------------------------------------

    def determine(
        self,
        household_id: UUID,
        rule_set_code: str | None = None,
        reason: str = "requested",
        on: date | None = None,
    ) -> Outcome:
        rule_set = self.in_force(rule_set_code, on)
        case = self._load([household_id])[household_id]
        outcome = self._decide(household_id, case, rule_set, reason, on, reassess=False)
        if outcome.decision is not None:
            self.store.save(outcome.decision)
        return outcome

    def _decide(
        self,
        household_id: UUID,
        case: Case,
        rule_set: el.RuleSet,
        reason: str,
        on: date | None,
        *,
        reassess: bool,
    ) -> Outcome:
        current = case.current
        if reassess and (current is None or current.rule_set_code != rule_set.code):
            # Never decided, or under another rule set: not this reassessment's to decide.
            return Outcome(household_id, "unchanged", None)
        facts = self._facts_of(case, on or date.today())
        if (
            current is not None
            and current.rule_set_id == rule_set.id
            and (reassess or current.facts_hash == rules.content_hash(facts))
        ):
            return Outcome(household_id, "unchanged", None)
        decision = el.decide(
            household_id=household_id,
            sequence=(current.sequence if current else 0) + 1,
            supersedes=current.id if current else None,
            origin_settlement_code=facts["origin_settlement_code"],
            rule_set=rule_set,
            engine=self.engine(rule_set),
            facts=facts,
            reason=reason,
        )
        return Outcome(household_id, "decided", decision)

    def determine_many(
        self,
        household_ids: Iterable[UUID],
        rule_set_code: str | None = None,
        reason: str = "batch",
        *,
        reassess: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> BatchSummary:
        """Determine each household, loading and saving them a batch at a time. A household
        that fails (not found, changed concurrently) is reported and the batch goes on. Run
        again after an interruption, it decides only what is still undecided."""
        rule_set = self.in_force(rule_set_code)
        summary = BatchSummary()
        ids = list(household_ids)
        for start in range(0, len(ids), BATCH_SIZE):
            chunk = ids[start : start + BATCH_SIZE]
            cases = self._load(chunk)
            pending: list[el.EligibilityDecision] = []
            for household_id in chunk:
                case = cases.get(household_id)
                if case is None:
                    summary.failed.append((household_id, f"household {household_id} not found"))
                    continue
                try:
                    outcome = self._decide(
                        household_id, case, rule_set, reason, None, reassess=reassess
                    )
                except DomainError as exc:
                    summary.failed.append((household_id, str(exc)))
                    continue
                if outcome.decision is None:
                    summary.unchanged += 1
                else:
                    pending.append(outcome.decision)
            self._save_decisions(pending, summary)
            if progress:
                progress(len(chunk))
        log.info(
            "eligibility batch",
            rule_set=rule_set.code,
            version=rule_set.rule_set_version,
            decided=summary.decided,
            unchanged=summary.unchanged,
            failed=len(summary.failed),
        )
        return summary

    def _save_decisions(
        self, decisions: list[el.EligibilityDecision], summary: BatchSummary
    ) -> None:
        """One transaction for the batch; if someone decided one of these households
        meanwhile, one at a time, so that only the household that raced is left out."""
        # The store takes an aggregate's pending events as it saves, even when the save then
        # fails: kept here, each decision's event is saved again on its own.
        events = {decision.id: list(decision.pending_events) for decision in decisions}
        try:
            self.store.save(*decisions)
            saved = decisions
        except ConcurrentUpdate:
            saved = []
            for decision in decisions:
                try:
                    self.store.save(*events[decision.id])
                    saved.append(decision)
                except ConcurrentUpdate as exc:
                    summary.failed.append((decision.household_id, str(exc)))
        for decision in saved:
            summary.decided += 1
            summary.results[decision.result] = summary.results.get(decision.result, 0) + 1

    def households_in(self, settlement_code: str) -> list[UUID]:
        """Every household originating from a settlement, from the log (never lagging)."""
        return sorted(self.store.households_originating_from(settlement_code), key=str)

    def reassessment_candidates(
        self, rule_set_code: str | None = None
    ) -> tuple[el.RuleSet, list[UUID]]:
        """The cases a newly effective version affects: every household whose current decision
        was made under another version of the same rule set. Read from the log (the
        determination each current decision recorded), never from a read model that may lag."""
        rule_set = self.in_force(rule_set_code)
        households = sorted(self.store.households(), key=str)
        affected: list[UUID] = []
        for start in range(0, len(households), REASSESSMENT_BATCH):
            chunk = households[start : start + REASSESSMENT_BATCH]
            counts = self.store.count_numbered(el.decision_id, chunk)
            current = [el.decision_id(h, n) for h, n in counts.items() if n]
            affected += [
                determined.household_id
                for determined in self.store.first_events(current).values()
                if determined.rule_set_code == rule_set.code
                and determined.rule_set_version != rule_set.rule_set_version
            ]
        return rule_set, sorted(affected, key=str)

    # --- overrides and appeals -------------------------------------------------------------

    def current_decision(self, household_id: UUID) -> el.EligibilityDecision | None:
        return current_decision(self.store, household_id)

    def get_decision(self, decision_id: UUID) -> el.EligibilityDecision:
        found: el.EligibilityDecision = self.store.get(decision_id, "eligibility decision")
        return found

    def _current(self, decision_id: UUID) -> el.EligibilityDecision:
        decision = self.get_decision(decision_id)
        successor = el.decision_id(decision.household_id, decision.sequence + 1)
        if self.store.exists(successor):
            raise el.EligibilityStateError(
                f"decision {decision_id} is superseded by {successor}: act on the current one",
                "decision_id",
            )
        return decision

    def override(
        self,
        decision_id: UUID,
        result: str,
        priority_group: str | None,
        rooms_entitled: int | None,
        justification: str,
    ) -> el.EligibilityDecision:
        decision = self._current(decision_id)
        decision.override(result, priority_group, rooms_entitled, justification)
        self.store.save(decision)
        return decision

    def lodge_appeal(self, decision_id: UUID, grounds: str) -> UUID:
        decision = self._current(decision_id)
        appeal_id = decision.lodge_appeal(grounds)
        self.store.save(decision)
        return appeal_id

    def decide_appeal(
        self,
        decision_id: UUID,
        appeal_id: UUID,
        outcome: str,
        reasons: str,
        result: str | None,
        priority_group: str | None,
    ) -> el.EligibilityDecision:
        decision = self.get_decision(decision_id)
        decision.decide_appeal(appeal_id, outcome, reasons, result, priority_group)
        self.store.save(decision)
        return decision
