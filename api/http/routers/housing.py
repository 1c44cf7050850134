"""Housing over HTTP: settlements (clearance, readiness, opening), their units, and the
lottery rounds that allocate them."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from api.http.boundary import Utf8JsonRoute
from api.http.dependencies import Reader, Reads, Supervisor, Use, Views, Writer
from api.http.models import (
    MAX_VERSION,
    Identifier,
    Limit,
    Line,
    Offset,
    SettlementCode,
    SettlementPath,
    Strict,
)
from application.housing import MAX_UNITS_PER_REQUEST
from domain import housing as hs
from domain.base import NotFound
from infra.access_log import subjects_in
from projections.queries import housing as queries

router = APIRouter(tags=["housing"], route_class=Utf8JsonRoute)
RoundPath = Annotated[int, Path(ge=1, le=MAX_VERSION, description="Round number")]


class SettlementIn(BaseModel):
    model_config = Strict
    code: SettlementCode


class ClearanceIn(BaseModel):
    model_config = Strict
    agency: Line
    certified_on: date
    certificate_reference: Identifier


class ReadinessIn(BaseModel):
    model_config = Strict
    items: list[Literal[hs.READINESS_ITEMS]] = Field(  # type: ignore[valid-type]
        min_length=1, max_length=len(hs.READINESS_ITEMS)
    )
    certified_on: date
    reference: Identifier


class OpeningIn(BaseModel):
    model_config = Strict
    opened_on: date


class UnitIn(BaseModel):
    model_config = Strict
    reference: Identifier
    address: Line
    rooms: int = Field(ge=1, le=hs.MAX_ROOMS)
    kind: Literal[hs.UNIT_KINDS]  # type: ignore[valid-type]
    floor: int | None = Field(default=None, ge=hs.FLOORS.start, le=hs.FLOORS.stop - 1)


class UnitsIn(BaseModel):
    model_config = Strict
    units: list[UnitIn] = Field(
        min_length=1,
        max_length=MAX_UNITS_PER_REQUEST,
        description=f"1 to {MAX_UNITS_PER_REQUEST} units, recorded together or not at all",
    )


class AnnounceIn(BaseModel):
    model_config = Strict
    seed_hash: str = Field(
        description="sha256:<64 hex digits> of the secret seed (commit)",
        pattern=hs.SEED_HASH_PATTERN.pattern.join("^$"),
    )


class DrawIn(BaseModel):
    model_config = Strict
    seed: str = Field(
        description="The seed whose hash was published (reveal), exactly as hashed",
        min_length=1,
        max_length=hs.SEED.max_length,
    )
    witnesses: Line = Field(description="Who witnessed the draw")


class ExpiryIn(BaseModel):
    model_config = Strict
    today: date | None = Field(default=None, description="Default: today")


def settlement_view(use: Use, code: str) -> dict[str, Any]:
    s = use.housing.settlement(code)
    return {
        "settlement_code": s.code,
        "name": s.name,
        "clearance": s.clearance,
        "readiness": s.readiness,
        "opened_on": s.opened_on,
        "units": len(s.units),
        "version": s.version,
    }


# --- settlements -------------------------------------------------------------------------


@router.post("/api/v1/settlements", status_code=201)
def register_settlement(body: SettlementIn, _: Writer, use: Use) -> dict[str, Any]:
    use.housing.register_settlement(body.code)
    return settlement_view(use, body.code)


@router.post("/api/v1/settlements/{code}/clearance")
def clearance(code: SettlementPath, body: ClearanceIn, _: Writer, use: Use) -> dict[str, Any]:
    """Record the certified security clearance (demining) of the settlement."""
    use.housing.certify_clearance(code, body.agency, body.certified_on, body.certificate_reference)
    return settlement_view(use, code)


@router.post("/api/v1/settlements/{code}/readiness")
def readiness(code: SettlementPath, body: ReadinessIn, _: Writer, use: Use) -> dict[str, Any]:
    use.housing.certify_readiness(code, body.items, body.certified_on, body.reference)
    return settlement_view(use, code)


@router.post("/api/v1/settlements/{code}/opening")
def opening(code: SettlementPath, body: OpeningIn, _: Supervisor, use: Use) -> dict[str, Any]:
    """Open for return (supervisor); refused (409) before clearance is certified."""
    use.housing.open_for_return(code, body.opened_on)
    return settlement_view(use, code)


@router.post("/api/v1/settlements/{code}/units", status_code=201)
def units(code: SettlementPath, body: UnitsIn, _: Writer, use: Use) -> dict[str, Any]:
    ids = use.housing.register_units(code, [u.model_dump() for u in body.units])
    return {"settlement_code": code, "unit_ids": ids}


@router.get("/api/v1/settlements/{code}")
def get_settlement(code: SettlementPath, _: Reader, views: Views) -> dict[str, Any]:
    found = views(queries.get_settlement, code)
    if found is None:
        raise NotFound("settlement", code)
    return {**found, "units": views(queries.units_by_status, code)}


@router.get("/api/v1/settlements/{code}/units")
def list_units(
    code: SettlementPath,
    _: Reader,
    views: Views,
    reads: Reads,
    status: Annotated[str | None, Query(pattern="^(available|offered|allocated|occupied)$")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    """Housing units by status: available, offered, allocated, occupied."""
    found = views(queries.list_units, code, status, limit, offset)
    reads.record("list housing units", subjects_in(found), {"status": status})
    return found


# --- lottery -----------------------------------------------------------------------------


@router.post("/api/v1/settlements/{code}/rounds", status_code=201)
def announce(code: SettlementPath, body: AnnounceIn, _: Supervisor, use: Use) -> dict[str, Any]:
    """Announce a lottery round (commit): the seed's hash, entrants in order, units."""
    r = use.housing.announce_round(code, body.seed_hash)
    return {
        "round_id": r.id,
        "round_number": r.round_number,
        "seed_hash": r.seed_hash,
        "entrants": len(r.entrants),
        "units": len(r.units),
        "algorithm_version": r.algorithm_version,
    }


@router.post("/api/v1/settlements/{code}/rounds/{number}/draw")
def draw_round(
    code: SettlementPath, number: RoundPath, body: DrawIn, _: Supervisor, use: Use
) -> dict[str, Any]:
    """Reveal the seed and draw; every drawn unit is offered to its household."""
    r = use.housing.draw_round(code, number, body.seed, body.witnesses)
    return {
        "round_id": r.id,
        "assignments": [a.__dict__ for a in r.assignments],
        "reserve": [p.__dict__ for p in r.reserve],
    }


@router.get("/api/v1/settlements/{code}/rounds")
def list_rounds(code: SettlementPath, _: Reader, views: Views) -> list[dict[str, Any]]:
    return views(queries.rounds, code)


@router.post("/api/v1/settlements/{code}/offers/expiry")
def expire(
    code: SettlementPath, _: Writer, use: Use, body: ExpiryIn | None = None
) -> dict[str, Any]:
    """Expire the offers past their deadline; each unit goes to the next reserve family."""
    done = use.relocation.expire_offers(code, body.today if body else None)
    return {"expired": [{"household_id": h, "next_household_id": n} for h, n in done]}
