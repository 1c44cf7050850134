"""Queries over the Great Return's views (``projection_housing``): a settlement and its units,
lottery rounds, the relocation pipeline, convoys, a household's relocation, returnees."""

from __future__ import annotations

from typing import Any

from psycopg import Cursor

from domain.reintegration import IASC_CRITERIA


def units_by_status(cur: Cursor[Any], settlement_code: str) -> dict[str, Any]:
    cur.execute(
        "SELECT status, rooms, count(*) AS units FROM rm_housing_units WHERE settlement_code = %s "
        "GROUP BY 1, 2 ORDER BY 1, 2",
        (settlement_code,),
    )
    rows = cur.fetchall()
    totals: dict[str, int] = {}
    for r in rows:
        totals[r["status"]] = totals.get(r["status"], 0) + r["units"]
    return {"settlement_code": settlement_code, "totals": totals, "by_rooms": rows}


def list_units(
    cur: Cursor[Any], settlement_code: str, status: str | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    cur.execute(
        "SELECT unit_id, reference, address, rooms, kind, floor, status, household_id, updated_at "
        "FROM rm_housing_units WHERE settlement_code = %(s)s AND (%(st)s::text IS NULL OR status = %(st)s) "
        "ORDER BY reference LIMIT %(l)s OFFSET %(o)s",
        {"s": settlement_code, "st": status, "l": limit, "o": offset},
    )
    return list(cur.fetchall())


def list_settlements(cur: Cursor[Any], districts: list[str] | None = None) -> list[dict[str, Any]]:
    """The registered settlements (of ``districts``, or all) with their units counted."""
    cur.execute(
        "SELECT s.settlement_code, s.name, s.clearance_certified_on, s.readiness, s.opened_on, "
        "(SELECT count(*) FROM rm_housing_units u WHERE u.settlement_code = s.settlement_code) "
        "AS units FROM rm_settlements s "
        "WHERE (%(d)s::text[] IS NULL OR split_part(s.settlement_code, '-', 1) = ANY(%(d)s)) "
        "ORDER BY s.settlement_code",
        {"d": districts},
    )
    return list(cur.fetchall())


def get_settlement(cur: Cursor[Any], settlement_code: str) -> dict[str, Any] | None:
    cur.execute("SELECT * FROM rm_settlements WHERE settlement_code = %s", (settlement_code,))
    row: dict[str, Any] | None = cur.fetchone()
    return row


def rounds(cur: Cursor[Any], settlement_code: str) -> list[dict[str, Any]]:
    cur.execute(
        "SELECT round_id, round_number, seed_hash, seed, algorithm_version, rule_set_code, "
        "rule_set_version, jsonb_array_length(entrants) AS entrants, "
        "jsonb_array_length(units) AS units, coalesce(jsonb_array_length(assignments), 0) AS assigned, "
        "coalesce(jsonb_array_length(reserve), 0) AS reserve, witnesses, announced_at, drawn_at, "
        "coalesce(participants, '[]') AS participants, public_randomness, voided_at, "
        "withheld_by, void_reason "
        "FROM rm_allocation_rounds WHERE settlement_code = %s ORDER BY round_number",
        (settlement_code,),
    )
    return list(cur.fetchall())


def pipeline(
    cur: Cursor[Any], settlement_code: str | None, districts: list[str] | None = None
) -> list[dict[str, Any]]:
    """Households per stage per settlement."""
    cur.execute(
        "SELECT settlement_code, stage, count(*) AS households FROM rm_relocations "
        "WHERE (%(s)s::text IS NULL OR settlement_code = %(s)s) "
        "AND (%(d)s::text[] IS NULL OR split_part(settlement_code, '-', 1) = ANY(%(d)s)) GROUP BY 1, 2 ORDER BY 1, 2",
        {"s": settlement_code, "d": districts},
    )
    return list(cur.fetchall())


CONVOYS_WHERE = (
    "WHERE (%(s)s::text IS NULL OR c.settlement_code = %(s)s) "
    "AND (%(d)s::text[] IS NULL OR split_part(c.settlement_code, '-', 1) = ANY(%(d)s)) "
)


def convoys(
    cur: Cursor[Any],
    settlement_code: str | None,
    districts: list[str] | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Convoys with the families still in them (and how many withdrew their consent), by
    departure; a page of them when ``limit`` is given (the families of that page only)."""
    cur.execute(
        "SELECT c.convoy_id, c.settlement_code, c.departs_on, c.vehicles, c.scheduled_by, "
        "f.families, cardinality(c.household_ids) - f.kept AS withdrawn "
        "FROM (SELECT * FROM rm_convoys c " + CONVOYS_WHERE + "ORDER BY c.departs_on, c.convoy_id "
        "LIMIT %(l)s OFFSET %(o)s) c CROSS JOIN LATERAL (SELECT count(*) AS kept, "
        "coalesce(json_agg(json_build_object('household_id', r.household_id, 'stage', r.stage, "
        "'address', r.address) ORDER BY r.address), '[]') AS families FROM rm_relocations r "
        "WHERE r.household_id = ANY(c.household_ids) AND r.convoy_id = c.convoy_id) f "
        "ORDER BY c.departs_on, c.convoy_id",
        {"s": settlement_code, "d": districts, "l": limit, "o": offset},
    )
    return list(cur.fetchall())


def count_convoys(
    cur: Cursor[Any], settlement_code: str | None, districts: list[str] | None = None
) -> int:
    """How many convoys :func:`convoys` finds with the same filters, on every page."""
    cur.execute(
        "SELECT count(*) AS n FROM rm_convoys c " + CONVOYS_WHERE,
        {"s": settlement_code, "d": districts},
    )
    row = cur.fetchone()
    return int(row["n"]) if row else 0


def convoy(cur: Cursor[Any], convoy_id: Any) -> dict[str, Any] | None:
    """One convoy as its manifest lists it: the families still in it, each with its head's
    name, how many members it has and its new address (and how many withdrew)."""
    cur.execute(
        "SELECT c.convoy_id, c.settlement_code, c.departs_on, c.vehicles, c.scheduled_by, "
        "cardinality(c.household_ids) AS scheduled FROM rm_convoys c WHERE c.convoy_id = %s",
        (convoy_id,),
    )
    row = cur.fetchone()
    if row is None:
        return None
    cur.execute(
        "SELECT r.household_id, h.head_person_id, r.stage, r.address, p.first_name, p.last_name, p.patronymic, "
        "(SELECT count(*) FROM rm_household_members m WHERE m.household_id = r.household_id) "
        "AS members FROM rm_relocations r LEFT JOIN rm_households h USING (household_id) "
        "LEFT JOIN rm_persons p ON p.person_id = h.head_person_id "
        "WHERE r.convoy_id = %s ORDER BY r.address, r.household_id",
        (convoy_id,),
    )
    families = [dict(f) for f in cur.fetchall()]
    return {**row, "families": families, "withdrawn": row["scheduled"] - len(families)}


def get_relocation(cur: Cursor[Any], household_id: Any) -> dict[str, Any] | None:
    cur.execute("SELECT * FROM rm_relocations WHERE household_id = %s", (household_id,))
    row: dict[str, Any] | None = cur.fetchone()
    return row


RETURNEES_WHERE = (
    "WHERE (%(s)s::text IS NULL OR r.settlement_code = %(s)s) "
    "AND (%(d)s::text[] IS NULL OR split_part(r.settlement_code, '-', 1) = ANY(%(d)s)) "
)


def returnees(
    cur: Cursor[Any],
    settlement_code: str | None,
    districts: list[str] | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Returnee households with their reintegration status and unmet IASC criteria; a page
    of them when ``limit`` is given."""
    cur.execute(
        "SELECT r.household_id, r.settlement_code, l.stage, r.persons_seeking_work, r.employed, "
        "r.services, r.allowance_azn, r.allowance_terminates_on, r.assessments "
        "FROM rm_reintegration r LEFT JOIN rm_relocations l USING (household_id) "
        + RETURNEES_WHERE
        + "ORDER BY r.household_id LIMIT %(l)s OFFSET %(o)s",
        {"s": settlement_code, "d": districts, "l": limit, "o": offset},
    )
    return [_with_unmet(row) for row in cur.fetchall()]


def count_returnees(
    cur: Cursor[Any], settlement_code: str | None, districts: list[str] | None = None
) -> int:
    """How many returnee households :func:`returnees` finds with the same filters."""
    cur.execute(
        "SELECT count(*) AS n FROM rm_reintegration r " + RETURNEES_WHERE,
        {"s": settlement_code, "d": districts},
    )
    row = cur.fetchone()
    return int(row["n"]) if row else 0


def returnee(cur: Cursor[Any], household_id: Any) -> dict[str, Any] | None:
    """One returnee household's follow-up (as :func:`returnees`), or None before its
    residence is registered."""
    cur.execute(
        "SELECT r.*, l.stage FROM rm_reintegration r LEFT JOIN rm_relocations l "
        "USING (household_id) WHERE r.household_id = %s",
        (household_id,),
    )
    row = cur.fetchone()
    return _with_unmet(row) if row else None


def _with_unmet(row: dict[str, Any]) -> dict[str, Any]:
    met = {k.split(":", 1)[1] for k, v in row["assessments"].items() if k.startswith("iasc:") and v}
    unmet = [c for c in IASC_CRITERIA if c not in met]
    return {**row, "unmet_criteria": unmet, "durable_solution": not unmet}
