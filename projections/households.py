"""The households view: one row per case, its members, and the people in it.

Each apply function is idempotent: it writes the state the event describes, guarded by the
aggregate version, so applying an event twice leaves the same rows.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from psycopg import Cursor

NAME = "households"
DDL = files("projections").joinpath("households.sql").read_text(encoding="utf-8")

UPSERT_HOUSEHOLD = """
INSERT INTO rm_households (household_id, head_person_id, origin_settlement_code, current_address,
                           contact_phone, registered_at, registered_by, version, updated_at)
VALUES (%(aggregate_id)s, %(head_person_id)s, %(origin_settlement_code)s, %(current_address)s,
        %(contact_phone)s, %(occurred_at)s, %(actor_id)s, %(aggregate_version)s, %(occurred_at)s)
ON CONFLICT (household_id) DO UPDATE SET
    head_person_id = excluded.head_person_id,
    origin_settlement_code = excluded.origin_settlement_code,
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
                        household_id, version)
VALUES (%(aggregate_id)s, %(fin)s, %(first_name)s, %(last_name)s, %(patronymic)s, %(birth_date)s,
        %(sex)s, %(household_id)s, %(aggregate_version)s)
ON CONFLICT (person_id) DO UPDATE SET
    fin = excluded.fin, first_name = excluded.first_name, last_name = excluded.last_name,
    patronymic = excluded.patronymic, birth_date = excluded.birth_date, sex = excluded.sex,
    household_id = excluded.household_id, version = excluded.version
WHERE rm_persons.version < excluded.version
"""

SELECT_HOUSEHOLD = """
SELECT household_id, head_person_id, origin_settlement_code, current_address, contact_phone,
       registered_at,
       registered_by, version, updated_at
FROM rm_households WHERE household_id = %s
"""

SELECT_MEMBERS = """
SELECT m.person_id, m.fin, m.relationship, p.first_name, p.last_name, p.patronymic,
       p.birth_date, p.sex
FROM rm_household_members m LEFT JOIN rm_persons p ON p.person_id = m.person_id
WHERE m.household_id = %s ORDER BY m.position
"""


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
    cur.execute(UPSERT_PERSON, e)


HANDLERS = {
    "reintegration.registry.HouseholdRegistered": household_registered,
    "reintegration.registry.PersonRegistered": person_registered,
}


def get_household(cur: Cursor[Any], household_id: Any) -> dict[str, Any] | None:
    """The household and its members as the API returns them, or None when unknown."""
    cur.execute(SELECT_HOUSEHOLD, (household_id,))
    row = cur.fetchone()
    if row is None:
        return None
    household = dict(row)
    cur.execute(SELECT_MEMBERS, (household_id,))
    household["members"] = [dict(m) for m in cur.fetchall()]
    return household
