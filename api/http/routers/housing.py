"""Housing over HTTP: settlements (clearance, readiness, opening), their units, and the
lottery rounds that allocate them."""

from __future__ import annotations

from datetime import date, datetime
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
    Name,
    Offset,
    SettlementCode,
    SettlementPath,
    Strict,
)
from api.http.scopes import query_districts
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


class ParticipantIn(BaseModel):
    model_config = Strict
    participant: Name = Field(description="Who commits")
    commitment: str = Field(
        description="sha256:<64 hex digits> of the participant's secret contribution (commit)",
        pattern=hs.SEED_HASH_PATTERN.pattern.join("^$"),
    )
    signature: str = Field(
        default="",
        max_length=200,
        pattern=r"^[A-Za-z0-9+/=]*$",
        description="The participant's Ed25519 signature (base64) of 'reintegration-lottery "
        "commitment/v1', the settlement, the round number and the commitment, one a line "
        "(`reintegration lottery commit` makes it); required when LOTTERY_PARTICIPANT_KEYS is set",
    )


class PublicRandomnessIn(BaseModel):
    model_config = Strict
    source: Identifier = Field(description="Who publishes it: drand-quicknet, state-lottery")
    reference: Line = Field(description="Which value: a drand round number, a draw date")
    published_at: datetime = Field(description="When it is published: after the reveals are due")


class AnnounceIn(BaseModel):
    model_config = Strict
    participants: list[ParticipantIn] = Field(
        min_length=hs.MIN_PARTICIPANTS,
        max_length=hs.MAX_PARTICIPANTS,
        description="Each participant of the draw and the hash of its own secret: at least two, "
        "so that no single party chooses the seed",
    )
    public_randomness: PublicRandomnessIn | None = Field(
        default=None,
        description="A public value still to be published, mixed into the seed, so that even the "
        "last participant to reveal cannot compute the result while deciding whether to reveal",
    )


class RevealIn(BaseModel):
    model_config = Strict
    participant: Name = Field(description="Who reveals")
    contribution: str = Field(
        description="The participant's secret, exactly as hashed in its commitment (reveal)",
        min_length=hs.MIN_SECRET_LENGTH,
        max_length=hs.SEED.max_length,
    )


class DrawIn(BaseModel):
    model_config = Strict
    public_value: str = Field(
        default="",
        max_length=500,
        description="The announced public randomness value, as its source published it",
    )
    witnesses: Line = Field(description="Who witnessed the draw")


class VoidIn(BaseModel):
    model_config = Strict
    withheld_by: list[Name] = Field(
        max_length=hs.MAX_PARTICIPANTS,
        description="The participants who did not reveal",
    )
    reason: Line = Field(description="Why the round is voided")


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


@router.get("/api/v1/settlements")
def list_settlements(actor: Reader, views: Views) -> list[dict[str, Any]]:
    """The settlements in the programme (a district-scoped caller's own only), with their
    clearance date, readiness items, opening date and how many units they have."""
    return views(queries.list_settlements, query_districts(actor))


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
    """Announce a lottery round (commit): every participant's commitment (never one used
    before: 409), the public randomness to come, the entrants in order and the units."""
    public = body.public_randomness
    r = use.housing.announce_round(
        code,
        [hs.Commitment(p.participant, p.commitment, p.signature) for p in body.participants],
        None if public is None else hs.PublicRandomness(**public.model_dump()),
    )
    return {
        "round_id": r.id,
        "round_number": r.round_number,
        "participants": [c.participant for c in r.commitments],
        "entrants": len(r.entrants),
        "units": len(r.units),
        "algorithm_version": r.algorithm_version,
        "announcement_digest": r.announcement_digest,
    }


@router.post("/api/v1/settlements/{code}/rounds/{number}/reveals")
def reveal(
    code: SettlementPath, number: RoundPath, body: RevealIn, _: Supervisor, use: Use
) -> dict[str, Any]:
    """A participant reveals its secret, checked against its commitment (422 on a wrong one);
    with a public value announced, only before it is published (409 after)."""
    r = use.housing.reveal(code, number, body.participant, body.contribution)
    missing = [m.participant for m in r.commitments if m.participant not in r.revealed]
    return {"round_id": r.id, "revealed": list(r.revealed), "waiting_for": missing}


@router.post("/api/v1/settlements/{code}/rounds/{number}/draw")
def draw_round(
    code: SettlementPath, number: RoundPath, body: DrawIn, _: Supervisor, use: Use
) -> dict[str, Any]:
    """Draw once every participant has revealed (409 while one has not) with the public
    value, once published; every drawn unit is offered to its household."""
    r = use.housing.draw_round(code, number, body.public_value, body.witnesses)
    return {
        "round_id": r.id,
        "seed": r.seed,
        "result_digest": r.result_digest,
        "assignments": [a.__dict__ for a in r.assignments],
        "reserve": [p.__dict__ for p in r.reserve],
    }


@router.post("/api/v1/settlements/{code}/rounds/{number}/void")
def void_round(
    code: SettlementPath, number: RoundPath, body: VoidIn, _: Supervisor, use: Use
) -> dict[str, Any]:
    """Void a round a participant withheld its reveal for: closed without a draw (the others
    never redraw); the next round is announced with fresh commitments."""
    r = use.housing.void_round(code, number, body.withheld_by, body.reason)
    return {"round_id": r.id, "voided": r.voided}


@router.get("/api/v1/settlements/{code}/rounds/{number}/result")
def round_result(code: SettlementPath, number: RoundPath, _: Reader, use: Use) -> dict[str, Any]:
    """The round as published: commitments and reveals, the public value, the entrants by
    pseudonym with their priority group, score, rooms and lot order, the units, the assignment
    and the reserve lists, with the digests recorded on the events. Re-run it with
    ``tools/rerun_lottery.py`` (no part of this project needed)."""
    return use.housing.published_round(code, number)


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
