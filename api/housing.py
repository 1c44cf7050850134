"""The Great Return over HTTP: settlements and units, lottery rounds, offers, relocation steps
and convoys, reintegration follow-up, their views, and the auditor's lottery re-run."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import FastAPI, Path, Query, Request
from pydantic import BaseModel, Field

from api.http_models import (
    MAX_VERSION,
    Fin,
    Identifier,
    Limit,
    Line,
    Name,
    Offset,
    Paragraph,
    SettlementCode,
    SettlementPath,
    SettlementQuery,
    Strict,
    text_field,
)
from domain import housing as hs
from domain import reintegration as ri
from domain import relocation as rl
from domain.base import Actor, NotFound
from domain.registry import MAX_MEMBERS
from infra.bootstrap import Container
from infra.housing import MAX_UNITS_PER_REQUEST, Housing
from projections import housing as views

RoundPath = Annotated[int, Path(ge=1, le=MAX_VERSION, description="Round number")]
Criterion = Annotated[str, Field(max_length=64, pattern=r"^[a-z_]+$")]
Sector = Annotated[str, text_field(ri.SECTOR)]


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


class DeclineIn(BaseModel):
    model_config = Strict
    reason: Literal[rl.DECLINE_REASONS]  # type: ignore[valid-type]
    note: Paragraph | None = None


class ExpiryIn(BaseModel):
    model_config = Strict
    today: date | None = Field(default=None, description="Default: today")


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


class EmploymentNeedIn(BaseModel):
    model_config = Strict
    persons_seeking_work: int = Field(ge=0, le=MAX_MEMBERS)
    sectors: list[Sector] = Field(default=[], max_length=ri.MAX_SECTORS)
    note: Paragraph | None = None


class EmploymentIn(BaseModel):
    model_config = Strict
    person_fin: Fin
    employer: Line
    programme: Line | None = None
    start_date: date


class ServiceIn(BaseModel):
    model_config = Strict
    service: Literal[ri.SERVICES]  # type: ignore[valid-type]
    institution: Line
    person_fin: Fin | None = None
    enrolled_on: date


class AssessmentIn(BaseModel):
    model_config = Strict
    framework: Literal["iasc", "iris"]
    criterion: Criterion
    met: bool
    evidence: Paragraph
    assessor: Name
    assessed_on: date


def relocation_view(case: Any) -> dict[str, Any]:
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


def install(
    app: FastAPI,
    container: Container,
    require: Callable[..., Any],
    command: Callable[[Request, Actor], Any],
    audited_read: Callable[[Request, Actor, str, list[UUID]], None],
    write_roles: tuple[str, ...],
    read_roles: tuple[str, ...],
) -> None:
    supervisor = ("supervisor",)

    def service() -> Housing:
        housing: Housing = container.housing
        return housing

    def settlement_view(code: str) -> dict[str, Any]:
        s = service().settlement(code)
        return {
            "settlement_code": s.code,
            "name": s.name,
            "clearance": s.clearance,
            "readiness": s.readiness,
            "opened_on": s.opened_on,
            "units": len(s.units),
            "version": s.version,
        }

    # --- settlements -----------------------------------------------------------------------

    @app.post("/api/v1/settlements", status_code=201, tags=["housing"])
    def register_settlement(
        body: SettlementIn, request: Request, actor: Actor = require(*write_roles)
    ) -> dict[str, Any]:
        with command(request, actor):
            service().register_settlement(body.code)
        return settlement_view(body.code)

    @app.post("/api/v1/settlements/{code}/clearance", tags=["housing"])
    def clearance(
        code: SettlementPath,
        body: ClearanceIn,
        request: Request,
        actor: Actor = require(*write_roles),
    ) -> dict[str, Any]:
        """Record the certified security clearance (demining) of the settlement."""
        with command(request, actor):
            service().certify_clearance(
                code, body.agency, body.certified_on, body.certificate_reference
            )
        return settlement_view(code)

    @app.post("/api/v1/settlements/{code}/readiness", tags=["housing"])
    def readiness(
        code: SettlementPath,
        body: ReadinessIn,
        request: Request,
        actor: Actor = require(*write_roles),
    ) -> dict[str, Any]:
        with command(request, actor):
            service().certify_readiness(code, body.items, body.certified_on, body.reference)
        return settlement_view(code)

    @app.post("/api/v1/settlements/{code}/opening", tags=["housing"])
    def opening(
        code: SettlementPath, body: OpeningIn, request: Request, actor: Actor = require(*supervisor)
    ) -> dict[str, Any]:
        """Open for return (supervisor); refused (409) before clearance is certified."""
        with command(request, actor):
            service().open_for_return(code, body.opened_on)
        return settlement_view(code)

    @app.post("/api/v1/settlements/{code}/units", status_code=201, tags=["housing"])
    def units(
        code: SettlementPath, body: UnitsIn, request: Request, actor: Actor = require(*write_roles)
    ) -> dict[str, Any]:
        with command(request, actor):
            ids = service().register_units(code, [u.model_dump() for u in body.units])
        return {"settlement_code": code, "unit_ids": ids}

    @app.get("/api/v1/settlements/{code}", tags=["housing"])
    def get_settlement(code: SettlementPath, actor: Actor = require(*read_roles)) -> dict[str, Any]:
        found = container.query(views.get_settlement, code)
        if found is None:
            raise NotFound("settlement", code)
        return {**found, "units": container.query(views.units_by_status, code)}

    @app.get("/api/v1/settlements/{code}/units", tags=["housing"])
    def list_units(
        code: SettlementPath,
        status: Annotated[
            str | None, Query(pattern="^(available|offered|allocated|occupied)$")
        ] = None,
        limit: Limit = 100,
        offset: Offset = 0,
        actor: Actor = require(*read_roles),
    ) -> list[dict[str, Any]]:
        """Housing units by status: available, offered, allocated, occupied."""
        rows: list[dict[str, Any]] = container.query(views.list_units, code, status, limit, offset)
        return rows

    # --- lottery ---------------------------------------------------------------------------

    @app.post("/api/v1/settlements/{code}/rounds", status_code=201, tags=["housing"])
    def announce(
        code: SettlementPath,
        body: AnnounceIn,
        request: Request,
        actor: Actor = require(*supervisor),
    ) -> dict[str, Any]:
        """Announce a lottery round (commit): the seed's hash, entrants in order, units."""
        with command(request, actor):
            r = service().announce_round(code, body.seed_hash)
        return {
            "round_id": r.id,
            "round_number": r.round_number,
            "seed_hash": r.seed_hash,
            "entrants": len(r.entrants),
            "units": len(r.units),
            "algorithm_version": r.algorithm_version,
        }

    @app.post("/api/v1/settlements/{code}/rounds/{number}/draw", tags=["housing"])
    def draw_round(
        code: SettlementPath,
        number: RoundPath,
        body: DrawIn,
        request: Request,
        actor: Actor = require(*supervisor),
    ) -> dict[str, Any]:
        """Reveal the seed and draw; every drawn unit is offered to its household."""
        with command(request, actor):
            r = service().draw_round(code, number, body.seed, body.witnesses)
        return {
            "round_id": r.id,
            "assignments": [a.__dict__ for a in r.assignments],
            "reserve": [p.__dict__ for p in r.reserve],
        }

    @app.get("/api/v1/settlements/{code}/rounds", tags=["housing"])
    def list_rounds(
        code: SettlementPath, actor: Actor = require(*read_roles)
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = container.query(views.rounds, code)
        return rows

    @app.post("/api/v1/settlements/{code}/offers/expiry", tags=["housing"])
    def expire(
        code: SettlementPath,
        request: Request,
        body: ExpiryIn | None = None,
        actor: Actor = require(*write_roles),
    ) -> dict[str, Any]:
        """Expire the offers past their deadline; each unit goes to the next reserve family."""
        with command(request, actor):
            done = service().expire_offers(code, body.today if body else None)
        return {"expired": [{"household_id": h, "next_household_id": n} for h, n in done]}

    @app.get("/api/v1/audit/settlements/{code}/rounds/{number}/rerun", tags=["audit"])
    def rerun_lottery(
        code: SettlementPath, number: RoundPath, actor: Actor = require("auditor", "supervisor")
    ) -> dict[str, Any]:
        """Re-run a drawn round from its recorded seed, entrants and units."""
        return service().verify_lottery(code, number).as_dict()

    # --- a household's offer and relocation ------------------------------------------------

    @app.post("/api/v1/households/{household_id}/offer/acceptance", tags=["relocation"])
    def accept(
        household_id: UUID, request: Request, actor: Actor = require(*write_roles)
    ) -> dict[str, Any]:
        with command(request, actor):
            case = service().accept_offer(household_id)
        return relocation_view(case)

    @app.post("/api/v1/households/{household_id}/offer/decline", tags=["relocation"])
    def decline(
        household_id: UUID, body: DeclineIn, request: Request, actor: Actor = require(*write_roles)
    ) -> dict[str, Any]:
        with command(request, actor):
            successor = service().decline_offer(household_id, body.reason, body.note)
        return {
            "household_id": household_id,
            "next_household_id": successor.household_id if successor else None,
        }

    @app.post("/api/v1/households/{household_id}/consent", tags=["relocation"])
    def consent(
        household_id: UUID, body: ConsentIn, request: Request, actor: Actor = require(*write_roles)
    ) -> dict[str, Any]:
        """Record the family's informed, voluntary consent to return."""
        with command(request, actor):
            case = service().give_consent(
                household_id, body.informed_of, body.document_reference, body.recorded_by
            )
        return relocation_view(case)

    @app.post("/api/v1/households/{household_id}/consent/withdrawal", tags=["relocation"])
    def withdraw(
        household_id: UUID, body: WithdrawIn, request: Request, actor: Actor = require(*write_roles)
    ) -> dict[str, Any]:
        with command(request, actor):
            case = service().withdraw_consent(household_id, body.reason)
        return relocation_view(case)

    @app.post("/api/v1/convoys", status_code=201, tags=["relocation"])
    def convoy(
        body: ConvoyIn, request: Request, actor: Actor = require(*write_roles)
    ) -> dict[str, Any]:
        with command(request, actor):
            c = service().schedule_convoy(
                body.settlement_code, body.departs_on, body.vehicles, body.household_ids
            )
        return {"convoy_id": c.id, "household_ids": c.household_ids, "departs_on": c.departs_on}

    @app.post("/api/v1/convoys/{convoy_id}/departure", tags=["relocation"])
    def departure(
        convoy_id: UUID, body: DepartureIn, request: Request, actor: Actor = require(*write_roles)
    ) -> dict[str, Any]:
        with command(request, actor):
            departed = service().convoy_departed(convoy_id, body.departed_on)
        return {"convoy_id": convoy_id, "departed": departed}

    @app.get("/api/v1/convoys", tags=["relocation"])
    def list_convoys(
        settlement_code: SettlementQuery = None, actor: Actor = require(*read_roles)
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = container.query(views.convoys, settlement_code)
        return rows

    def step(path: str, act: str, model: type[BaseModel]) -> None:
        def handler(
            household_id: UUID, body: Any, request: Request, actor: Actor = require(*write_roles)
        ) -> dict[str, Any]:
            with command(request, actor):
                case = service().step(household_id, act, **body.model_dump())
            return relocation_view(case)

        handler.__annotations__["body"] = model
        handler.__name__ = f"relocation_{act}"
        app.post(f"/api/v1/households/{{household_id}}/{path}", tags=["relocation"])(handler)

    step("arrival", "arrive", ArrivalIn)
    step("keys", "hand_over_keys", KeysIn)
    step("utilities", "connect_utility", UtilityIn)
    step("relocation/completion", "complete", CompletionIn)

    @app.post("/api/v1/households/{household_id}/residence", tags=["relocation"])
    def residence(
        household_id: UUID,
        body: ResidenceIn,
        request: Request,
        actor: Actor = require(*write_roles),
    ) -> dict[str, Any]:
        """Register residence at the new address; opens the reintegration follow-up and sets
        the allowance's end date by the 3-year rule."""
        with command(request, actor):
            case = service().register_residence(
                household_id, body.registered_on, body.registration_reference
            )
        return relocation_view(case)

    @app.get("/api/v1/households/{household_id}/relocation", tags=["relocation"])
    def get_relocation(
        household_id: UUID, request: Request, actor: Actor = require(*read_roles)
    ) -> dict[str, Any]:
        found = container.query(views.get_relocation, household_id)
        if found is None:
            raise NotFound("relocation of household", household_id)
        audited_read(request, actor, "read relocation", [household_id])
        return dict(found)

    @app.get("/api/v1/relocation/pipeline", tags=["relocation"])
    def pipeline(
        settlement_code: SettlementQuery = None, actor: Actor = require(*read_roles)
    ) -> list[dict[str, Any]]:
        """Households per relocation stage per settlement."""
        rows: list[dict[str, Any]] = container.query(views.pipeline, settlement_code)
        return rows

    # --- reintegration ---------------------------------------------------------------------

    def follow_up(path: str, act: str, model: type[BaseModel], rename: dict[str, str]) -> None:
        def handler(
            household_id: UUID, body: Any, request: Request, actor: Actor = require(*write_roles)
        ) -> dict[str, Any]:
            values = {rename.get(k, k): v for k, v in body.model_dump().items()}
            with command(request, actor):
                done = service().follow_up(household_id, act, **values)
            return {
                "household_id": household_id,
                "version": done.version,
                "unmet_criteria": done.unmet_criteria,
            }

        handler.__annotations__["body"] = model
        handler.__name__ = f"reintegration_{act}"
        app.post(
            f"/api/v1/households/{{household_id}}/reintegration/{path}",
            tags=["reintegration"],
        )(handler)

    follow_up(
        "employment-need",
        "record_employment_need",
        EmploymentNeedIn,
        {"persons_seeking_work": "persons"},
    )
    follow_up("employment", "provide_employment", EmploymentIn, {})
    follow_up("services", "enrol", ServiceIn, {})
    follow_up("assessments", "assess", AssessmentIn, {})

    @app.get("/api/v1/reintegration/returnees", tags=["reintegration"])
    def returnees(
        settlement_code: SettlementQuery = None, actor: Actor = require(*read_roles)
    ) -> list[dict[str, Any]]:
        """Returnee households with their reintegration status and unmet IASC criteria."""
        rows: list[dict[str, Any]] = container.query(views.returnees, settlement_code)
        return rows

    @app.get("/api/v1/households/{household_id}/timeline", tags=["relocation"])
    def timeline(
        household_id: UUID, request: Request, actor: Actor = require(*read_roles)
    ) -> list[dict[str, Any]]:
        """One case from registration to settlement: every event, in order, in a line each."""
        history = container.case_history(household_id)
        audited_read(request, actor, "read case timeline", [household_id])
        return [
            {
                "at": e["occurred_at"],
                "event": e["event_type"].rsplit(".", 1)[-1],
                "by": e["actor_id"],
                "reason": e["reason"],
            }
            for e in history["events"]
        ]
