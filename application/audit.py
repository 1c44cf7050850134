"""The auditor's use cases, computed from the event log, never from the read models: a case's
complete history, the case as it stood at any moment, and the re-runs of a recorded eligibility
decision and of a drawn lottery.

Kept whole: every use case here reads the same case events through one store port and answers
in one envelope (the builders at the end); splitting it would scatter that shared reading.
The next split, when it grows, is the re-runs (decisions, lottery) into their own module."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from application.eligibility import PRE_RETURN_SURVEY
from application.housing import LotteryCheck, get_round
from application.ports import CaseEvent, EventStore, ExpressionLanguage, ParticipantKeys
from application.reports import AuditReport
from domain import eligibility, rules, surveys
from domain.base import NotFound
from domain.engine import RuleEngine
from domain.explanation import explain
from domain.geography import settlement
from domain.housing import (
    HousingStateError,
    commitment_message,
    derive_seed,
    digest,
    draw,
    result_document,
    seed_hash,
)
from domain.registry import Household, Person
from domain.reintegration import reintegration_id
from domain.relocation import Relocation, relocation_id
from domain.rules import content_hash

WINDOW = 8  # surveys and decisions of a case asked for in its first read (4 waves: 4 surveys)

ENVELOPE = {
    "originator_id",
    "originator_version",
    "timestamp",
    "originator_topic",
    "event_id",
    "actor_id",
    "actor_role",
    "correlation_id",
    "causation_id",
    "reason",
}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, UUID | datetime) or hasattr(value, "isoformat"):
        return str(value) if isinstance(value, UUID) else value.isoformat()
    return value


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
    criteria: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    """Each criterion's recorded and re-run outcome, in the rule set's order."""

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "decision_id": str(self.decision_id),
            "household_id": str(self.household_id),
        }


class Audit:
    def __init__(
        self,
        store: EventStore,
        language: ExpressionLanguage,
        event_type: Callable[[Any], str],
        participant_keys: ParticipantKeys | None = None,
    ) -> None:
        """``event_type`` names an event as the contract does (its Avro schema's full name)."""
        self.store = store
        self.language = language
        self.event_type = event_type
        self.participant_keys = participant_keys
        self._rule_sets: dict[tuple[str, int], eligibility.RuleSet] = {}
        self._documents: dict[tuple[str, int], rules.RuleSetDocument] = {}
        self._engines: dict[tuple[str, int], RuleEngine] = {}

    # --- a case from the log ---------------------------------------------------------------

    def case_events(self, household_id: UUID) -> list[CaseEvent]:
        """Every event of the case (the household, every person registered in it, its surveys,
        decisions, relocation and follow-up), in the order of the log.

        Two reads as a rule: the household's own events together with those of every aggregate
        whose id derives from the household's (its surveys and decisions, numbered 1, 2, ...
        without gaps, asked up to a window; its relocation and follow-up); then its people's,
        whose ids the household's events name. A case with more surveys or decisions than the
        window asks again, a window further."""
        numbered_ids: list[Callable[[UUID, int], UUID]] = [
            lambda h, n: surveys.response_id(h, PRE_RETURN_SURVEY, n),
            eligibility.decision_id,
        ]
        derived = [relocation_id(household_id), reintegration_id(household_id)]
        found = self.store.case_events(
            [
                household_id,
                *derived,
                *(id_for(household_id, n) for id_for in numbered_ids for n in range(1, WINDOW + 1)),
            ]
        )
        household_events = [item for item in found if item.event.originator_id == household_id]
        if not household_events:
            raise NotFound("household", household_id)
        everything = list(found)
        present = {item.event.originator_id for item in found}
        for id_for in numbered_ids:
            start = 1
            while all(id_for(household_id, n) in present for n in range(start, start + WINDOW)):
                start += WINDOW
                more = self.store.case_events(
                    [id_for(household_id, n) for n in range(start, start + WINDOW)]
                )
                everything += more
                present |= {item.event.originator_id for item in more}
        # Only the numbered aggregates without a gap from 1 belong to the case (as before).
        belongs = {household_id, *derived}
        for id_for in numbered_ids:
            n = 1
            while id_for(household_id, n) in present:
                belongs.add(id_for(household_id, n))
                n += 1
        people: list[UUID] = []
        for item in household_events:
            for member in getattr(item.event, "members", []) or []:
                if member.person_id not in people:
                    people.append(member.person_id)
        everything = [item for item in everything if item.event.originator_id in belongs]
        everything += self.store.case_events(people)
        return sorted(everything, key=lambda item: item.position)

    def history(self, household_id: UUID) -> dict[str, Any]:
        """Every event of the case in log order, with who, when, why and what caused it."""
        entries = []
        for item in self.case_events(household_id):
            event = item.event
            entries.append(
                {
                    "position": item.position,
                    "event_type": self.event_type(event),
                    "event_id": str(event.event_id),
                    "aggregate": type(event).__qualname__.split(".")[0],
                    "aggregate_id": str(event.originator_id),
                    "aggregate_version": event.originator_version,
                    "occurred_at": event.timestamp.isoformat(),
                    "actor_id": event.actor_id,
                    "actor_role": event.actor_role,
                    "reason": getattr(event, "reason", None),
                    "correlation_id": event.correlation_id,
                    "causation_id": event.causation_id,
                    "data": {k: _plain(v) for k, v in vars(event).items() if k not in ENVELOPE},
                    "chain_hash": item.link.hex() if item.link else None,
                    **self._explained(event),
                }
            )
        return {"household_id": str(household_id), "events": entries}

    def _explained(self, event: Any) -> dict[str, Any]:
        """A decision's determination in plain words, criterion by criterion, in both
        languages (from the rule set version it names)."""
        if not isinstance(event, eligibility.EligibilityDecision.Determined):
            return {}
        try:
            document = self._approved_document(event.rule_set_code, event.rule_set_version)
        except NotFound:
            return {}
        return {
            "explanation": {
                lang: explain(
                    document,
                    event.outcomes,
                    event.result,
                    event.priority_group,
                    event.rooms_entitled,
                    lang,
                )
                for lang in ("az", "en")
            }
        }

    def as_of(self, household_id: UUID, moment: datetime) -> dict[str, Any]:
        """The case as it stood at ``moment``: replay only the events recorded up to then."""
        aggregates: dict[UUID, Any] = {}
        last_position = 0
        for item in self.case_events(household_id):
            event = item.event
            if event.timestamp > moment:
                continue
            aggregates[event.originator_id] = event.mutate(aggregates.get(event.originator_id))
            last_position = item.position
        household = aggregates.get(household_id)
        if not isinstance(household, Household):
            raise NotFound(f"household as of {moment.isoformat()}", household_id)
        persons = [
            p for m in household.members if isinstance(p := aggregates.get(m.person_id), Person)
        ]
        completed = sorted(
            (
                a
                for a in aggregates.values()
                if isinstance(a, surveys.SurveyResponse) and a.completed
            ),
            key=lambda a: a.modified_on,
        )
        answers = dict(completed[-1].answers) if completed else None
        facts = rules.household_facts(
            household,
            persons,
            answers,
            settlement(household.origin_settlement_code) is not None,
            moment.date(),
        )
        return {
            "household_id": str(household_id),
            "as_of": moment.isoformat(),
            "position": last_position,
            "household": {
                "head_person_id": str(household.head_person_id),
                "origin_settlement_code": household.origin_settlement_code,
                "current_address": household.current_address,
                "contact_phone": household.contact_phone,
                "version": household.version,
                "registered_at": household.created_on.isoformat(),
                "modified_at": household.modified_on.isoformat(),
                "housing_condition": household.housing_condition,
                "vulnerabilities": [
                    {"vulnerability": v, "person_id": str(p) if p else None}
                    for v, p in household.vulnerabilities
                ],
                "latest_verification": _plain(household.circumstances),
            },
            "members": [_member_as_of(m, aggregates.get(m.person_id)) for m in household.members],
            "eligibility_decision": _decision_as_of(aggregates),
            "eligibility_facts": facts,
            **_relocation_as_of(aggregates.get(relocation_id(household_id))),
        }

    # --- re-running what was decided -------------------------------------------------------

    def rerun_decision(self, decision_id: UUID) -> Rerun:
        """Load the recorded decision and the rule set version it names, run the engine again
        on the recorded facts, and compare every outcome and both hashes."""
        decision: eligibility.EligibilityDecision = self.store.get(
            decision_id, "eligibility decision"
        )
        rule_set = self._approved_rule_set(decision.rule_set_code, decision.rule_set_version)
        facts = decision.facts_snapshot
        engine = self._engine(rule_set)
        recorded = decision.determination.comparable()
        now = engine.determine(facts).comparable()
        differences = [
            f"{key}: recorded {recorded[key]!r}, re-run {now[key]!r}"
            for key in recorded
            if recorded[key] != now[key]
        ]
        facts_ok = content_hash(facts) == decision.facts_hash
        rule_set_ok = rule_set.document_hash == decision.rule_set_hash and (
            content_hash(json.loads(rule_set.document)) == rule_set.document_hash
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
            criteria=compare_outcomes(recorded["outcomes"], now["outcomes"]),
        )

    def decisions(self, settlement_code: str | None = None) -> list[UUID]:
        """Every recorded decision (current and superseded), of the households originating from
        a settlement or of all, by household and sequence: from the log, never lagging."""
        households = sorted(
            self.store.households_originating_from(settlement_code)
            if settlement_code
            else self.store.households(),
            key=str,
        )
        counts = self.store.count_numbered(eligibility.decision_id, households)
        return [eligibility.decision_id(h, n) for h in households for n in range(1, counts[h] + 1)]

    def rerun_decisions(
        self, decision_ids: Iterable[UUID], progress: Callable[[int], None] | None = None
    ) -> Iterator[Rerun]:
        for decision_id in decision_ids:
            yield self.rerun_decision(decision_id)
            if progress:
                progress(1)

    def _approved_rule_set(self, code: str, version: int) -> eligibility.RuleSet:
        """Approved versions never change, so one load serves every decision that used it."""
        key = (code, version)
        cached = self._rule_sets.get(key)
        if cached is None:
            cached = self.store.find(eligibility.rule_set_id(code, version))
            if cached is None:
                raise NotFound("rule set", f"{code} version {version}")
            if cached.status != "draft":
                self._rule_sets[key] = cached
        return cached

    def _approved_document(self, code: str, version: int) -> rules.RuleSetDocument:
        """The parsed document of an approved version, parsed once (parsing checks every text
        of the document: a millisecond or two, on every case history before)."""
        key = (code, version)
        document = self._documents.get(key)
        if document is None:
            rule_set = self._approved_rule_set(code, version)
            document = rule_set.parsed
            if rule_set.status != "draft":
                self._documents[key] = document
        return document

    def _engine(self, rule_set: eligibility.RuleSet) -> RuleEngine:
        key = (rule_set.code, rule_set.rule_set_version)
        engine = self._engines.get(key)
        if engine is None or rule_set.status == "draft":
            engine = RuleEngine(rule_set.parsed, self.language)
            self._engines[key] = engine
        return engine

    def rerun_lottery(self, code: str, number: int) -> LotteryCheck:
        """Re-run a drawn round from what it recorded: every reveal against its commitment and
        the seed derived from them and the public value (version 1: the one seed against its
        hash), the digests of the announcement and the result, then the draw on the recorded
        entrants and units."""
        r = get_round(self.store, code, number)
        if r.seed is None:
            raise HousingStateError("the round is not drawn yet", "round")
        assignments, reserve = draw(r.seed, r.entrants, r.units)
        if r.single_party:
            seed_ok, digests_ok = seed_hash(r.seed) == r.seed_hash, True
        else:
            committed = {m.participant: m.commitment for m in r.commitments}
            seed_ok = (
                [c.participant for c in r.contributions] == list(committed)
                and all(
                    seed_hash(c.contribution) == committed[c.participant] for c in r.contributions
                )
                and derive_seed(r.id, r.contributions, r.public_value) == r.seed
            )
            announced = r.announcement()
            result = result_document(
                r.contributions, r.public_value, r.seed, r.entrants, assignments, reserve
            )
            digests_ok = (
                digest(announced) == r.announcement_digest
                and digest({"announcement_digest": r.announcement_digest, **result})
                == r.result_digest
            )
        keys = self.participant_keys
        signed = (
            None  # nothing to check them with, or announced without signatures
            if r.single_party
            or keys is None
            or not keys.configured
            or not any(c.signature for c in r.commitments)
            else all(
                keys.signed(
                    c.participant,
                    commitment_message(
                        keys.origin, code, number, c.commitment, r.public_randomness
                    ),
                    c.signature,
                )
                for c in r.commitments
            )
        )
        return LotteryCheck(
            round_id=r.id,
            settlement_code=code,
            round_number=number,
            commitments_signed=signed,
            seed_matches_commitment=seed_ok,
            assignments_match=assignments == r.assignments,
            reserve_matches=reserve == r.reserve,
            algorithm_version=r.algorithm_version,
            entrants=len(r.entrants),
            units=len(r.units),
            participants=len(r.commitments),
            digests_match=digests_ok,
        )


def compare_outcomes(
    recorded: list[dict[str, Any]], rerun: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Criterion by criterion: the recorded outcome beside the re-run's (None where one side
    has no such criterion), and whether they are the same, outcome and fact values alike."""
    again = {o["criterion_id"]: o for o in rerun}
    compared = []
    for first in recorded:
        second = again.pop(first["criterion_id"], None)
        compared.append(_compared(first, second))
    compared.extend(_compared(None, second) for second in again.values())
    return compared


def _compared(recorded: dict[str, Any] | None, rerun: dict[str, Any] | None) -> dict[str, Any]:
    either = recorded or rerun or {}
    return {
        "criterion_id": either.get("criterion_id"),
        "kind": either.get("kind"),
        "recorded": recorded["outcome"] if recorded else None,
        "rerun": rerun["outcome"] if rerun else None,
        "same": recorded == rerun,
    }


def _member_as_of(member: Any, person: Any) -> dict[str, Any]:
    details = (
        {
            "first_name": person.first_name,
            "last_name": person.last_name,
            "patronymic": person.patronymic,
            "birth_date": person.birth_date.isoformat(),
            "sex": person.sex,
            "idp_status": person.idp_status,
            "idp_status_since": _plain(getattr(person, "idp_status_since", None)),
            "date_of_death": _plain(person.date_of_death),
            "version": person.version,
        }
        if isinstance(person, Person)
        else {}
    )
    return {
        "person_id": str(member.person_id),
        "fin": member.fin,
        "relationship": member.relationship,
        **details,
    }


def _decision_as_of(aggregates: dict[UUID, Any]) -> dict[str, Any] | None:
    decisions = [a for a in aggregates.values() if isinstance(a, eligibility.EligibilityDecision)]
    if not decisions:
        return None
    d = max(decisions, key=lambda a: a.sequence)
    return {
        "decision_id": str(d.id),
        "sequence": d.sequence,
        "rule_set": {"id": d.rule_set_code, "version": d.rule_set_version},
        "result": d.effective_result,
        "priority_group": d.effective_priority_group,
        "rooms_entitled": d.effective_rooms,
        "determined": {"result": d.result, "at": d.created_on.isoformat(), "by": d.determined_by},
        "overridden_by": d.overridden_by,
        "version": d.version,
    }


def _relocation_as_of(case: Any) -> dict[str, Any]:
    if not isinstance(case, Relocation):
        return {"allocation": None, "relocation_stage": None}
    allocation = (
        {"unit_id": str(case.allocated_unit), "address": case.allocated_address}
        if case.allocated_unit
        else None
    )
    return {"allocation": allocation, "relocation_stage": case.stage, "consent": case.consent}


# --- the audit envelope of each re-run -------------------------------------------------------


def lottery_report(check: LotteryCheck, by: str) -> AuditReport:
    report = AuditReport(
        "lottery re-run", f"round {check.round_number} of {check.settlement_code}", by
    )
    report.evidence = [
        f"the round's events in the event store (round {check.round_id}): the announcement "
        f"({check.entrants} entrants, {check.units} units, {check.participants} commitments) "
        "and the draw (reveals, public value, seed, assignment, reserve lists)",
        f"the draw algorithm {check.algorithm_version}, run again on them",
    ]
    report.summary = {
        "algorithm": check.algorithm_version,
        "participants": check.participants,
        "entrants": check.entrants,
        "units": check.units,
        "reveals match their commitments and the seed": check.seed_matches_commitment,
        "assignment matches": check.assignments_match,
        "reserve lists match": check.reserve_matches,
        "recorded digests match": check.digests_match,
        "commitments signed by the participants' published keys": "not checked: no "
        "LOTTERY_PARTICIPANT_KEYS, or announced without signatures"
        if check.commitments_signed is None
        else check.commitments_signed,
    }
    if check.commitments_signed is False:
        report.fail(problem="a commitment is not signed by its participant's published key")
    for name, ok in (
        (
            "the seed does not follow from the reveals, the commitments or the public value",
            check.seed_matches_commitment,
        ),
        ("the re-run assignment differs from the recorded one", check.assignments_match),
        ("the re-run reserve lists differ from the recorded ones", check.reserve_matches),
        ("the announcement or result differs from its recorded digest", check.digests_match),
    ):
        if not ok:
            report.fail(problem=name)
    return report


def decision_report(rerun: Rerun, by: str) -> AuditReport:
    report = AuditReport("decision re-run", f"eligibility decision {rerun.decision_id}", by)
    report.evidence = [
        f"the decision's recorded facts snapshot and outcomes (household {rerun.household_id})",
        f"the rule set version it names ({rerun.rule_set}), from the event store",
        f"the rule engine {rerun.current_engine} (recorded: {rerun.recorded_engine})",
    ]
    report.summary = {
        "rule set": rerun.rule_set,
        "identical result": rerun.matches,
        "facts hash matches": rerun.facts_hash_ok,
        "rule set hash matches": rerun.rule_set_hash_ok,
        "recorded engine": rerun.recorded_engine,
        "engine now": rerun.current_engine,
    }
    for difference in rerun.differences:
        report.fail(problem=difference)
    return report


def decisions_report(
    scope: str, reruns: list[Rerun], engines: dict[str, int], by: str
) -> AuditReport:
    report = AuditReport("decision re-runs", scope, by)
    report.evidence = [
        "every recorded eligibility decision of the scope (current and superseded), each "
        "re-run on its recorded facts with the rule set version it names"
    ]
    mismatched = [r for r in reruns if not r.matches]
    report.summary = {
        "decisions": len(reruns),
        "matches": len(reruns) - len(mismatched),
        "mismatches": len(mismatched),
        "recorded engines": engines,
    }
    for rerun in mismatched[:100]:
        report.fail(decision_id=str(rerun.decision_id), differences=rerun.differences)
    return report


def case_report(
    household_id: UUID, document: dict[str, Any], chain: AuditReport | None, by: str
) -> AuditReport:
    """A case's history (or its state as of a moment), with the hash chain it comes from."""
    as_of = "as_of" in document
    report = AuditReport(
        "case as of " + document["as_of"] if as_of else "case history",
        f"household {household_id}",
        by,
    )
    events = document.get("events", [])
    report.evidence = [
        "the case's events in the event store, replayed up to the moment"
        if as_of
        else f"the case's {len(events)} events in the event store, in the log's order",
        "the hash chain over the whole log, recomputed"
        if chain is not None
        else "the hash chain: not checked",
    ]
    if as_of:
        report.summary = {
            "position": document["position"],
            "members": len(document["members"]),
            "eligibility": (document.get("eligibility_decision") or {}).get("result"),
            "relocation stage": document.get("relocation_stage"),
        }
    else:
        report.summary = {
            "events": len(events),
            "first position": events[0]["position"] if events else None,
            "last position": events[-1]["position"] if events else None,
        }
    if chain is not None:
        report.summary["hash chain"] = "intact" if chain.ok else "BROKEN"
        if not chain.ok:
            report.fail(
                problem="the hash chain does not verify: "
                f"first broken position {chain.summary.get('first broken position')}"
            )
    report.details = document
    return report
