"""A case as the event store tells it: its complete history, and its state as of any moment.

Read straight from the event store (never from the read models), so an auditor need not trust
the projections. A case is the household and every person registered in it.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from psycopg.sql import SQL, Identifier

from domain import eligibility
from domain.base import NotFound
from domain.registry import Household, Person
from domain.reintegration import reintegration_id
from domain.relocation import Relocation, relocation_id
from infra import contract
from infra.application import ReintegrationApplication

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


def _stored(app: ReintegrationApplication, ids: list[UUID]) -> list[tuple[int, Any, bytes | None]]:
    """(position, domain event, chain link) for every event of these aggregates, in log order."""
    recorder: Any = app.recorder
    statement = SQL(
        "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state, c.chain_hash "
        "FROM {events} e LEFT JOIN {chain} c USING (notification_id) "
        "WHERE e.originator_id = ANY(%s) ORDER BY e.notification_id"
    ).format(
        events=Identifier(recorder.events_table_name), chain=Identifier(recorder.chain_table_name)
    )
    with recorder.datastore.get_connection() as conn, conn.cursor() as cur:
        cur.execute(statement, (ids,))
        rows = cur.fetchall()
    return [
        (
            r["notification_id"],
            app.mapper.to_domain_event(
                StoredEvent(
                    r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"])
                )
            ),
            bytes(r["chain_hash"]) if r["chain_hash"] is not None else None,
        )
        for r in rows
    ]


def case_events(
    app: ReintegrationApplication, household_id: UUID
) -> list[tuple[int, Any, bytes | None]]:
    household_events = _stored(app, [household_id])
    if not household_events:
        raise NotFound("household", household_id)
    people: list[UUID] = []
    for _, event, _ in household_events:
        for member in getattr(event, "members", []) or []:
            if member.person_id not in people:
                people.append(member.person_id)
    # Aggregates numbered per household: its survey responses and eligibility decisions.
    others = [*people, *app.survey_responses(household_id, "pre-return")]
    others += _numbered(app, lambda n: eligibility.decision_id(household_id, n))
    others += [relocation_id(household_id), reintegration_id(household_id)]
    everything = household_events + (_stored(app, others) if others else [])
    return sorted(everything, key=lambda item: item[0])


def _numbered(app: ReintegrationApplication, id_for: Any) -> list[UUID]:
    found: list[UUID] = []
    while app.recorder.select_events(id_for(len(found) + 1), limit=1):
        found.append(id_for(len(found) + 1))
    return found


def history(app: ReintegrationApplication, household_id: UUID) -> dict[str, Any]:
    """Every event of the case in log order, with who, when, why and what caused it."""
    entries = []
    for position, event, chain_link in case_events(app, household_id):
        try:
            event_type = contract.schema_name_for(event)
        except contract.UnmappedEvent:
            event_type = type(event).__qualname__
        entries.append(
            {
                "position": position,
                "event_type": event_type,
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
                "chain_hash": chain_link.hex() if chain_link else None,
            }
        )
    return {"household_id": str(household_id), "events": entries}


def render_html(history_: dict[str, Any], chain: Any, generated_by: str) -> str:
    """The history as a page a person would rather read (prints well, too)."""
    from datetime import UTC

    from jinja2 import Environment, PackageLoader, select_autoescape

    environment = Environment(
        loader=PackageLoader("infra", "templates"), autoescape=select_autoescape(["html"])
    )
    return environment.get_template("case_history.html").render(
        history=history_,
        chain=chain,
        generated_by=generated_by,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


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


def as_of(app: ReintegrationApplication, household_id: UUID, moment: datetime) -> dict[str, Any]:
    """The case as it stood at ``moment``: replay only the events recorded up to then."""
    aggregates: dict[UUID, Any] = {}
    last_position = 0
    for position, event, _ in case_events(app, household_id):
        if event.timestamp > moment:
            continue
        aggregates[event.originator_id] = event.mutate(aggregates.get(event.originator_id))
        last_position = position
    household = aggregates.get(household_id)
    if not isinstance(household, Household):
        raise NotFound(f"household as of {moment.isoformat()}", household_id)
    members = []
    for member in household.members:
        person = aggregates.get(member.person_id)
        details = (
            {
                "first_name": person.first_name,
                "last_name": person.last_name,
                "patronymic": person.patronymic,
                "birth_date": person.birth_date.isoformat(),
                "sex": person.sex,
                "version": person.version,
            }
            if isinstance(person, Person)
            else {}
        )
        members.append(
            {
                "person_id": str(member.person_id),
                "fin": member.fin,
                "relationship": member.relationship,
                **details,
            }
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
        },
        "members": members,
        "eligibility_decision": _decision_as_of(aggregates),
        **_relocation_as_of(aggregates.get(relocation_id(household_id))),
    }
