"""The households view: one row per case, its members, and the people in it.

Each apply function is idempotent: it writes the state the event describes, guarded by the
aggregate version, so applying an event twice leaves the same rows.

Most of the log is written a run of events at a time, in one statement per run (the survey
events; the registrations of households and people; IDP status grants, housing conditions and
verified circumstances: nine events in ten), the others one at a time. Kept whole: both kinds
write the same rows under the same version guards, and property tests compare them; keeping
them side by side keeps those guards in step. The next split, when it grows, is the people's
handlers into their own module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from importlib.resources import files
from typing import Any

from psycopg import Cursor, sql
from psycopg.types.json import Jsonb

from domain.text import fold
from projections.runner import BatchHandler, Handler

NAME = "households"
DDL = files("projections").joinpath("households.sql").read_text(encoding="utf-8")

# Registrations and the changes below are written a run of events at a time, in one statement
# (one event is a run of one): of an aggregate's events in the run, the one of the highest
# version is written, under the version guard, which is what applying them in turn leaves.

REGISTRATIONS_AT_ONCE = """
WITH registered AS (
    SELECT DISTINCT ON (aggregate_id) * FROM jsonb_to_recordset(%(households)s::jsonb)
        AS h(aggregate_id uuid, aggregate_version bigint, head_person_id uuid,
             origin_settlement_code text, current_address text, contact_phone text,
             occurred_at timestamptz, actor_id text)
    ORDER BY aggregate_id, aggregate_version DESC
), applied AS (
    INSERT INTO rm_households (household_id, head_person_id, origin_settlement_code,
                               origin_district_code, current_address, contact_phone,
                               registered_at, registered_by, version, updated_at)
    SELECT aggregate_id, head_person_id, origin_settlement_code,
           split_part(origin_settlement_code, '-', 1), current_address, contact_phone,
           occurred_at, actor_id, aggregate_version, occurred_at
    FROM registered
    ON CONFLICT (household_id) DO UPDATE SET
        head_person_id = excluded.head_person_id,
        origin_settlement_code = excluded.origin_settlement_code,
        origin_district_code = excluded.origin_district_code,
        current_address = excluded.current_address,
        contact_phone = excluded.contact_phone,
        version = excluded.version,
        updated_at = excluded.updated_at
    WHERE rm_households.version < excluded.version
    RETURNING household_id, version
)
INSERT INTO rm_household_members (household_id, person_id, fin, relationship, position)
SELECT DISTINCT ON (m.household_id, m.person_id) m.household_id, m.person_id, m.fin,
       m.relationship, m.position
FROM jsonb_to_recordset(%(members)s::jsonb)
    AS m(household_id uuid, version bigint, person_id uuid, fin text, relationship text,
         position int)
JOIN applied a ON a.household_id = m.household_id AND a.version = m.version
ORDER BY m.household_id, m.person_id
ON CONFLICT (household_id, person_id) DO UPDATE SET
    fin = excluded.fin, relationship = excluded.relationship, position = excluded.position
"""

PERSON_COLUMNS = {  # rm_persons column (the event field of that name): its type
    "fin": "text",
    "first_name": "text",
    "last_name": "text",
    "patronymic": "text",
    "birth_date": "date",
    "sex": "text",
    "household_id": "uuid",
    "idp_certificate_number": "text",
    "origin_settlement_code": "text",
    "registered_address": "text",
    "search_name": "text",
}
PERSONS_AT_ONCE = (
    f"INSERT INTO rm_persons (person_id, {', '.join(PERSON_COLUMNS)}, version) "
    f"SELECT DISTINCT ON (aggregate_id) aggregate_id, {', '.join(PERSON_COLUMNS)}, "
    "aggregate_version FROM jsonb_to_recordset(%s::jsonb) AS p(aggregate_id uuid, "
    f"{', '.join(f'{c} {t}' for c, t in PERSON_COLUMNS.items())}, aggregate_version bigint) "
    "ORDER BY aggregate_id, aggregate_version DESC "
    "ON CONFLICT (person_id) DO UPDATE SET "
    f"{', '.join(f'{c} = excluded.{c}' for c in PERSON_COLUMNS)}, version = excluded.version "
    "WHERE rm_persons.version < excluded.version"
)

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


def _among(column: str, field: str) -> str:
    """The condition that ``column`` is one of the run's ``field`` values (a run's rows are the
    parameter ``rows``). Joined by it, a table is read by its key however large the planner
    takes the run to be: joined to the run's rows alone, a table it thinks small enough is read
    whole (a hash join), which in a rebuild, while the tables grow, is most of the time."""
    return (
        f"{column} = ANY(ARRAY(SELECT (k->>'{field}')::uuid "
        "FROM jsonb_array_elements(%(rows)s::jsonb) k))"
    )


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


@dataclass(frozen=True)
class GuardedChange:
    """A run of events that set columns of their aggregate's row under the version guard, in
    one statement. ``sets`` gives each column's value: the event field of that name, or an SQL
    literal in quotes; ``types`` the fields' SQL types."""

    table: str
    sets: Mapping[str, str]
    types: Mapping[str, str]

    @cached_property
    def _at_once(self) -> str:
        key, always = _GUARDED[self.table]
        columns = {
            "aggregate_id": "uuid",
            "aggregate_version": "bigint",
            "occurred_at": "timestamptz",
            **self.types,
        }
        sets = "".join(
            f", {column} = {value if value.startswith(_LITERAL) else 'c.' + value}"
            for column, value in self.sets.items()
        )
        return (
            f"UPDATE {self.table} t SET version = c.aggregate_version"
            f"{always.replace('%(occurred_at)s', 'c.occurred_at')}{sets} "
            "FROM (SELECT DISTINCT ON (aggregate_id) * FROM jsonb_to_recordset(%(rows)s::jsonb) AS c("
            f"{', '.join(f'{n} {t}' for n, t in columns.items())}) "
            "ORDER BY aggregate_id, aggregate_version DESC) c "
            f"WHERE t.{key} = c.aggregate_id AND t.version < c.aggregate_version "
            f"AND {_among(f't.{key}', 'aggregate_id')}"
        )

    def __call__(self, cur: Cursor[Any], events: list[dict[str, Any]]) -> None:
        """Every event of a run sets the same columns, so of an aggregate's events the one of
        the highest version decides (the guard lets it through whenever it lets any through)."""
        fields = ("aggregate_id", "aggregate_version", "occurred_at", *self.types)
        rows = [{n: e[n] for n in fields} for e in events]
        cur.execute(self._at_once, {"rows": json.dumps(rows, default=_iso)})


_LITERAL = "'"


def _then(table: str, statement: str) -> str:
    """``statement`` run only when the guard moved the row: it selects ``FROM bumped``."""
    return f"WITH bumped AS ({_guarded_update(table)} RETURNING 1) {statement}"


def _bump(cur: Cursor[Any], e: dict[str, Any]) -> bool:
    return _advance(cur, e, "rm_households")


def _bump_person(cur: Cursor[Any], e: dict[str, Any]) -> bool:
    return _advance(cur, e, "rm_persons")


def households_registered(cur: Cursor[Any], events: list[dict[str, Any]]) -> None:
    """A run of registrations: each household's row, and its members when the row was
    written (a registration applied before leaves the members as later events left them)."""
    households = [{n: e[n] for n in _REGISTRATION} for e in events]
    members = [
        {
            "household_id": e["aggregate_id"],
            "version": e["aggregate_version"],
            "person_id": m["person_id"],
            "fin": m["fin"],
            "relationship": m["relationship"],
            "position": i,
        }
        for e in events
        for i, m in enumerate(e["members"])
    ]
    cur.execute(
        REGISTRATIONS_AT_ONCE,
        {
            "households": json.dumps(households, default=_iso),
            "members": json.dumps(members),
        },
    )


_REGISTRATION = (
    "aggregate_id",
    "aggregate_version",
    "head_person_id",
    "origin_settlement_code",
    "current_address",
    "contact_phone",
    "occurred_at",
    "actor_id",
)


def persons_registered(cur: Cursor[Any], events: list[dict[str, Any]]) -> None:
    """A run of registrations of people, with the name they are searched by."""
    rows = [
        {
            "idp_certificate_number": None,
            "origin_settlement_code": None,
            "registered_address": None,
            **{n: e[n] for n in ("aggregate_id", "aggregate_version", *PERSON_COLUMNS) if n in e},
            "search_name": search_name(e["first_name"], e["last_name"], e["patronymic"]),
        }
        for e in events
    ]
    cur.execute(PERSONS_AT_ONCE, (json.dumps(rows, default=_iso),))


def _iso(value: date) -> str:
    """Dates and times in a run's JSON rows (uuids arrive as text)."""
    return value.isoformat()


def one(run: BatchHandler) -> Handler:
    """A batch handler as the handler of one event: a run of one."""
    return lambda cur, e: run(cur, [e])


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


HOUSING_CONDITION_RECORDED = GuardedChange(
    "rm_households", {"housing_condition": "condition"}, {"condition": "text"}
)
CIRCUMSTANCES_VERIFIED = GuardedChange(
    "rm_households",
    {
        "living_at_registered_address": "living_at_registered_address",
        "private_housing_after_displacement": "private_housing_after_displacement",
        "sham_marriage_or_divorce": "sham_marriage_or_divorce",
        "circumstances_verified_on": "verified_on",
        "circumstances_document": "document_reference",
    },
    {
        "living_at_registered_address": "boolean",
        "private_housing_after_displacement": "boolean",
        "sham_marriage_or_divorce": "boolean",
        "verified_on": "date",
        "document_reference": "text",
    },
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


IDP_STATUS_GRANTED = GuardedChange(
    "rm_persons",
    {
        "idp_status": "'active'",
        "idp_status_since": "effective_date",
        "idp_certificate_number": "certificate_number",
    },
    {"effective_date": "date", "certificate_number": "text"},
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


ANSWERS_AT_ONCE = f"""
WITH answered AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
        AS a(response_id uuid, question_id text, value text, answered_at timestamptz,
             version bigint, after bigint)
), applied AS (
    SELECT a.* FROM answered a JOIN rm_survey_responses r USING (response_id)
    WHERE a.version > r.version AND a.version > a.after
        AND {_among("r.response_id", "response_id")}
), bumped AS (
    UPDATE rm_survey_responses r SET version = m.version
    FROM (SELECT response_id, max(version) AS version FROM applied GROUP BY response_id) m
    WHERE r.response_id = m.response_id AND {_among("r.response_id", "response_id")}
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
    cur.execute(ANSWERS_AT_ONCE, {"rows": json.dumps(rows)})


COMPLETIONS_AT_ONCE = f"""
UPDATE rm_survey_responses r SET version = c.version, status = 'completed',
    completed_at = c.completed_at
FROM (SELECT DISTINCT ON (response_id) * FROM jsonb_to_recordset(%(rows)s::jsonb)
          AS c(response_id uuid, version bigint, completed_at timestamptz)
      ORDER BY response_id, version DESC) c
WHERE r.response_id = c.response_id AND r.version < c.version
    AND {_among("r.response_id", "response_id")}
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
    cur.execute(COMPLETIONS_AT_ONCE, {"rows": json.dumps(rows)})


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
    "reintegration.registry.HouseholdRegistered": one(households_registered),
    "reintegration.registry.PersonRegistered": one(persons_registered),
    "reintegration.registry.HouseholdMemberAdded": member_added,
    "reintegration.registry.HouseholdMemberRemoved": member_removed,
    "reintegration.registry.HouseholdHeadChanged": head_changed,
    "reintegration.registry.HouseholdMembersSplitOff": members_split_off,
    "reintegration.registry.HousingConditionRecorded": one(HOUSING_CONDITION_RECORDED),
    "reintegration.registry.VulnerabilityRecorded": vulnerability_recorded,
    "reintegration.registry.HouseholdCircumstancesVerified": one(CIRCUMSTANCES_VERIFIED),
    "reintegration.registry.VulnerabilityCleared": vulnerability_cleared,
    "reintegration.registry.PersonDetailCorrected": detail_corrected,
    "reintegration.registry.IdpStatusGranted": one(IDP_STATUS_GRANTED),
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
BATCH_HANDLERS: dict[str, BatchHandler] = {
    "reintegration.registry.HouseholdRegistered": households_registered,
    "reintegration.registry.PersonRegistered": persons_registered,
    "reintegration.registry.IdpStatusGranted": IDP_STATUS_GRANTED,
    "reintegration.registry.HousingConditionRecorded": HOUSING_CONDITION_RECORDED,
    "reintegration.registry.HouseholdCircumstancesVerified": CIRCUMSTANCES_VERIFIED,
    "reintegration.surveys.SurveyStarted": surveys_started,
    "reintegration.surveys.SurveyQuestionAnswered": questions_answered,
    "reintegration.surveys.SurveyCompleted": surveys_completed,
}
