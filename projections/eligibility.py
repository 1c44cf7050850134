"""The eligibility view: rule sets, every decision with what happened to it, the current
decision of each household, appeals, and counts per settlement.

Idempotent like every projection: rows carry their aggregate's version and an event at or
below it changes nothing.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

from psycopg import Cursor
from psycopg.types.json import Jsonb

NAME = "eligibility"
DDL = files("projections").joinpath("eligibility.sql").read_text(encoding="utf-8")

INSERT_RULE_SET = """
INSERT INTO rm_rule_sets (rule_set_id, code, rule_set_version, status, document, document_hash,
                          example_failures, drafted_at, drafted_by, version)
VALUES (%(aggregate_id)s, %(code)s, %(rule_set_version)s, 'draft', %(document_json)s,
        %(document_hash)s, %(failures_json)s, %(occurred_at)s, %(actor_id)s, %(aggregate_version)s)
ON CONFLICT (rule_set_id) DO NOTHING
"""

INSERT_DECISION = """
INSERT INTO rm_eligibility_decisions (
    decision_id, household_id, sequence, supersedes_decision_id, origin_settlement_code,
    rule_set_code, rule_set_version, rule_set_hash, facts, facts_hash, outcomes, result,
    priority_group, priority_rank, score, tie_breakers, rooms_entitled, engine_version, reason,
    determined_at, determined_by, effective_result, effective_priority_group, effective_rooms,
    version)
VALUES (
    %(aggregate_id)s, %(household_id)s, %(sequence)s, %(supersedes_decision_id)s,
    %(origin_settlement_code)s, %(rule_set_code)s, %(rule_set_version)s, %(rule_set_hash)s,
    %(facts_json)s, %(facts_hash)s, %(outcomes_json)s, %(result)s, %(priority_group)s,
    %(priority_rank)s, %(score)s, %(tie_breakers_json)s, %(rooms_entitled)s, %(engine_version)s,
    %(reason)s, %(occurred_at)s, %(actor_id)s, %(result)s, %(priority_group)s,
    %(rooms_entitled)s, %(aggregate_version)s)
ON CONFLICT (decision_id) DO NOTHING
"""

UPSERT_CURRENT = """
INSERT INTO rm_eligibility_current (household_id, decision_id, sequence)
VALUES (%(household_id)s, %(aggregate_id)s, %(sequence)s)
ON CONFLICT (household_id) DO UPDATE SET
    decision_id = excluded.decision_id, sequence = excluded.sequence
WHERE rm_eligibility_current.sequence < excluded.sequence
"""


def _advance(cur: Cursor[Any], table: str, key: str, e: dict[str, Any], sets: str) -> bool:
    cur.execute(
        f"UPDATE {table} SET version = %(aggregate_version)s, {sets} "
        f"WHERE {key} = %(aggregate_id)s AND version < %(aggregate_version)s RETURNING 1",
        e,
    )
    return cur.fetchone() is not None


def rule_set_drafted(cur: Cursor[Any], e: dict[str, Any]) -> None:
    cur.execute(
        INSERT_RULE_SET,
        {
            **e,
            "document_json": Jsonb(json.loads(e["document"])),
            "failures_json": Jsonb(e["example_failures"]),
        },
    )


def rule_set_revised(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _advance(
        cur,
        "rm_rule_sets",
        "rule_set_id",
        {
            **e,
            "document_json": Jsonb(json.loads(e["document"])),
            "failures_json": Jsonb(e["example_failures"]),
        },
        "document = %(document_json)s, document_hash = %(document_hash)s, "
        "example_failures = %(failures_json)s",
    )


def rule_set_approved(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _advance(
        cur,
        "rm_rule_sets",
        "rule_set_id",
        e,
        "status = 'approved', approved_at = %(occurred_at)s, approved_by = %(actor_id)s, "
        "act_reference = %(act_reference)s, effective_from = %(effective_from)s",
    )


def rule_set_superseded(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _advance(
        cur,
        "rm_rule_sets",
        "rule_set_id",
        e,
        "status = 'superseded', superseded_by = %(by_version)s, "
        "superseded_from = %(effective_from)s",
    )


def eligibility_determined(cur: Cursor[Any], e: dict[str, Any]) -> None:
    cur.execute(
        INSERT_DECISION,
        {
            **e,
            "facts_json": Jsonb(json.loads(e["facts"])),
            "outcomes_json": Jsonb(e["outcomes"]),
            "tie_breakers_json": Jsonb(json.loads(e["tie_breakers"])),
        },
    )
    cur.execute(UPSERT_CURRENT, e)


def decision_overridden(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _advance(
        cur,
        "rm_eligibility_decisions",
        "decision_id",
        e,
        "effective_result = %(result)s, effective_priority_group = %(priority_group)s, "
        "effective_rooms = %(rooms_entitled)s, overridden_at = %(occurred_at)s, "
        "overridden_by = %(actor_id)s, override_justification = %(justification)s",
    )


def appeal_lodged(cur: Cursor[Any], e: dict[str, Any]) -> None:
    if _advance(cur, "rm_eligibility_decisions", "decision_id", e, "decision_id = decision_id"):
        cur.execute(
            "INSERT INTO rm_eligibility_appeals (appeal_id, decision_id, household_id, grounds, "
            "lodged_at, lodged_by) VALUES (%(appeal_id)s, %(aggregate_id)s, %(household_id)s, "
            "%(grounds)s, %(occurred_at)s, %(actor_id)s) ON CONFLICT (appeal_id) DO NOTHING",
            e,
        )


def appeal_decided(cur: Cursor[Any], e: dict[str, Any]) -> None:
    upheld = e["outcome"] == "upheld"
    sets = (
        "effective_result = %(result)s, effective_priority_group = %(priority_group)s"
        if upheld
        else "decision_id = decision_id"
    )
    if _advance(cur, "rm_eligibility_decisions", "decision_id", e, sets):
        cur.execute(
            "UPDATE rm_eligibility_appeals SET outcome = %(outcome)s, reasons = %(reasons)s, "
            "result = %(result)s, priority_group = %(priority_group)s, "
            "decided_at = %(occurred_at)s, decided_by = %(actor_id)s WHERE appeal_id = %(appeal_id)s",
            e,
        )


HANDLERS = {
    "reintegration.eligibility.RuleSetDrafted": rule_set_drafted,
    "reintegration.eligibility.RuleSetDraftRevised": rule_set_revised,
    "reintegration.eligibility.RuleSetApproved": rule_set_approved,
    "reintegration.eligibility.RuleSetSuperseded": rule_set_superseded,
    "reintegration.eligibility.EligibilityDetermined": eligibility_determined,
    "reintegration.eligibility.DecisionOverridden": decision_overridden,
    "reintegration.eligibility.AppealLodged": appeal_lodged,
    "reintegration.eligibility.AppealDecided": appeal_decided,
}
