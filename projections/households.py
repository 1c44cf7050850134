"""The households view: one row per case, its members, and the people in it.

Each apply function is idempotent: it writes the state the event describes, guarded by the
aggregate version, so applying an event twice leaves the same rows.

Kept whole: the one-at-a-time handlers and the batch handlers (runs of survey events in one
statement) write the same rows under the same version guards, and a property test compares
them; keeping them side by side keeps those guards in step. The next split, when it grows, is
the people's handlers into their own module.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

from psycopg import Cursor, sql
from psycopg.types.json import Jsonb

from domain.text import fold

NAME = "households"
DDL = files("projections").joinpath("households.sql").read_text(encoding="utf-8")

UPSERT_HOUSEHOLD = """
INSERT INTO rm_households (household_id, head_person_id, origin_settlement_code,
                           origin_district_code, current_address, contact_phone, registered_at,
                           registered_by, version, updated_at)
VALUES (%(aggregate_id)s, %(head_person_id)s, %(origin_settlement_code)s,
        split_part(%(origin_settlement_code)s, '-', 1), %(current_address)s, %(contact_phone)s,
        %(occurred_at)s, %(actor_id)s, %(aggregate_version)s, %(occurred_at)s)
ON CONFLICT (household_id) DO UPDATE SET
    head_person_id = excluded.head_person_id,
    origin_settlement_code = excluded.origin_settlement_code,
    origin_district_code = excluded.origin_district_code,
    current_address = excluded.current_address,
    contact_phone = excluded.contact_phone,
    version = excluded.version,
    updated_at = excluded.updated_at
WHERE rm_households.version < excluded.version
"""

UPSERT_MEMBER = """
INSERT INTO rm_household_members (household_id, person_id, fin, relationship, position)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (household_id, person_id) DO UPDATE SET
    fin = excluded.fin, relationship = excluded.relationship, position = excluded.position
"""

UPSERT_PERSON = """
INSERT INTO rm_persons (person_id, fin, first_name, last_name, patronymic, birth_date, sex,
                        household_id, idp_certificate_number, origin_settlement_code,
                        registered_address, search_name, version)
VALUES (%(aggregate_id)s, %(fin)s, %(first_name)s, %(last_name)s, %(patronymic)s, %(birth_date)s,
        %(sex)s, %(household_id)s, %(idp_certificate_number)s, %(origin_settlement_code)s,
        %(registered_address)s, %(search_name)s, %(aggregate_version)s)
ON CONFLICT (person_id) DO UPDATE SET
    fin = excluded.fin, first_name = excluded.first_name, last_name = excluded.last_name,
    patronymic = excluded.patronymic, birth_date = excluded.birth_date, sex = excluded.sex,
    household_id = excluded.household_id, idp_certificate_number = excluded.idp_certificate_number,
    origin_settlement_code = excluded.origin_settlement_code,
    registered_address = excluded.registered_address, search_name = excluded.search_name,
    version = excluded.version
WHERE rm_persons.version < excluded.version
"""

SELECT_HOUSEHOLD = """
SELECT household_id, head_person_id, origin_settlement_code, origin_district_code, current_address,
       contact_phone, housing_condition, vulnerabilities, living_at_registered_address,
       private_housing_after_displacement, sham_marriage_or_divorce, circumstances_verified_on,
       circumstances_document,
       (SELECT from_household_id FROM rm_household_splits s WHERE s.new_household_id = household_id)
           AS split_from,
       registered_at,
       registered_by, version, updated_at
FROM rm_households WHERE household_id = %s
"""

SELECT_MEMBERS = """
SELECT m.person_id, m.fin, m.relationship, p.first_name, p.last_name, p.patronymic,
       p.birth_date, p.sex, p.idp_status, p.idp_certificate_number, p.date_of_death
FROM rm_household_members m LEFT JOIN rm_persons p ON p.person_id = m.person_id
WHERE m.household_id = %s ORDER BY m.position
"""


def search_name(first: str | None, last: str | None, patronymic: str | None) -> str:
    """Searchable by last name, then first name: "last first patronymic", folded."""
    return fold(" ".join(p for p in (last, first, patronymic) if p))


# Handlers run in pipeline mode (the runner sends a batch's statements without waiting for
# each result), so a change and its idempotence guard are one statement wherever they can be;
# a handler that needs a result fetches it (``RETURNING``), which waits for that statement only.

_GUARD = "WHERE {key} = %(aggregate_id)s AND version < %(aggregate_version)s"
_GUARDED = {
    "rm_households": ("household_id", ", updated_at = %(occurred_at)s"),
    "rm_persons": ("person_id", ""),
    "rm_survey_responses": ("response_id", ""),
}


def _guarded_update(table: str, sets: str = "") -> str:
    """Move the row to the event's aggregate version and make the event's change, in one
    statement; an event at or below the row's version (applied before) changes nothing."""
    key, always = _GUARDED[table]
    return f"UPDATE {table} SET version = %(aggregate_version)s{always}{sets} " + _GUARD.format(
        key=key
    )


def _advance(cur: Cursor[Any], e: dict[str, Any], table: str) -> bool:
    """The guard alone, for a change that is more than one statement: False when this event
    (or a later one) was applied before, and the handler must do nothing."""
    cur.execute(_guarded_update(table) + " RETURNING 1", e)
    return cur.fetchone() is not None


def _update(cur: Cursor[Any], e: dict[str, Any], table: str, sets: str) -> None:
    cur.execute(_guarded_update(table, sets), e)


def _then(table: str, statement: str) -> str:
    """``statement`` run only when the guard moved the row: it selects ``FROM bumped``."""
    return f"WITH bumped AS ({_guarded_update(table)} RETURNING 1) {statement}"


def _bump(cur: Cursor[Any], e: dict[str, Any]) -> bool:
    return _advance(cur, e, "rm_households")


def _bump_person(cur: Cursor[Any], e: dict[str, Any]) -> bool:
    return _advance(cur, e, "rm_persons")


def household_registered(cur: Cursor[Any], e: dict[str, Any]) -> None:
    cur.execute(UPSERT_HOUSEHOLD, e)
    cur.executemany(
        UPSERT_MEMBER,
        [
            (e["aggregate_id"], m["person_id"], m["fin"], m["relationship"], i)
            for i, m in enumerate(e["members"])
        ],
    )


def person_registered(cur: Cursor[Any], e: dict[str, Any]) -> None:
    cur.execute(
        UPSERT_PERSON,
        {
            "idp_certificate_number": None,
            "origin_settlement_code": None,
            "registered_address": None,
            **e,
            "search_name": search_name(e["first_name"], e["last_name"], e["patronymic"]),
        },
    )


def member_added(cur: Cursor[Any], e: dict[str, Any]) -> None:
    if _bump(cur, e):
        cur.execute(
            "INSERT INTO rm_household_members (household_id, person_id, fin, relationship, position) "
            "SELECT %s, %s, %s, %s, coalesce(max(position) + 1, 0) FROM rm_household_members "
            "WHERE household_id = %s ON CONFLICT (household_id, person_id) DO NOTHING",
            (e["aggregate_id"], e["person_id"], e["fin"], e["relationship"], e["aggregate_id"]),
        )


def member_removed(cur: Cursor[Any], e: dict[str, Any]) -> None:
    if _bump(cur, e):
        _leave(cur, e["aggregate_id"], [e["person_id"]])


def _leave(cur: Cursor[Any], household_id: Any, person_ids: list[Any]) -> None:
    cur.execute(
        "DELETE FROM rm_household_members WHERE household_id = %s AND person_id = ANY(%s)",
        (household_id, person_ids),
    )
    cur.execute(
        "DELETE FROM rm_household_vulnerabilities WHERE household_id = %s AND person_id = ANY(%s)",
        (household_id, person_ids),
    )
    _refresh_vulnerabilities(cur, household_id)


def head_changed(cur: Cursor[Any], e: dict[str, Any]) -> None:
    if _bump(cur, e):
        cur.execute(
            "UPDATE rm_households SET head_person_id = %(head_person_id)s WHERE household_id = %(aggregate_id)s",
            e,
        )
        cur.execute(
            "UPDATE rm_household_members SET relationship = CASE WHEN person_id = %(head_person_id)s "
            "THEN 'head' ELSE %(former_head_relationship)s END WHERE household_id = %(aggregate_id)s "
            "AND person_id IN (%(head_person_id)s, %(former_head_person_id)s)",
            e,
        )


def members_split_off(cur: Cursor[Any], e: dict[str, Any]) -> None:
    if _bump(cur, e):
        _leave(cur, e["aggregate_id"], e["person_ids"])
        # Its own table: the new household's registration may arrive first or later (other key).
        cur.execute(
            "INSERT INTO rm_household_splits VALUES (%(new_household_id)s, %(aggregate_id)s, "
            "%(person_ids)s, %(reason)s, %(occurred_at)s) ON CONFLICT DO NOTHING",
            e,
        )


def housing_condition_recorded(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _update(cur, e, "rm_households", ", housing_condition = %(condition)s")


def circumstances_verified(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _update(
        cur,
        e,
        "rm_households",
        ", living_at_registered_address = %(living_at_registered_address)s, "
        "private_housing_after_displacement = %(private_housing_after_displacement)s, "
        "sham_marriage_or_divorce = %(sham_marriage_or_divorce)s, "
        "circumstances_verified_on = %(verified_on)s, "
        "circumstances_document = %(document_reference)s",
    )


def vulnerability_recorded(cur: Cursor[Any], e: dict[str, Any]) -> None:
    cur.execute(
        _then(
            "rm_households",
            "INSERT INTO rm_household_vulnerabilities SELECT %(aggregate_id)s::uuid, "
            "%(vulnerability)s::text, %(person_id)s::uuid, %(note)s::text, "
            "%(occurred_at)s::timestamptz FROM bumped ON CONFLICT DO NOTHING",
        ),
        e,
    )
    _refresh_vulnerabilities(cur, e["aggregate_id"])  # idempotent: recomputed from the rows


def vulnerability_cleared(cur: Cursor[Any], e: dict[str, Any]) -> None:
    cur.execute(
        _then(
            "rm_households",
            "DELETE FROM rm_household_vulnerabilities WHERE EXISTS (SELECT FROM bumped) "
            "AND household_id = %(aggregate_id)s AND vulnerability = %(vulnerability)s "
            "AND person_id IS NOT DISTINCT FROM %(person_id)s",
        ),
        e,
    )
    _refresh_vulnerabilities(cur, e["aggregate_id"])


def _refresh_vulnerabilities(cur: Cursor[Any], household_id: Any) -> None:
    cur.execute(
        "UPDATE rm_households SET vulnerabilities = coalesce((SELECT array_agg(DISTINCT vulnerability "
        "ORDER BY vulnerability) FROM rm_household_vulnerabilities WHERE household_id = %s), '{}') "
        "WHERE household_id = %s",
        (household_id, household_id),
    )


CORRECTABLE = {
    "first_name",
    "last_name",
    "patronymic",
    "birth_date",
    "sex",
    "idp_certificate_number",
    "registered_address",
}


def detail_corrected(cur: Cursor[Any], e: dict[str, Any]) -> None:
    if e["field"] not in CORRECTABLE:
        raise ValueError(f"unknown corrected field {e['field']!r}")
    if _bump_person(cur, e):
        column = sql.Identifier(e["field"])
        cur.execute(
            sql.SQL("UPDATE rm_persons SET {} = %s WHERE person_id = %s").format(column),
            (e["new_value"], e["aggregate_id"]),
        )
        cur.execute(
            "UPDATE rm_persons SET search_name = %s WHERE person_id = %s",
            (_search_name_of(cur, e["aggregate_id"]), e["aggregate_id"]),
        )


def _search_name_of(cur: Cursor[Any], person_id: Any) -> str:
    cur.execute(
        "SELECT first_name, last_name, patronymic FROM rm_persons WHERE person_id = %s",
        (person_id,),
    )
    row = cur.fetchone()
    return search_name(row["first_name"], row["last_name"], row["patronymic"]) if row else ""


def idp_status_granted(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _update(
        cur,
        e,
        "rm_persons",
        ", idp_status = 'active', idp_status_since = %(effective_date)s, "
        "idp_certificate_number = %(certificate_number)s",
    )


def idp_status_ended(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _update(cur, e, "rm_persons", ", idp_status = 'ended'")


def death_recorded(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _update(cur, e, "rm_persons", ", date_of_death = %(date_of_death)s")


def moved_to_household(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _update(cur, e, "rm_persons", ", household_id = %(household_id)s")


def status_reference_issued(cur: Cursor[Any], e: dict[str, Any]) -> None:
    if _bump_person(cur, e):
        cur.execute(
            "INSERT INTO rm_status_references (verification_code, person_id, fin, household_id, status, "
            "certificate_number, issued_at, issued_by) SELECT %(verification_code)s, person_id, fin, "
            "%(household_id)s, %(status)s, %(certificate_number)s, %(occurred_at)s, %(actor_id)s "
            "FROM rm_persons WHERE person_id = %(aggregate_id)s ON CONFLICT DO NOTHING",
            e,
        )


def questionnaire_published(cur: Cursor[Any], e: dict[str, Any]) -> None:
    cur.execute(
        "INSERT INTO rm_questionnaires VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (
            e["aggregate_id"],
            e["code"],
            e["questionnaire_version"],
            e["title_az"],
            e["title_en"],
            Jsonb(e["questions"]),
            e["occurred_at"],
            e["actor_id"],
        ),
    )


def survey_started(cur: Cursor[Any], e: dict[str, Any]) -> None:
    cur.execute(
        "INSERT INTO rm_survey_responses VALUES (%(aggregate_id)s, %(household_id)s, %(questionnaire_code)s, "
        "%(questionnaire_version)s, 'started', %(occurred_at)s, NULL, %(aggregate_version)s) ON CONFLICT DO NOTHING",
        e,
    )


STARTS_AT_ONCE = """
INSERT INTO rm_survey_responses
SELECT DISTINCT ON (response_id) response_id, household_id, questionnaire_code,
       questionnaire_version, 'started', started_at, NULL, version
FROM jsonb_to_recordset(%s::jsonb) AS s(n int, response_id uuid, household_id uuid,
     questionnaire_code text, questionnaire_version int, started_at timestamptz, version bigint)
ORDER BY response_id, n
ON CONFLICT DO NOTHING
"""


def surveys_started(cur: Cursor[Any], events: list[dict[str, Any]]) -> None:
    """:func:`survey_started` for a run of events in one statement (the first of a response
    inserts its row, as one at a time)."""
    rows = [
        {
            "n": n,
            "response_id": str(e["aggregate_id"]),
            "household_id": str(e["household_id"]),
            "questionnaire_code": e["questionnaire_code"],
            "questionnaire_version": e["questionnaire_version"],
            "started_at": e["occurred_at"].isoformat(),
            "version": e["aggregate_version"],
        }
        for n, e in enumerate(events)
    ]
    cur.execute(STARTS_AT_ONCE, (json.dumps(rows),))


def question_answered(cur: Cursor[Any], e: dict[str, Any]) -> None:
    cur.execute(
        _then(
            "rm_survey_responses",
            "INSERT INTO rm_survey_answers SELECT %(aggregate_id)s::uuid, %(question_id)s::text, "
            "%(answer)s, %(occurred_at)s::timestamptz FROM bumped ON CONFLICT (response_id, question_id) "
            "DO UPDATE SET value = excluded.value, answered_at = excluded.answered_at",
        ),
        {**e, "answer": Jsonb(json.loads(e["value"]))},
    )


ANSWERS_AT_ONCE = """
WITH answered AS (
    SELECT * FROM jsonb_to_recordset(%s::jsonb)
        AS a(response_id uuid, question_id text, value text, answered_at timestamptz,
             version bigint, after bigint)
), applied AS (
    SELECT a.* FROM answered a JOIN rm_survey_responses r USING (response_id)
    WHERE a.version > r.version AND a.version > a.after
), bumped AS (
    UPDATE rm_survey_responses r SET version = m.version
    FROM (SELECT response_id, max(version) AS version FROM applied GROUP BY response_id) m
    WHERE r.response_id = m.response_id
)
INSERT INTO rm_survey_answers (response_id, question_id, value, answered_at)
SELECT DISTINCT ON (response_id, question_id) response_id, question_id, value::jsonb, answered_at
FROM applied ORDER BY response_id, question_id, version DESC
ON CONFLICT (response_id, question_id) DO UPDATE SET value = excluded.value,
    answered_at = excluded.answered_at
"""


def questions_answered(cur: Cursor[Any], events: list[dict[str, Any]]) -> None:
    """:func:`question_answered` for a run of events in one statement. An event applies when
    its version is above both the response's stored version and every version before it in
    the run (``after``): exactly the events the guard lets through one at a time; of those, the
    last answer to each question stays."""
    highest: dict[Any, int] = {}
    rows = []
    for e in events:
        before = highest.get(e["aggregate_id"], 0)
        highest[e["aggregate_id"]] = max(before, e["aggregate_version"])
        rows.append(
            {
                "response_id": str(e["aggregate_id"]),
                "question_id": e["question_id"],
                "value": e["value"],
                "answered_at": e["occurred_at"].isoformat(),
                "version": e["aggregate_version"],
                "after": before,
            }
        )
    cur.execute(ANSWERS_AT_ONCE, (json.dumps(rows),))


COMPLETIONS_AT_ONCE = """
UPDATE rm_survey_responses r SET version = c.version, status = 'completed',
    completed_at = c.completed_at
FROM (SELECT DISTINCT ON (response_id) * FROM jsonb_to_recordset(%s::jsonb)
          AS c(response_id uuid, version bigint, completed_at timestamptz)
      ORDER BY response_id, version DESC) c
WHERE r.response_id = c.response_id AND r.version < c.version
"""


def surveys_completed(cur: Cursor[Any], events: list[dict[str, Any]]) -> None:
    """:func:`survey_completed` for a run of events in one statement: each sets the same
    columns, so of a response's events the one of the highest version decides (the guard
    lets it through when it lets any through)."""
    rows = [
        {
            "response_id": str(e["aggregate_id"]),
            "version": e["aggregate_version"],
            "completed_at": e["occurred_at"].isoformat(),
        }
        for e in events
    ]
    cur.execute(COMPLETIONS_AT_ONCE, (json.dumps(rows),))


def answer_corrected(cur: Cursor[Any], e: dict[str, Any]) -> None:
    cur.execute(
        _then(
            "rm_survey_responses",
            "UPDATE rm_survey_answers SET value = %(answer)s, answered_at = %(occurred_at)s "
            "WHERE EXISTS (SELECT FROM bumped) AND response_id = %(aggregate_id)s "
            "AND question_id = %(question_id)s",
        ),
        {**e, "answer": Jsonb(json.loads(e["new_value"]))},
    )


def survey_completed(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _update(cur, e, "rm_survey_responses", ", status = 'completed', completed_at = %(occurred_at)s")


HANDLERS = {
    "reintegration.registry.HouseholdRegistered": household_registered,
    "reintegration.registry.PersonRegistered": person_registered,
    "reintegration.registry.HouseholdMemberAdded": member_added,
    "reintegration.registry.HouseholdMemberRemoved": member_removed,
    "reintegration.registry.HouseholdHeadChanged": head_changed,
    "reintegration.registry.HouseholdMembersSplitOff": members_split_off,
    "reintegration.registry.HousingConditionRecorded": housing_condition_recorded,
    "reintegration.registry.VulnerabilityRecorded": vulnerability_recorded,
    "reintegration.registry.HouseholdCircumstancesVerified": circumstances_verified,
    "reintegration.registry.VulnerabilityCleared": vulnerability_cleared,
    "reintegration.registry.PersonDetailCorrected": detail_corrected,
    "reintegration.registry.IdpStatusGranted": idp_status_granted,
    "reintegration.registry.IdpStatusEnded": idp_status_ended,
    "reintegration.registry.PersonDeathRecorded": death_recorded,
    "reintegration.registry.PersonMovedToHousehold": moved_to_household,
    "reintegration.registry.IdpStatusReferenceIssued": status_reference_issued,
    "reintegration.surveys.QuestionnairePublished": questionnaire_published,
    "reintegration.surveys.SurveyStarted": survey_started,
    "reintegration.surveys.SurveyQuestionAnswered": question_answered,
    "reintegration.surveys.SurveyAnswerCorrected": answer_corrected,
    "reintegration.surveys.SurveyCompleted": survey_completed,
}
BATCH_HANDLERS = {
    "reintegration.surveys.SurveyStarted": surveys_started,
    "reintegration.surveys.SurveyQuestionAnswered": questions_answered,
    "reintegration.surveys.SurveyCompleted": surveys_completed,
}
