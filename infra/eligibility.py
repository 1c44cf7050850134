"""Eligibility as a service: rule sets through their lifecycle, determinations one at a time or
in batches, reassessment when a new version takes effect, and the auditor's re-run.

The facts of a determination come from the write model (the household, its people, its latest
completed pre-return survey), so a decision never rests on a lagging read model. The read
model is used only to find *which* households a batch covers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from importlib.resources import files
from typing import Any
from uuid import UUID

import structlog
import yaml
from psycopg_pool import ConnectionPool

from domain import eligibility as el
from domain import rules, surveys
from domain.base import DomainError, NotFound
from domain.geography import settlement
from domain.registry import Household
from infra.application import ConcurrentUpdate, ReintegrationApplication

log = structlog.get_logger(__name__)

PRE_RETURN_SURVEY = "pre-return"
SHIPPED_RULE_SETS = ("great-return-housing.v1.yaml",)
BATCH_SIZE = 50  # decisions saved per transaction (one event each)


def shipped_rule_set(name: str = SHIPPED_RULE_SETS[0]) -> dict[str, Any]:
    text = files("domain").joinpath(f"reference/rule_sets/{name}").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def load_document_text(text: str) -> Any:
    """A rule set file's content: YAML (JSON is YAML too)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        from domain.base import FieldError, ValidationFailed

        raise ValidationFailed([FieldError("body", f"not YAML or JSON: {exc}")]) from None


@dataclass
class _Case:
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


@dataclass
class Rerun:
    """An auditor's re-run of one recorded decision on its recorded facts."""

    decision_id: UUID
    household_id: UUID
    rule_set: str
    matches: bool
    differences: list[str]
    facts_hash_ok: bool
    rule_set_hash_ok: bool
    recorded_engine: str
    current_engine: str

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "decision_id": str(self.decision_id),
            "household_id": str(self.household_id),
        }


class Eligibility:
    def __init__(
        self,
        application: ReintegrationApplication,
        read_pool: ConnectionPool[Any],
        language: rules.ExpressionLanguage,
        default_rule_set: str,
    ) -> None:
        self.app = application
        self.read_pool = read_pool
        self.language = language
        self.default_rule_set = default_rule_set
        self._engines: dict[tuple[UUID, str], rules.RuleEngine] = {}
        self._rule_sets: dict[tuple[str, int], el.RuleSet] = {}

    # --- rule sets -------------------------------------------------------------------------

    def check(self, data: Any) -> tuple[rules.RuleSetDocument, rules.Validation]:
        """Parse and validate a document: compile errors, and failing examples."""
        document = rules.parse_document(data)
        return document, rules.RuleEngine(document, self.language).validate()

    def draft(self, data: Any) -> tuple[el.RuleSet, rules.Validation]:
        document, validation = self.check(data)
        return self.app.draft_rule_set(document, validation), validation

    def revise(self, data: Any, reason: str) -> tuple[el.RuleSet, rules.Validation]:
        document, validation = self.check(data)
        return self.app.revise_rule_set(document, validation, reason), validation

    def approve(
        self, code: str, version: int, act_reference: str, effective_from: date | None
    ) -> el.RuleSet:
        rule_set = self.app.get_rule_set(code, version)
        validation = rules.RuleEngine(rule_set.parsed, self.language).validate()
        return self.app.approve_rule_set(code, version, act_reference, effective_from, validation)

    def in_force(self, code: str | None = None, on: date | None = None) -> el.RuleSet:
        code = code or self.default_rule_set
        rule_set = el.in_force(self.app.rule_set_versions(code), on or date.today())
        if rule_set is None:
            raise NotFound("rule set in force", f"{code} on {(on or date.today()).isoformat()}")
        return rule_set

    def engine(self, rule_set: el.RuleSet) -> rules.RuleEngine:
        key = (rule_set.id, rule_set.document_hash)
        if key not in self._engines:
            self._engines[key] = rules.RuleEngine(rule_set.parsed, self.language)
        return self._engines[key]

    # --- facts ---------------------------------------------------------------------------

    def facts(self, household_id: UUID, on: date | None = None) -> dict[str, Any]:
        case = self._load([household_id])[household_id]
        return self._facts_of(case, on or date.today())

    def _load(self, household_ids: list[UUID]) -> dict[UUID, _Case]:
        """What determinations need, for many households in a few queries: each household, its
        people, its pre-return surveys and its current decision, all from the write model."""
        app = self.app
        households = app.load_many(household_ids)
        missing = [h for h in household_ids if not isinstance(households.get(h), Household)]
        if len(household_ids) == 1 and missing:
            raise NotFound("household", missing[0])
        present = [h for h in household_ids if h not in missing]
        persons = app.load_many([m.person_id for h in present for m in households[h].members])

        def response(h: UUID, n: int) -> UUID:
            return surveys.response_id(h, PRE_RETURN_SURVEY, n)

        survey_counts = app.count_numbered(response, present)
        responses = app.load_many(
            [response(h, n) for h, count in survey_counts.items() for n in range(1, count + 1)]
        )
        decision_counts = app.count_numbered(el.decision_id, present)
        decisions = app.load_many(
            [el.decision_id(h, count) for h, count in decision_counts.items() if count]
        )
        cases: dict[UUID, _Case] = {}
        for h in present:
            completed = [
                responses[response(h, n)]
                for n in range(survey_counts[h], 0, -1)
                if responses[response(h, n)].completed
            ]
            cases[h] = _Case(
                household=households[h],
                persons=[persons[m.person_id] for m in households[h].members],
                survey_answers=dict(completed[0].answers) if completed else None,
                current=decisions.get(el.decision_id(h, decision_counts[h])),
            )
        return cases

    @staticmethod
    def _facts_of(case: _Case, on: date) -> dict[str, Any]:
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
            self.app.record_decisions(outcome.decision)
        return outcome

    def _decide(
        self,
        household_id: UUID,
        case: _Case,
        rule_set: el.RuleSet,
        reason: str,
        on: date | None,
        *,
        reassess: bool,
    ) -> Outcome:
        facts = self._facts_of(case, on or date.today())
        current = case.current
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
        try:
            self.app.record_decisions(*decisions)
            saved = decisions
        except ConcurrentUpdate:
            saved = []
            for decision in decisions:
                try:
                    self.app.record_decisions(decision)
                    saved.append(decision)
                except ConcurrentUpdate as exc:
                    summary.failed.append((decision.household_id, str(exc)))
        for decision in saved:
            summary.decided += 1
            summary.results[decision.result] = summary.results.get(decision.result, 0) + 1

    def households_in(self, settlement_code: str) -> list[UUID]:
        with self.read_pool.connection() as conn:
            rows = conn.execute(
                "SELECT household_id FROM rm_households WHERE origin_settlement_code = %s "
                "ORDER BY household_id",
                (settlement_code,),
            ).fetchall()
        return [r["household_id"] for r in rows]

    def reassessment_candidates(
        self, rule_set_code: str | None = None
    ) -> tuple[el.RuleSet, list[UUID]]:
        """The cases a newly effective version affects: every household whose current decision
        was made under another version of the same rule set."""
        rule_set = self.in_force(rule_set_code)
        with self.read_pool.connection() as conn:
            rows = conn.execute(
                "SELECT d.household_id FROM rm_eligibility_current c "
                "JOIN rm_eligibility_decisions d ON d.decision_id = c.decision_id "
                "WHERE d.rule_set_code = %s AND d.rule_set_version <> %s ORDER BY d.household_id",
                (rule_set.code, rule_set.rule_set_version),
            ).fetchall()
        return rule_set, [r["household_id"] for r in rows]

    # --- the auditor's re-run --------------------------------------------------------------

    def rerun(self, decision_id: UUID) -> Rerun:
        decision = self.app.get_decision(decision_id)
        rule_set = self._approved_rule_set(decision.rule_set_code, decision.rule_set_version)
        facts = decision.facts_snapshot
        engine = self.engine(rule_set)
        again = engine.determine(facts)
        recorded = decision.determination.comparable()
        now = again.comparable()
        differences = [
            f"{key}: recorded {recorded[key]!r}, re-run {now[key]!r}"
            for key in recorded
            if recorded[key] != now[key]
        ]
        facts_ok = rules.content_hash(facts) == decision.facts_hash
        rule_set_ok = rule_set.document_hash == decision.rule_set_hash and (
            rules.content_hash(json.loads(rule_set.document)) == rule_set.document_hash
        )
        if not facts_ok:
            differences.append("facts: the snapshot does not match its recorded hash")
        if not rule_set_ok:
            differences.append(
                "rule set: the document does not match the hash the decision recorded"
            )
        return Rerun(
            decision_id=decision.id,
            household_id=decision.household_id,
            rule_set=f"{decision.rule_set_code} v{decision.rule_set_version}",
            matches=not differences,
            differences=differences,
            facts_hash_ok=facts_ok,
            rule_set_hash_ok=rule_set_ok,
            recorded_engine=decision.engine_version,
            current_engine=engine.version,
        )

    def _approved_rule_set(self, code: str, version: int) -> el.RuleSet:
        """Approved versions never change, so one load serves every decision that used it."""
        key = (code, version)
        cached = self._rule_sets.get(key)
        if cached is None:
            cached = self.app.get_rule_set(code, version)
            if cached.status != "draft":
                self._rule_sets[key] = cached
        return cached

    def decisions_to_rerun(self, settlement_code: str | None) -> list[UUID]:
        """Every recorded decision (current and superseded), of a settlement or of all."""
        query = "SELECT decision_id FROM rm_eligibility_decisions"
        params: tuple[Any, ...] = ()
        if settlement_code:
            query += " WHERE origin_settlement_code = %s"
            params = (settlement_code,)
        with self.read_pool.connection() as conn:
            rows = conn.execute(query + " ORDER BY household_id, sequence", params).fetchall()
        return [r["decision_id"] for r in rows]

    def rerun_many(
        self, decision_ids: Iterable[UUID], progress: Callable[[int], None] | None = None
    ) -> Iterator[Rerun]:
        for decision_id in decision_ids:
            yield self.rerun(decision_id)
            if progress:
                progress(1)
