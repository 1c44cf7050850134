"""Queries over the eligibility view (``projection_eligibility``): rule sets, a household's
current decision and its history, a decision with its appeals, counts per settlement."""

from __future__ import annotations

from typing import Any

from psycopg import Cursor

DECISION_COLUMNS = """
decision_id, household_id, sequence, supersedes_decision_id, origin_settlement_code,
rule_set_code, rule_set_version, rule_set_hash, facts, facts_hash, outcomes, result,
priority_group, priority_rank, score, tie_breakers, rooms_entitled, engine_version, reason,
determined_at, determined_by, effective_result, effective_priority_group, effective_rooms,
overridden_at, overridden_by, override_justification
"""


def list_rule_sets(cur: Cursor[Any], code: str | None = None) -> list[dict[str, Any]]:
    cur.execute(
        "SELECT rule_set_id, code, rule_set_version, status, document_hash, example_failures, "
        "drafted_at, drafted_by, approved_at, approved_by, act_reference, effective_from, "
        "superseded_by, superseded_from, document->>'title_en' AS title_en, "
        "document->>'title_az' AS title_az FROM rm_rule_sets "
        "WHERE %(code)s::text IS NULL OR code = %(code)s ORDER BY code, rule_set_version",
        {"code": code},
    )
    return list(cur.fetchall())


def get_rule_set(cur: Cursor[Any], code: str, version: int) -> dict[str, Any] | None:
    cur.execute(
        "SELECT * FROM rm_rule_sets WHERE code = %s AND rule_set_version = %s", (code, version)
    )
    row: dict[str, Any] | None = cur.fetchone()
    return row


def current_decision(cur: Cursor[Any], household_id: Any) -> dict[str, Any] | None:
    cur.execute(
        f"SELECT {DECISION_COLUMNS} FROM rm_eligibility_decisions "
        "WHERE decision_id = (SELECT decision_id FROM rm_eligibility_current WHERE household_id = %s)",
        (household_id,),
    )
    row: dict[str, Any] | None = cur.fetchone()
    return _with_appeals(cur, row)


def get_decision(cur: Cursor[Any], decision_id: Any) -> dict[str, Any] | None:
    cur.execute(
        f"SELECT {DECISION_COLUMNS} FROM rm_eligibility_decisions WHERE decision_id = %s",
        (decision_id,),
    )
    row: dict[str, Any] | None = cur.fetchone()
    return _with_appeals(cur, row)


def decision_history(cur: Cursor[Any], household_id: Any) -> list[dict[str, Any]]:
    cur.execute(
        f"SELECT {DECISION_COLUMNS} FROM rm_eligibility_decisions "
        "WHERE household_id = %s ORDER BY sequence",
        (household_id,),
    )
    return [_with_appeals(cur, row) or {} for row in cur.fetchall()]


def _with_appeals(cur: Cursor[Any], row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    cur.execute(
        "SELECT appeal_id, grounds, lodged_at, lodged_by, outcome, reasons, result, "
        "priority_group, decided_at, decided_by FROM rm_eligibility_appeals "
        "WHERE decision_id = %s ORDER BY lodged_at",
        (row["decision_id"],),
    )
    return {**row, "appeals": list(cur.fetchall())}


def statistics(
    cur: Cursor[Any], settlement_code: str | None, districts: list[str] | None = None
) -> list[dict[str, Any]]:
    """Current decisions counted per settlement, by result and priority group (of the
    settlements in ``districts`` when given)."""
    cur.execute(
        "SELECT d.origin_settlement_code AS settlement_code, d.effective_result AS result, "
        "d.effective_priority_group AS priority_group, count(*) AS households "
        "FROM rm_eligibility_current c JOIN rm_eligibility_decisions d USING (decision_id) "
        "WHERE (%(s)s::text IS NULL OR d.origin_settlement_code = %(s)s) "
        "AND (%(d)s::text[] IS NULL OR split_part(d.origin_settlement_code, '-', 1) = ANY(%(d)s)) "
        "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 NULLS LAST",
        {"s": settlement_code, "d": districts},
    )
    return list(cur.fetchall())
