"""Relocation over HTTP: a household's offer, its consent, the convoys, and the steps of the
move from arrival to a registered residence; the case's timeline and the pipeline's counts."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from api.http.boundary import Utf8JsonRoute
from api.http.dependencies import Reader, Reads, Use, Views, Writer
from api.http.models import (
    TOTAL_HEADER,
    Identifier,
    Line,
    Name,
    Offset,
    OptionalLimit,
    Paragraph,
    SettlementCode,
    SettlementQuery,
    Strict,
    TotalInHeader,
)
from api.http.scopes import query_districts
from domain import relocation as rl
from domain.base import NotFound
from domain.registry import MAX_MEMBERS
from domain.relocation import Relocation
from infra.access_log import subjects_in
from projections.queries import housing as queries

router = APIRouter(tags=["relocation"], route_class=Utf8JsonRoute)


class DeclineIn(BaseModel):
    model_config = Strict
    reason: Literal[rl.DECLINE_REASONS]  # type: ignore[valid-type]
    note: Paragraph | None = None


class ConsentIn(BaseModel):
    model_config = Strict
    informed_of: list[Line] = Field(min_length=1, max_length=rl.MAX_INFORMED_OF)
    document_reference: Identifier
    recorded_by: Name


class WithdrawIn(BaseModel):
    model_config = Strict
    reason: Line


class ConvoyIn(BaseModel):
    model_config = Strict
    settlement_code: SettlementCode
    departs_on: date
    vehicles: int = Field(ge=1, le=rl.MAX_VEHICLES)
    household_ids: list[UUID] = Field(min_length=1, max_length=rl.MAX_CONVOY_HOUSEHOLDS)


class DepartureIn(BaseModel):
    model_config = Strict
    departed_on: date


class ArrivalIn(BaseModel):
    model_config = Strict
    arrived_on: date
    members_arrived: int = Field(ge=1, le=MAX_MEMBERS)


class KeysIn(BaseModel):
    model_config = Strict
    handed_over_on: date


class ResidenceIn(BaseModel):
    model_config = Strict
    registered_on: date
    registration_reference: Identifier


class UtilityIn(BaseModel):
    model_config = Strict
    utility: Literal[rl.UTILITIES]  # type: ignore[valid-type]
    connected_on: date
    account_reference: Identifier | None = None


class CompletionIn(BaseModel):
    model_config = Strict
    completed_on: date


def relocation_view(case: Relocation) -> dict[str, Any]:
    return {
        "household_id": case.household_id,
        "settlement_code": case.settlement_code,
        "stage": case.stage,
        "consent": case.consent,
        "offer": case.offer,
        "allocated_unit": case.allocated_unit,
        "address": case.allocated_address,
        "convoy_id": case.convoy_id,
        "utilities": case.utilities,
        "version": case.version,
    }


@router.post("/api/v1/households/{household_id}/offer/acceptance")
def accept(household_id: UUID, _: Writer, use: Use) -> dict[str, Any]:
    return relocation_view(use.relocation.accept_offer(household_id))


@router.post("/api/v1/households/{household_id}/offer/decline")
def decline(household_id: UUID, body: DeclineIn, _: Writer, use: Use) -> dict[str, Any]:
    successor = use.relocation.decline_offer(household_id, body.reason, body.note)
    return {
        "household_id": household_id,
        "next_household_id": successor.household_id if successor else None,
    }


@router.post("/api/v1/households/{household_id}/consent")
def consent(household_id: UUID, body: ConsentIn, _: Writer, use: Use) -> dict[str, Any]:
    """Record the family's informed, voluntary consent to return."""
    case = use.relocation.give_consent(
        household_id, body.informed_of, body.document_reference, body.recorded_by
    )
    return relocation_view(case)


@router.post("/api/v1/households/{household_id}/consent/withdrawal")
def withdraw(household_id: UUID, body: WithdrawIn, _: Writer, use: Use) -> dict[str, Any]:
    return relocation_view(use.relocation.withdraw_consent(household_id, body.reason))


@router.post("/api/v1/convoys", status_code=201)
def convoy(body: ConvoyIn, _: Writer, use: Use) -> dict[str, Any]:
    c = use.relocation.schedule_convoy(
        body.settlement_code, body.departs_on, body.vehicles, body.household_ids
    )
    return {"convoy_id": c.id, "household_ids": c.household_ids, "departs_on": c.departs_on}


@router.post("/api/v1/convoys/{convoy_id}/departure")
def departure(convoy_id: UUID, body: DepartureIn, _: Writer, use: Use) -> dict[str, Any]:
    departed = use.relocation.convoy_departed(convoy_id, body.departed_on)
    return {"convoy_id": convoy_id, "departed": departed}


@router.get("/api/v1/convoys", responses={200: {"headers": TOTAL_HEADER}})
def list_convoys(
    actor: Reader,
    views: Views,
    reads: Reads,
    response: Response,
    settlement_code: SettlementQuery = None,
    limit: OptionalLimit = None,
    offset: Offset = 0,
    total: TotalInHeader = False,
) -> list[dict[str, Any]]:
    """Convoys with their families and the families' new addresses, by departure: all of
    them, or a page with ``limit`` and ``offset``."""
    districts = query_districts(actor)
    found = views(queries.convoys, settlement_code, districts, limit, offset)
    if total:
        counted = views(queries.count_convoys, settlement_code, districts)
        response.headers["X-Total-Count"] = str(counted)
    reads.record("list convoys", subjects_in(found), {"settlement_code": settlement_code})
    return found


@router.get("/api/v1/convoys/{convoy_id}")
def get_convoy(convoy_id: UUID, _: Reader, views: Views, reads: Reads) -> dict[str, Any]:
    """One convoy's manifest: departure date, vehicles, destination settlement and the
    families still in it, each with its head's name, its number of members and new address."""
    found = views(queries.convoy, convoy_id)
    if found is None:
        raise NotFound("convoy", convoy_id)
    reads.record("read convoy", subjects_in(found))
    return found


def step(path: str, act: str, model: type[BaseModel]) -> None:
    """One step of the move, posted to ``/api/v1/households/{household_id}/<path>``."""

    def handler(household_id: UUID, body: Any, _: Writer, use: Use) -> dict[str, Any]:
        return relocation_view(use.relocation.step(household_id, act, **body.model_dump()))

    handler.__annotations__["body"] = model
    handler.__name__ = f"relocation_{act}"
    router.post(f"/api/v1/households/{{household_id}}/{path}")(handler)


step("arrival", "arrive", ArrivalIn)
step("keys", "hand_over_keys", KeysIn)
step("utilities", "connect_utility", UtilityIn)
step("relocation/completion", "complete", CompletionIn)


@router.post("/api/v1/households/{household_id}/residence")
def residence(household_id: UUID, body: ResidenceIn, _: Writer, use: Use) -> dict[str, Any]:
    """Register residence at the new address; opens the reintegration follow-up and sets
    the allowance's end date by the 3-year rule."""
    case = use.relocation.register_residence(
        household_id, body.registered_on, body.registration_reference
    )
    return relocation_view(case)


@router.get("/api/v1/households/{household_id}/relocation")
def get_relocation(household_id: UUID, _: Reader, views: Views, reads: Reads) -> dict[str, Any]:
    found = views(queries.get_relocation, household_id)
    if found is None:
        raise NotFound("relocation of household", household_id)
    reads.record("read relocation", [household_id])
    return dict(found)


@router.get("/api/v1/relocation/pipeline")
def pipeline(
    actor: Reader, views: Views, settlement_code: SettlementQuery = None
) -> list[dict[str, Any]]:
    """Households per relocation stage per settlement."""
    return views(queries.pipeline, settlement_code, query_districts(actor))


@router.get("/api/v1/households/{household_id}/timeline")
def timeline(household_id: UUID, _: Reader, use: Use, reads: Reads) -> list[dict[str, Any]]:
    """One case from registration to settlement: every event, in order, in a line each: when,
    what, who (and in which role), why, and what it recorded (``data``; a decision's facts and
    outcomes are read at its own address). The auditor's history adds causation and the
    chain."""
    history = use.audit.history(household_id)
    events = history["events"]
    reads.record("read case timeline", [household_id, *{UUID(e["aggregate_id"]) for e in events}])
    return [
        {
            "at": e["occurred_at"],
            "event": e["event_type"].rsplit(".", 1)[-1],
            "by": e["actor_id"],
            "role": e["actor_role"],
            "reason": e["reason"],
            "aggregate": e["aggregate"],
            "aggregate_id": e["aggregate_id"],
            "data": {k: v for k, v in e["data"].items() if k not in BULKY},
        }
        for e in events
    ]


BULKY = {"facts", "outcomes", "tie_breakers", "document"}
"""What a timeline line leaves out: a decision's inputs and outcomes, a rule set's text."""
