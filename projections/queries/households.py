"""Queries over the households view (``projection_households``): a case with its members and
latest survey, a person, the searches, status references, survey statistics, questionnaires.
Each takes a cursor whose search path includes the projection's schema."""

from __future__ import annotations

from typing import Any

from psycopg import Cursor

from domain.text import fold
from projections.households import SELECT_HOUSEHOLD, SELECT_MEMBERS

LATEST_SURVEY_STATUS = (
    "SELECT r.status FROM rm_survey_responses r WHERE r.household_id = h.household_id "
    "ORDER BY r.started_at DESC LIMIT 1"
)


def get_household(cur: Cursor[Any], household_id: Any) -> dict[str, Any] | None:
    """The household's full profile: members and the latest survey with its answers."""
    cur.execute(SELECT_HOUSEHOLD, (household_id,))
    row = cur.fetchone()
    if row is None:
        return None
    household = dict(row)
    cur.execute(SELECT_MEMBERS, (household_id,))
    household["members"] = [dict(m) for m in cur.fetchall()]
    cur.execute(
        "SELECT response_id, questionnaire_code, questionnaire_version, status, started_at, completed_at "
        "FROM rm_survey_responses WHERE household_id = %s ORDER BY started_at DESC LIMIT 1",
        (household_id,),
    )
    survey = cur.fetchone()
    if survey is not None:
        survey = dict(survey)
        cur.execute(
            "SELECT question_id, value FROM rm_survey_answers WHERE response_id = %s ORDER BY answered_at",
            (survey["response_id"],),
        )
        survey["answers"] = {r["question_id"]: r["value"] for r in cur.fetchall()}
    household["latest_survey"] = survey
    return household


PERSON_COLUMNS = """
person_id, fin, first_name, last_name, patronymic, birth_date, sex, household_id,
idp_status, idp_status_since, idp_certificate_number, origin_settlement_code, registered_address,
date_of_death, version
"""


def get_person(cur: Cursor[Any], fin: str) -> dict[str, Any] | None:
    cur.execute(f"SELECT {PERSON_COLUMNS} FROM rm_persons WHERE fin = %s", (fin.strip().upper(),))
    row = cur.fetchone()
    return dict(row) if row else None


def _like_prefix(text: str) -> str:
    escaped = fold(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _person_filters(
    name_prefix: str | None = None,
    origin_settlement: str | None = None,
    origin_district: str | None = None,
    idp_status: str | None = None,
    districts: list[str] | None = None,
) -> tuple[str, list[Any]]:
    clauses: list[str] = ["true"]
    params: list[Any] = []
    if districts is not None:
        clauses.append("split_part(origin_settlement_code, '-', 1) = ANY(%s)")
        params.append(districts)
    if name_prefix:
        clauses.append('search_name COLLATE "C" LIKE %s')
        params.append(_like_prefix(name_prefix))
    if origin_settlement:
        clauses.append("origin_settlement_code = %s")
        params.append(origin_settlement)
    if origin_district:
        clauses.append("split_part(origin_settlement_code, '-', 1) = %s")
        params.append(origin_district)
    if idp_status:
        clauses.append("idp_status = %s")
        params.append(idp_status)
    return " AND ".join(clauses), params


def find_persons(
    cur: Cursor[Any],
    *,
    limit: int = 50,
    offset: int = 0,
    **filters: Any,
) -> list[dict[str, Any]]:
    """Persons by name prefix (last name first, Azerbaijani-aware, case-insensitive), origin and
    IDP status (``name_prefix``, ``origin_settlement``, ``origin_district``, ``idp_status``),
    ordered by name; paginated; only those originating in ``districts`` when given (a caller's
    scope)."""
    where, params = _person_filters(**filters)
    cur.execute(
        f"SELECT {PERSON_COLUMNS} FROM rm_persons WHERE {where} "
        'ORDER BY search_name COLLATE "C", fin LIMIT %s OFFSET %s',
        [*params, limit, offset],
    )
    return [dict(r) for r in cur.fetchall()]


def count_persons(cur: Cursor[Any], **filters: Any) -> int:
    """How many persons :func:`find_persons` finds with the same filters, on every page."""
    where, params = _person_filters(**filters)
    cur.execute(f"SELECT count(*) AS n FROM rm_persons WHERE {where}", params)
    row = cur.fetchone()
    return int(row["n"]) if row else 0


def _household_filters(
    fin: str | None = None,
    name_prefix: str | None = None,
    origin_settlement: str | None = None,
    origin_district: str | None = None,
    housing_condition: str | None = None,
    vulnerability: str | None = None,
    survey_status: str | None = None,
    districts: list[str] | None = None,
) -> tuple[str, list[Any]]:
    clauses: list[str] = ["true"]
    params: list[Any] = []
    if districts is not None:
        clauses.append("h.origin_district_code = ANY(%s)")
        params.append(districts)
    if fin:
        clauses.append(
            "h.household_id IN (SELECT household_id FROM rm_household_members WHERE fin = %s)"
        )
        params.append(fin.strip().upper())
    if name_prefix:
        clauses.append(
            "h.household_id IN (SELECT m.household_id FROM rm_household_members m "
            "JOIN rm_persons p USING (person_id) WHERE p.search_name LIKE %s)"
        )
        params.append(_like_prefix(name_prefix))
    if origin_settlement:
        clauses.append("h.origin_settlement_code = %s")
        params.append(origin_settlement)
    if origin_district:
        clauses.append("h.origin_district_code = %s")
        params.append(origin_district)
    if housing_condition:
        clauses.append("h.housing_condition = %s")
        params.append(housing_condition)
    if vulnerability:
        clauses.append("h.vulnerabilities @> ARRAY[%s]")
        params.append(vulnerability)
    if survey_status:
        clauses.append(f"coalesce(({LATEST_SURVEY_STATUS}), 'none') = %s")
        params.append(survey_status)
    return " AND ".join(clauses), params


def find_households(
    cur: Cursor[Any],
    *,
    limit: int = 50,
    offset: int = 0,
    **filters: Any,
) -> list[dict[str, Any]]:
    """Households by a member's FIN or name prefix, origin, housing condition, vulnerability and
    the status of their latest survey (none, started, completed); only those originating in
    ``districts`` when given (a caller's scope)."""
    where, params = _household_filters(**filters)
    cur.execute(
        "SELECT h.household_id, h.head_person_id, p.fin AS head_fin, p.first_name AS head_first_name, "
        "p.last_name AS head_last_name, h.origin_settlement_code, h.housing_condition, h.vulnerabilities, "
        "(SELECT count(*) FROM rm_household_members m WHERE m.household_id = h.household_id) AS member_count, "
        "h.registered_at FROM rm_households h LEFT JOIN rm_persons p ON p.person_id = h.head_person_id "
        f"WHERE {where} ORDER BY h.registered_at, h.household_id LIMIT %s OFFSET %s",
        [*params, limit, offset],
    )
    return [dict(r) for r in cur.fetchall()]


def count_households(cur: Cursor[Any], **filters: Any) -> int:
    """How many households :func:`find_households` finds with the same filters."""
    where, params = _household_filters(**filters)
    cur.execute(f"SELECT count(*) AS n FROM rm_households h WHERE {where}", params)
    row = cur.fetchone()
    return int(row["n"]) if row else 0


def get_status_reference(cur: Cursor[Any], verification_code: str) -> dict[str, Any] | None:
    cur.execute(
        "SELECT r.verification_code, r.fin, r.household_id, r.status, r.certificate_number, r.issued_at, "
        "p.idp_status AS current_status FROM rm_status_references r "
        "JOIN rm_persons p USING (person_id) WHERE r.verification_code = %s",
        (verification_code.strip().upper(),),
    )
    row = cur.fetchone()
    return dict(row) if row else None


def survey_statistics(
    cur: Cursor[Any], code: str, by: str, districts: list[str] | None = None
) -> list[dict[str, Any]]:
    """Per origin settlement or district, over each household's latest completed response to the
    questionnaire: intention to return, top obstacles, employment needs (of the households
    originating in ``districts`` when given)."""
    group = "h.origin_settlement_code" if by == "settlement" else "h.origin_district_code"
    cur.execute(
        f"""
        WITH latest AS (
            SELECT DISTINCT ON (r.household_id) r.household_id, r.response_id
            FROM rm_survey_responses r
            WHERE r.questionnaire_code = %s AND r.status = 'completed'
            ORDER BY r.household_id, r.completed_at DESC
        ), answers AS (
            SELECT {group} AS origin, l.household_id, a.question_id, a.value
            FROM latest l JOIN rm_households h USING (household_id)
            JOIN rm_survey_answers a ON a.response_id = l.response_id
            WHERE %s::text[] IS NULL OR h.origin_district_code = ANY(%s)
        )
        SELECT origin,
               count(DISTINCT household_id) AS households,
               (SELECT jsonb_object_agg(v, n) FROM (
                    SELECT value #>> '{{}}' AS v, count(*) AS n FROM answers x
                    WHERE x.origin = o.origin AND question_id = 'intention' GROUP BY 1) i) AS intention,
               (SELECT jsonb_agg(jsonb_build_object('obstacle', v, 'households', n) ORDER BY n DESC, v) FROM (
                    SELECT jsonb_array_elements_text(value) AS v, count(*) AS n FROM answers x
                    WHERE x.origin = o.origin AND question_id = 'obstacles' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5) t)
                   AS top_obstacles,
               (SELECT count(*) FROM answers x WHERE x.origin = o.origin
                    AND question_id = 'employment_needed' AND value = '"yes"') AS households_needing_jobs,
               (SELECT coalesce(sum((value #>> '{{}}')::numeric), 0) FROM answers x WHERE x.origin = o.origin
                    AND question_id = 'employment_count') AS persons_needing_jobs
        FROM (SELECT DISTINCT origin FROM answers) o JOIN answers USING (origin)
        GROUP BY origin ORDER BY origin
        """,
        (code, districts, districts),
    )
    return [dict(r) for r in cur.fetchall()]


def get_questionnaire(cur: Cursor[Any], code: str, version: int) -> dict[str, Any] | None:
    cur.execute("SELECT * FROM rm_questionnaires WHERE code = %s AND version = %s", (code, version))
    row = cur.fetchone()
    return dict(row) if row is not None else None
