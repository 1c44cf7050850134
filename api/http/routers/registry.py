"""The registry over HTTP: households and their members, heads, splits, housing conditions,
circumstances and vulnerabilities; persons' corrections, IDP status, deaths and status
references; and the registry's searches."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import structlog
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from api.http.boundary import Utf8JsonRoute
from api.http.dependencies import (
    Handler,
    Reader,
    Reads,
    Use,
    Verifier,
    Views,
    Writer,
    container,
)
from api.http.models import (
    FIN_PATTERN,
    VERIFICATION_CODE_PATTERN,
    CorrectableField,
    DistrictQuery,
    FinPath,
    FinQuery,
    HouseholdIn,
    HousingCondition,
    Identifier,
    IdpStatus,
    Limit,
    Line,
    MemberAddedReason,
    MemberIn,
    MemberRemovedReason,
    NamePrefixQuery,
    Offset,
    Paragraph,
    Relationship,
    SettlementQuery,
    Strict,
    Vulnerability,
)
from api.http.scopes import query_districts
from domain.base import NotFound
from domain.registry import MAX_MEMBERS, NewMember, Person, RegisterHousehold
from infra import access_log
from projections.queries import households

log = structlog.get_logger("api")
router = APIRouter(tags=["registry"], route_class=Utf8JsonRoute)


class HouseholdCreated(BaseModel):
    household_id: UUID


class MemberView(BaseModel):
    person_id: UUID
    fin: str
    relationship: str
    first_name: str | None
    last_name: str | None
    patronymic: str | None
    birth_date: date | None
    sex: str | None
    idp_status: str | None
    idp_certificate_number: str | None
    date_of_death: date | None


class HouseholdView(BaseModel):
    household_id: UUID
    head_person_id: UUID
    origin_settlement_code: str
    origin_district_code: str | None
    current_address: str
    contact_phone: str | None
    housing_condition: str | None
    vulnerabilities: list[str]
    split_from: UUID | None
    latest_survey: dict[str, Any] | None
    registered_at: datetime
    registered_by: str
    version: int
    updated_at: datetime
    members: list[MemberView]


class AddMemberIn(MemberIn):
    reason: MemberAddedReason = Field(description="Why the person joins", examples=["birth"])


class RemoveMemberIn(BaseModel):
    model_config = Strict
    reason: MemberRemovedReason = Field(description="Why the member leaves")
    note: Paragraph | None = None


class ChangeHeadIn(BaseModel):
    model_config = Strict
    head_person_id: UUID
    former_head_relationship: Relationship = Field(
        description="The former head's relationship to the new head (not head)"
    )
    reason: Line


class SplitIn(BaseModel):
    model_config = Strict
    head_person_id: UUID = Field(
        description="Head of the new household (one of the members split off)"
    )
    relationships: dict[UUID, Relationship] = Field(
        description="Every member split off and their relationship to the new head",
        max_length=MAX_MEMBERS,
    )
    current_address: Line
    reason: Line


class HousingConditionIn(BaseModel):
    model_config = Strict
    condition: HousingCondition
    note: Paragraph | None = None


class CircumstancesIn(BaseModel):
    model_config = Strict
    living_at_registered_address: bool = Field(
        description="The family was found actually living at its registered address"
    )
    private_housing_after_displacement: bool = Field(
        description="Private housing acquired after displacement was found"
    )
    sham_marriage_or_divorce: bool = Field(description="A sham marriage or divorce was found")
    verified_on: date
    document_reference: Identifier = Field(description="Reference of the verification act")
    note: Paragraph | None = None


class VulnerabilityIn(BaseModel):
    model_config = Strict
    vulnerability: Vulnerability
    person_id: UUID | None = Field(
        default=None, description="The member concerned, if it is one member's"
    )
    note: Paragraph | None = None


class ClearVulnerabilityIn(BaseModel):
    model_config = Strict
    vulnerability: Vulnerability
    person_id: UUID | None = None
    reason: Line


class CorrectionIn(BaseModel):
    model_config = Strict
    field: CorrectableField
    new_value: Line | None = Field(
        description="Names and references as text, dates as YYYY-MM-DD, sex as female or male; "
        "null clears an optional detail"
    )
    reason: Line
    document_reference: Identifier | None = None


class GrantStatusIn(BaseModel):
    model_config = Strict
    basis: Line = Field(description="Legal or administrative basis")
    effective_date: date
    certificate_number: Identifier | None = None


class EndStatusIn(BaseModel):
    model_config = Strict
    basis: Line
    effective_date: date
    reason: Line


class DeathIn(BaseModel):
    model_config = Strict
    date_of_death: date
    document_reference: Identifier | None = None


VerificationCodePath = Annotated[
    str, Path(pattern=VERIFICATION_CODE_PATTERN, description="The reference's verification code")
]


def changed(use: Use, household_id: UUID) -> dict[str, Any]:
    return {
        "household_id": household_id,
        "version": use.registry.get_household(household_id).version,
    }


def person_changed(person: Person) -> dict[str, Any]:
    return {
        "person_id": person.id,
        "fin": person.fin,
        "version": person.version,
        "idp_status": person.idp_status,
    }


def page(
    found: list[dict[str, Any]], limit: int, offset: int, total: int | None = None
) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "items": found,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if len(found) == limit else None,
    }
    if total is not None:
        answer["total"] = total
        answer["next_offset"] = offset + limit if offset + limit < total else None
    return answer


WithTotal = Annotated[
    bool,
    Query(
        description="Also count every match (`total`), for a pager that shows it: one more "
        "query over the whole result."
    ),
]


# --- households --------------------------------------------------------------------------


@router.post("/api/v1/households", status_code=201, response_model=HouseholdCreated)
def register_household(
    body: HouseholdIn, response: Response, _: Writer, use: Use
) -> HouseholdCreated:
    """Register a household (the case) with all its members. 409 when a member's FIN is
    already registered (the problem names the member)."""
    registration = RegisterHousehold(
        members=[NewMember(**m.model_dump()) for m in body.members],
        origin_settlement_code=body.origin_settlement_code,
        current_address=body.current_address,
        contact_phone=body.contact_phone,
    )
    household_id = use.registry.register_household(registration)
    log.info("household registered", household_id=str(household_id))
    response.headers["Location"] = f"/api/v1/households/{household_id}"
    return HouseholdCreated(household_id=household_id)


@router.get("/api/v1/households/{household_id}", response_model=HouseholdView)
def get_household(household_id: UUID, _: Reader, views: Views, reads: Reads) -> dict[str, Any]:
    found = views(households.get_household, household_id)
    if found is None:
        raise NotFound("household", household_id)
    reads.record("read household", [household_id, *(m["person_id"] for m in found["members"])])
    return found


@router.post("/api/v1/households/{household_id}/members", status_code=201)
def add_member(household_id: UUID, body: AddMemberIn, _: Writer, use: Use) -> dict[str, Any]:
    """A person joins the household (birth, marriage, adoption)."""
    member = NewMember(**body.model_dump(exclude={"reason"}))
    person_id = use.registry.add_member(household_id, member, body.reason)
    return {**changed(use, household_id), "person_id": person_id}


@router.post("/api/v1/households/{household_id}/members/{person_id}/removal")
def remove_member(
    household_id: UUID, person_id: UUID, body: RemoveMemberIn, _: Writer, use: Use
) -> dict[str, Any]:
    """A member leaves the household (death, marriage out, moved out)."""
    use.registry.remove_member(household_id, person_id, body.reason, body.note)
    return changed(use, household_id)


@router.post("/api/v1/households/{household_id}/head")
def change_head(household_id: UUID, body: ChangeHeadIn, _: Writer, use: Use) -> dict[str, Any]:
    use.registry.change_head(
        household_id, body.head_person_id, body.former_head_relationship, body.reason
    )
    return changed(use, household_id)


@router.post("/api/v1/households/{household_id}/split", status_code=201)
def split(household_id: UUID, body: SplitIn, _: Writer, use: Use) -> dict[str, Any]:
    """Members leave to form a new household; returns the new household's id."""
    new_id = use.registry.split_household(
        household_id, body.head_person_id, body.relationships, body.current_address, body.reason
    )
    return {"household_id": new_id, "split_from": household_id}


@router.post("/api/v1/households/{household_id}/housing-condition")
def housing(household_id: UUID, body: HousingConditionIn, _: Writer, use: Use) -> dict[str, Any]:
    use.registry.record_housing_condition(household_id, body.condition, body.note)
    return changed(use, household_id)


@router.post("/api/v1/households/{household_id}/circumstances")
def circumstances(household_id: UUID, body: CircumstancesIn, _: Writer, use: Use) -> dict[str, Any]:
    """Record what a verification found: the facts Resolution 65's exclusions depend on."""
    use.registry.verify_circumstances(household_id, **body.model_dump())
    return changed(use, household_id)


@router.post("/api/v1/households/{household_id}/vulnerabilities")
def vulnerability(household_id: UUID, body: VulnerabilityIn, _: Writer, use: Use) -> dict[str, Any]:
    use.registry.record_vulnerability(household_id, body.vulnerability, body.person_id, body.note)
    return changed(use, household_id)


@router.post("/api/v1/households/{household_id}/vulnerabilities/clearance")
def clear_vulnerability(
    household_id: UUID, body: ClearVulnerabilityIn, _: Writer, use: Use
) -> dict[str, Any]:
    use.registry.clear_vulnerability(household_id, body.vulnerability, body.person_id, body.reason)
    return changed(use, household_id)


# --- persons -----------------------------------------------------------------------------


@router.post("/api/v1/persons/{fin}/corrections")
def correct(fin: FinPath, body: CorrectionIn, _: Writer, use: Use) -> dict[str, Any]:
    """Correct one detail; the old value stays in the history."""
    person = use.registry.correct_person(
        fin, body.field, body.new_value, body.reason, body.document_reference
    )
    return person_changed(person)


@router.post("/api/v1/persons/{fin}/idp-status/grant")
def grant(fin: FinPath, body: GrantStatusIn, _: Writer, use: Use) -> dict[str, Any]:
    person = use.registry.grant_idp_status(
        fin, body.basis, body.effective_date, body.certificate_number
    )
    return person_changed(person)


@router.post("/api/v1/persons/{fin}/idp-status/end")
def end(fin: FinPath, body: EndStatusIn, _: Writer, use: Use) -> dict[str, Any]:
    person = use.registry.end_idp_status(fin, body.basis, body.effective_date, body.reason)
    return person_changed(person)


@router.post("/api/v1/persons/{fin}/death")
def death(fin: FinPath, body: DeathIn, _: Writer, use: Use) -> dict[str, Any]:
    person = use.registry.record_death(fin, body.date_of_death, body.document_reference)
    return person_changed(person)


@router.post("/api/v1/persons/{fin}/status-references", status_code=201)
def issue_reference(fin: FinPath, _: Writer, use: Use) -> dict[str, Any]:
    """Issue the citizen's IDP status reference, with a code integration clients verify."""
    person, code = use.registry.issue_status_reference(fin)
    return {
        "verification_code": code,
        "fin": person.fin,
        "status": person.idp_status,
        "certificate_number": person.idp_certificate_number,
        "household_id": person.household_id,
        "issued_at": person.modified_on,
    }


@router.get("/api/v1/status-references/{verification_code}")
def verify_reference(
    verification_code: VerificationCodePath,
    fin: Annotated[str, Query(pattern=FIN_PATTERN, description="The citizen's FIN")],
    _: Verifier,
    views: Views,
    reads: Reads,
) -> dict[str, Any]:
    """Check a status reference: valid when the code was issued for this FIN. Gives the status
    stated on the reference and the person's current status."""
    found = views(households.get_status_reference, verification_code)
    if found is None or found["fin"] != fin.upper():
        return {"valid": False}
    reads.record("verify status reference", [found["household_id"]])
    return {"valid": True, **found}


@router.get("/api/v1/persons/{fin}")
def get_person(fin: FinPath, _: Reader, views: Views, reads: Reads) -> dict[str, Any]:
    found = views(households.get_person, fin)
    if found is None:
        raise NotFound("person with that FIN")
    reads.record("read person", [found["person_id"]])
    return found


@router.get("/api/v1/persons/{fin}/access-report")
def access_report(
    fin: FinPath, request: Request, _: Handler, views: Views, reads: Reads
) -> dict[str, Any]:
    """Who read this person's file (or their household's), when, in which role and why: for an
    operator answering the person's request. Search terms are left out (they name others)."""
    found = views(households.get_person, fin)
    if found is None:
        raise NotFound("person with that FIN")
    subjects = [found["person_id"], *([found["household_id"]] if found["household_id"] else [])]
    entries = access_log.report(container(request).read_pool, subjects)
    reads.record("read access report", subjects)
    return {"person_id": found["person_id"], "entries": entries}


@router.get("/api/v1/persons")
def search_persons(
    actor: Reader,
    views: Views,
    reads: Reads,
    name_prefix: NamePrefixQuery = None,
    origin_settlement: SettlementQuery = None,
    origin_district: DistrictQuery = None,
    idp_status: IdpStatus | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
    total: WithTotal = False,
) -> dict[str, Any]:
    """Search persons: name prefix (last name first; Azerbaijani letters folded correctly)."""
    filters: dict[str, Any] = {
        "name_prefix": name_prefix,
        "origin_settlement": origin_settlement,
        "origin_district": origin_district,
        "idp_status": idp_status,
        "districts": query_districts(actor),
    }
    found = views(households.find_persons, limit=limit, offset=offset, **filters)
    counted = views(households.count_persons, **filters) if total else None
    terms = {
        "name_prefix": name_prefix,
        "origin_settlement": origin_settlement,
        "origin_district": origin_district,
        "idp_status": idp_status,
    }
    reads.record("search persons", [p["person_id"] for p in found], terms)
    return page(found, limit, offset, counted)


@router.get("/api/v1/households")
def search_households(
    actor: Reader,
    views: Views,
    reads: Reads,
    fin: FinQuery = None,
    name_prefix: NamePrefixQuery = None,
    origin_settlement: SettlementQuery = None,
    origin_district: DistrictQuery = None,
    housing_condition: HousingCondition | None = None,
    vulnerability: Vulnerability | None = None,
    survey_status: Literal["none", "started", "completed"] | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
    total: WithTotal = False,
) -> dict[str, Any]:
    """Search households; survey_status is none, started or completed (latest survey)."""
    filters: dict[str, Any] = {
        "fin": fin,
        "name_prefix": name_prefix,
        "origin_settlement": origin_settlement,
        "origin_district": origin_district,
        "housing_condition": housing_condition,
        "vulnerability": vulnerability,
        "survey_status": survey_status,
        "districts": query_districts(actor),
    }
    found = views(households.find_households, limit=limit, offset=offset, **filters)
    counted = views(households.count_households, **filters) if total else None
    terms = {
        "fin": fin,
        "name_prefix": name_prefix,
        "origin_settlement": origin_settlement,
        "origin_district": origin_district,
        "housing_condition": housing_condition,
        "vulnerability": vulnerability,
        "survey_status": survey_status,
    }
    reads.record("search households", [h["household_id"] for h in found], terms)
    return page(found, limit, offset, counted)
