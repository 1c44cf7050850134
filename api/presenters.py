"""How the interfaces show a recorded aggregate: the same shape over HTTP and on the command
line."""

from __future__ import annotations

from typing import Any

from domain import eligibility as el
from domain.engine import Validation


def rule_set_view(rule_set: el.RuleSet, validation: Validation | None = None) -> dict[str, Any]:
    failures = validation.example_failures if validation else rule_set.example_failures
    return {
        "rule_set_id": rule_set.id,
        "id": rule_set.code,
        "version": rule_set.rule_set_version,
        "status": rule_set.status,
        "document_hash": rule_set.document_hash,
        "examples_pass": not failures,
        "example_failures": list(failures),
        "act_reference": rule_set.act_reference,
        "effective_from": rule_set.effective_from,
        "aggregate_version": rule_set.version,
    }


def decision_view(decision: el.EligibilityDecision) -> dict[str, Any]:
    return {
        "decision_id": decision.id,
        "household_id": decision.household_id,
        "sequence": decision.sequence,
        "supersedes_decision_id": decision.supersedes_decision_id,
        "rule_set": {"id": decision.rule_set_code, "version": decision.rule_set_version},
        "result": decision.effective_result,
        "priority_group": decision.effective_priority_group,
        "rooms_entitled": decision.effective_rooms,
        "determined": {
            "result": decision.result,
            "priority_group": decision.priority_group,
            "priority_rank": decision.priority_rank,
            "score": decision.score,
            "rooms_entitled": decision.rooms_entitled,
        },
        "facts_hash": decision.facts_hash,
        "engine_version": decision.engine_version,
    }
