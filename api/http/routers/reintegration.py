"""Reintegration over HTTP: the follow-up of a returned household (employment needs, jobs,
services, durable-solution assessments) and the returnees' view."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from api.http.boundary import Utf8JsonRoute
from api.http.dependencies import Reader, Reads, Use, Views, Writer
from api.http.models import (
    TOTAL_HEADER,
    Fin,
    Line,
    Name,
    Offset,
    OptionalLimit,
    Paragraph,
    SettlementQuery,
    Strict,
    TotalInHeader,
    text_field,
)
from api.http.scopes import query_districts
from domain import reintegration as ri
from domain.base import NotFound
from domain.registry import MAX_MEMBERS
from infra.access_log import subjects_in
from projections.queries import housing as queries

router = APIRouter(tags=["reintegration"], route_class=Utf8JsonRoute)
Criterion = Annotated[str, Field(max_length=64, pattern=r"^[a-z_]+$")]
Sector = Annotated[str, text_field(ri.SECTOR)]


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


def follow_up(path: str, act: str, model: type[BaseModel], rename: dict[str, str]) -> None:
    """One act of the follow-up, posted to
    ``/api/v1/households/{household_id}/reintegration/<path>``."""

    def handler(household_id: UUID, body: Any, _: Writer, use: Use) -> dict[str, Any]:
        values = {rename.get(k, k): v for k, v in body.model_dump().items()}
        done = use.reintegration.follow_up(household_id, act, **values)
        return {
            "household_id": household_id,
            "version": done.version,
            "unmet_criteria": done.unmet_criteria,
        }

    handler.__annotations__["body"] = model
    handler.__name__ = f"reintegration_{act}"
    router.post(f"/api/v1/households/{{household_id}}/reintegration/{path}")(handler)


follow_up(
    "employment-need",
    "record_employment_need",
    EmploymentNeedIn,
    {"persons_seeking_work": "persons"},
)
follow_up("employment", "provide_employment", EmploymentIn, {})
follow_up("services", "enrol", ServiceIn, {})
follow_up("assessments", "assess", AssessmentIn, {})


@router.get("/api/v1/reintegration/returnees", responses={200: {"headers": TOTAL_HEADER}})
def returnees(
    actor: Reader,
    views: Views,
    reads: Reads,
    response: Response,
    settlement_code: SettlementQuery = None,
    limit: OptionalLimit = None,
    offset: Offset = 0,
    total: TotalInHeader = False,
) -> list[dict[str, Any]]:
    """Returnee households with their reintegration status and unmet IASC criteria, by
    household id: all of them, or a page with ``limit`` and ``offset``."""
    districts = query_districts(actor)
    found = views(queries.returnees, settlement_code, districts, limit, offset)
    if total:
        counted = views(queries.count_returnees, settlement_code, districts)
        response.headers["X-Total-Count"] = str(counted)
    reads.record("list returnees", subjects_in(found), {"settlement_code": settlement_code})
    return found


@router.get("/api/v1/households/{household_id}/reintegration")
def get_reintegration(household_id: UUID, _: Reader, views: Views, reads: Reads) -> dict[str, Any]:
    """The household's follow-up since its residence was registered: employment, services,
    the allowance and its end, the durable-solution assessments and the unmet IASC criteria."""
    found = views(queries.returnee, household_id)
    if found is None:
        raise NotFound("reintegration of household", household_id)
    reads.record("read reintegration", [household_id])
    return found
