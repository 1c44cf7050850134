"""The Great Return's views: housing units by status per settlement, lottery rounds, the
relocation pipeline, convoys with their families, and returnees' reintegration status.

A unit's status comes from the events of several aggregates: the settlement registers it, and
households' relocations take it (offered, allocated, keys handed over) and give it back
(declined, expired), an offer declined by one household going to the next. Their events are
keyed by different cases, so Kafka delivers them on different partitions in any order. No event
writes the status over another case's: each household's latest word on the unit is kept with
its relocation's version (``rm_unit_holds``), and the unit's status and holder are derived from
those and from its registration, whichever arrived first. Applied in any order that keeps each
case's own, the events leave the unit as the log's order does.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

from psycopg import Cursor
from psycopg.types.json import Jsonb

NAME = "housing"
DDL = files("projections").joinpath("housing.sql").read_text(encoding="utf-8")


def _guarded(table: str, key: str, sets: str) -> str:
    return (
        f"UPDATE {table} SET version = %(aggregate_version)s{sets} "
        f"WHERE {key} = %(aggregate_id)s AND version < %(aggregate_version)s"
    )


def _advance(cur: Cursor[Any], table: str, key: str, e: dict[str, Any], sets: str) -> None:
    """Move the row to the event's version with its change; nothing when applied before. One
    statement whose answer nobody waits for (the runner pipelines a batch's statements)."""
    cur.execute(_guarded(table, key, sets), e)


def _advanced(cur: Cursor[Any], table: str, key: str, e: dict[str, Any], sets: str) -> bool:
    """As ``_advance``, and whether the row moved (False: this event was applied before)."""
    cur.execute(_guarded(table, key, sets) + " RETURNING 1", e)
    return cur.fetchone() is not None


def _settlement(cur: Cursor[Any], e: dict[str, Any], sets: str = "") -> None:
    _advance(cur, "rm_settlements", "settlement_code", {**e, "aggregate_id": e["code"]}, sets)


def _settlement_moved(cur: Cursor[Any], e: dict[str, Any]) -> bool:
    return _advanced(cur, "rm_settlements", "settlement_code", {**e, "aggregate_id": e["code"]}, "")


def _code(cur: Cursor[Any], e: dict[str, Any]) -> dict[str, Any]:
    """Only a settlement's registration carries its code: the others find it by aggregate id."""
    cur.execute(
        "SELECT settlement_code FROM rm_settlement_ids WHERE settlement_id = %s",
        (e["aggregate_id"],),
    )
    row = cur.fetchone()
    return {**e, "code": row["settlement_code"] if row else None}


def settlement_registered(cur: Cursor[Any], e: dict[str, Any]) -> None:
    cur.execute(
        "INSERT INTO rm_settlements (settlement_code, name, version) "
        "VALUES (%(code)s, %(name)s, %(aggregate_version)s) ON CONFLICT DO NOTHING",
        e,
    )
    cur.execute(
        "INSERT INTO rm_settlement_ids (settlement_id, settlement_code) VALUES (%s, %s) "
        "ON CONFLICT DO NOTHING",
        (e["aggregate_id"], e["code"]),
    )


def clearance_certified(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _settlement(
        cur,
        _code(cur, e),
        ", clearance_agency = %(agency)s, clearance_certified_on = %(certified_on)s, "
        "clearance_reference = %(certificate_reference)s",
    )


def readiness_certified(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _settlement(
        cur,
        _code(cur, e),
        ", readiness = ARRAY(SELECT DISTINCT unnest(readiness || %(items)s::text[]) ORDER BY 1)",
    )


def opened(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _settlement(cur, _code(cur, e), ", opened_on = %(opened_on)s")


def unit_registered(cur: Cursor[Any], e: dict[str, Any]) -> None:
    e = _code(cur, e)
    if _settlement_moved(cur, e):
        cur.execute(
            "INSERT INTO rm_housing_units (unit_id, settlement_code, reference, address, rooms, "
            "kind, floor, status, updated_at) VALUES (%(unit_id)s, %(code)s, %(reference)s, "
            "%(address)s, %(rooms)s, %(kind)s, %(floor)s, 'available', %(occurred_at)s) "
            "ON CONFLICT DO NOTHING",
            e,
        )
        cur.execute(DERIVE_UNIT, e)  # households' holds may have arrived before the unit


def lottery_announced(cur: Cursor[Any], e: dict[str, Any]) -> None:
    cur.execute(
        "INSERT INTO rm_allocation_rounds (round_id, settlement_code, round_number, seed_hash, "
        "algorithm_version, entrants, units, rule_set_code, rule_set_version, "
        "offer_deadline_days, announced_at, announced_by, version, participants, "
        "public_randomness) VALUES (%(aggregate_id)s, "
        "%(settlement_code)s, %(round_number)s, %(seed_hash)s, %(algorithm_version)s, "
        "%(entrants_json)s, %(units_json)s, %(rule_set_code)s, %(rule_set_version)s, "
        "%(offer_deadline_days)s, %(occurred_at)s, %(actor_id)s, %(aggregate_version)s, "
        "%(participants_json)s, %(public_json)s) ON CONFLICT DO NOTHING",
        {
            **e,
            "entrants_json": _json(e["entrants"]),
            "units_json": _json(e["units"]),
            "participants_json": _json(e.get("commitments") or []),
            "public_json": _json(e.get("public_randomness")),
        },
    )


def lottery_drawn(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _advance(
        cur,
        "rm_allocation_rounds",
        "round_id",
        {**e, "assignments_json": _json(e["assignments"]), "reserve_json": _json(e["reserve"])},
        ", seed = %(seed)s, assignments = %(assignments_json)s, reserve = %(reserve_json)s, "
        "witnesses = %(witnesses)s, drawn_at = %(occurred_at)s",
    )


def lottery_voided(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _advance(
        cur,
        "rm_allocation_rounds",
        "round_id",
        e,
        ", voided_at = %(occurred_at)s, withheld_by = %(withheld_by)s, void_reason = %(reason)s",
    )


def convoy_scheduled(cur: Cursor[Any], e: dict[str, Any]) -> None:
    cur.execute(
        "INSERT INTO rm_convoys (convoy_id, settlement_code, departs_on, vehicles, household_ids, "
        "scheduled_by) VALUES (%(aggregate_id)s, %(settlement_code)s, %(departs_on)s, "
        "%(vehicles)s, %(household_ids)s, %(actor_id)s) ON CONFLICT DO NOTHING",
        e,
    )


def relocation_opened(cur: Cursor[Any], e: dict[str, Any]) -> None:
    cur.execute(
        "INSERT INTO rm_relocations (household_id, settlement_code, stage, updated_at, version) "
        "VALUES (%(household_id)s, %(settlement_code)s, 'opened', %(occurred_at)s, "
        "%(aggregate_version)s) ON CONFLICT DO NOTHING",
        e,
    )


def _relocation(cur: Cursor[Any], e: dict[str, Any], sets: str) -> None:
    _advance(cur, *_RELOCATION, {**e, "aggregate_id": e["household_id"]}, _STEP + sets)


_RELOCATION = ("rm_relocations", "household_id")
_STEP = ", updated_at = %(occurred_at)s"


HOLD = """
INSERT INTO rm_unit_holds (unit_id, household_id, state, version, updated_at)
VALUES (%(unit_id)s, %(household_id)s, %(state)s, %(aggregate_version)s, %(occurred_at)s)
ON CONFLICT (unit_id, household_id) DO UPDATE
SET state = excluded.state, version = excluded.version, updated_at = excluded.updated_at
WHERE rm_unit_holds.version < excluded.version
"""
# The unit as its holds say: held by the household whose hold, not released, changed last (a
# log has at most one; more only while another household's release is still on its way);
# available when none; changed when the latest fact about it happened.
DERIVE_UNIT = """
WITH holder AS (
    SELECT state, household_id FROM rm_unit_holds
    WHERE unit_id = %(unit_id)s AND state <> 'released'
    ORDER BY updated_at DESC, household_id LIMIT 1
)
UPDATE rm_housing_units SET
    status = coalesce((SELECT state FROM holder), 'available'),
    household_id = (SELECT household_id FROM holder),
    updated_at = greatest(
        updated_at, (SELECT max(updated_at) FROM rm_unit_holds WHERE unit_id = %(unit_id)s)
    )
WHERE unit_id = %(unit_id)s
"""


def _hold(cur: Cursor[Any], e: dict[str, Any], state: str) -> None:
    """Record what this household's relocation now says about the unit (unless it said
    something later already), then derive the unit from every household's latest word."""
    cur.execute(HOLD, {**e, "state": state})
    cur.execute(DERIVE_UNIT, e)


def housing_offered(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _relocation(
        cur,
        e,
        ", stage = 'offered', unit_id = %(unit_id)s, address = %(address)s, "
        "offer_deadline = %(deadline)s",
    )
    _hold(cur, e, "offered")


def offer_accepted(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _relocation(
        cur,
        e,
        ", stage = CASE WHEN consent THEN 'consented' ELSE 'allocated' END, offer_deadline = NULL",
    )
    _hold(cur, e, "allocated")


def offer_closed(cur: Cursor[Any], e: dict[str, Any]) -> None:
    """Declined or expired: the household holds nothing; the unit is free until re-offered."""
    _relocation(cur, e, ", stage = 'opened', unit_id = NULL, address = NULL, offer_deadline = NULL")
    _hold(cur, e, "released")


def consent_given(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _relocation(
        cur,
        e,
        ", consent = true, stage = CASE WHEN stage = 'allocated' THEN 'consented' ELSE stage END",
    )


def consent_withdrawn(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _relocation(
        cur,
        e,
        ", consent = false, convoy_id = NULL, departs_on = NULL, "
        "stage = CASE WHEN unit_id IS NULL THEN 'opened' ELSE 'allocated' END",
    )


def scheduled(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _relocation(
        cur, e, ", stage = 'scheduled', convoy_id = %(convoy_id)s, departs_on = %(departs_on)s"
    )


def departed(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _relocation(cur, e, ", stage = 'departed'")


def arrived(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _relocation(cur, e, ", stage = 'arrived', arrived_on = %(arrived_on)s")


def keys_handed_over(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _relocation(cur, e, ", stage = 'keys_handed_over'")
    _hold(cur, e, "occupied")


def residence_registered(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _relocation(cur, e, ", stage = 'residence_registered', address = %(address)s")


def utility_connected(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _relocation(cur, e, ", utilities = array_append(utilities, %(utility)s)")


def completed(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _relocation(cur, e, ", stage = 'completed', completed_on = %(completed_on)s")


def reintegration_opened(cur: Cursor[Any], e: dict[str, Any]) -> None:
    cur.execute(
        "INSERT INTO rm_reintegration (household_id, settlement_code, version) "
        "VALUES (%(household_id)s, %(settlement_code)s, %(aggregate_version)s) "
        "ON CONFLICT DO NOTHING",
        e,
    )


def _reintegration(cur: Cursor[Any], e: dict[str, Any], sets: str) -> None:
    _advance(
        cur, "rm_reintegration", "household_id", {**e, "aggregate_id": e["household_id"]}, sets
    )


def employment_need(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _reintegration(cur, e, ", persons_seeking_work = %(persons_seeking_work)s")


def employment_provided(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _reintegration(cur, e, ", employed = employed + 1")


def service_enrolled(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _reintegration(
        cur,
        {
            **e,
            "service_json": _json(
                [
                    {
                        "service": e["service"],
                        "institution": e["institution"],
                        "person_fin": e["person_fin"],
                    }
                ]
            ),
        },
        ", services = services || %(service_json)s",
    )


def benefit_changed(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _reintegration(
        cur,
        e,
        ", allowance_azn = %(monthly_amount_azn)s, allowance_terminates_on = %(terminates_on)s",
    )


def durable_solution_assessed(cur: Cursor[Any], e: dict[str, Any]) -> None:
    _reintegration(
        cur,
        {**e, "key": f"{e['framework']}:{e['criterion']}"},
        ", assessments = assessments || jsonb_build_object(%(key)s::text, %(met)s::boolean)",
    )


def _json(value: Any) -> Jsonb:
    return Jsonb(json.loads(json.dumps(value, default=str)))


HANDLERS = {
    "reintegration.housing.SettlementRegistered": settlement_registered,
    "reintegration.housing.SecurityClearanceCertified": clearance_certified,
    "reintegration.housing.InfrastructureReadinessCertified": readiness_certified,
    "reintegration.housing.SettlementOpenedForReturn": opened,
    "reintegration.housing.HousingUnitRegistered": unit_registered,
    "reintegration.housing.LotteryAnnounced": lottery_announced,
    "reintegration.housing.LotteryDrawn": lottery_drawn,
    "reintegration.housing.LotteryVoided": lottery_voided,
    "reintegration.relocation.ConvoyScheduled": convoy_scheduled,
    "reintegration.relocation.RelocationOpened": relocation_opened,
    "reintegration.relocation.HousingOffered": housing_offered,
    "reintegration.relocation.HousingOfferAccepted": offer_accepted,
    "reintegration.relocation.HousingOfferDeclined": offer_closed,
    "reintegration.relocation.HousingOfferExpired": offer_closed,
    "reintegration.relocation.ConsentToReturnGiven": consent_given,
    "reintegration.relocation.ConsentWithdrawn": consent_withdrawn,
    "reintegration.relocation.RelocationScheduled": scheduled,
    "reintegration.relocation.FamilyDeparted": departed,
    "reintegration.relocation.FamilyArrived": arrived,
    "reintegration.relocation.KeysHandedOver": keys_handed_over,
    "reintegration.relocation.ResidenceRegistered": residence_registered,
    "reintegration.relocation.UtilityConnected": utility_connected,
    "reintegration.relocation.RelocationCompleted": completed,
    "reintegration.reintegration.ReintegrationOpened": reintegration_opened,
    "reintegration.reintegration.EmploymentNeedRecorded": employment_need,
    "reintegration.reintegration.EmploymentProvided": employment_provided,
    "reintegration.reintegration.ServiceEnrolled": service_enrolled,
    "reintegration.reintegration.BenefitChanged": benefit_changed,
    "reintegration.reintegration.DurableSolutionAssessed": durable_solution_assessed,
}
