"""Registry endpoints beyond registration: members, head, split, housing, vulnerabilities,
person corrections, IDP status, deaths, status references, and the registry queries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import FastAPI, Path, Query, Request
from pydantic import BaseModel, Field

from api.http_models import (
    FIN_PATTERN,
    VERIFICATION_CODE_PATTERN,
    CorrectableField,
    DistrictQuery,
    FinPath,
    FinQuery,
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
from domain.base import Actor, NotFound
from domain.registry import MAX_MEMBERS, NewMember
from infra.application import ReintegrationApplication
from infra.bootstrap import Container
from projections import households


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


def install(
    app: FastAPI,
    container: Container,
    require: Callable[..., Any],
    command: Callable[[Request, Actor], Any],
    audited_read: Callable[[Request, Actor, str, list[UUID]], None],
    write_roles: tuple[str, ...],
    read_roles: tuple[str, ...],
) -> None:
    def application() -> ReintegrationApplication:
        return container.application

    def done(household_id: UUID) -> dict[str, Any]:
        return {
            "household_id": household_id,
            "version": container.application.get_household(household_id).version,
        }

    @app.post("/api/v1/households/{household_id}/members", status_code=201, tags=["registry"])
    def add_member(
        household_id: UUID,
        body: AddMemberIn,
        request: Request,
        actor: Actor = require(*write_roles),
    ) -> dict[str, Any]:
        """A person joins the household (birth, marriage, adoption)."""
        member = NewMember(**body.model_dump(exclude={"reason"}))
        with command(request, actor):
            person_id = application().add_member(household_id, member, body.reason)
        return {**done(household_id), "person_id": person_id}

    @app.post("/api/v1/households/{household_id}/members/{person_id}/removal", tags=["registry"])
    def remove_member(
        household_id: UUID,
        person_id: UUID,
        body: RemoveMemberIn,
        request: Request,
        actor: Actor = require(*write_roles),
    ) -> dict[str, Any]:
        """A member leaves the household (death, marriage out, moved out)."""
        with command(request, actor):
            application().remove_member(household_id, person_id, body.reason, body.note)
        return done(household_id)

    @app.post("/api/v1/households/{household_id}/head", tags=["registry"])
    def change_head(
        household_id: UUID,
        body: ChangeHeadIn,
        request: Request,
        actor: Actor = require(*write_roles),
    ) -> dict[str, Any]:
        with command(request, actor):
            application().change_head(
                household_id, body.head_person_id, body.former_head_relationship, body.reason
            )
        return done(household_id)

    @app.post("/api/v1/households/{household_id}/split", status_code=201, tags=["registry"])
    def split(
        household_id: UUID, body: SplitIn, request: Request, actor: Actor = require(*write_roles)
    ) -> dict[str, Any]:
        """Members leave to form a new household; returns the new household's id."""
        with command(request, actor):
            new_id = application().split_household(
                household_id,
                body.head_person_id,
                body.relationships,
                body.current_address,
                body.reason,
            )
        return {"household_id": new_id, "split_from": household_id}

    @app.post("/api/v1/households/{household_id}/housing-condition", tags=["registry"])
    def housing(
        household_id: UUID,
        body: HousingConditionIn,
        request: Request,
        actor: Actor = require(*write_roles),
    ) -> dict[str, Any]:
        with command(request, actor):
            application().record_housing_condition(household_id, body.condition, body.note)
        return done(household_id)

    @app.post("/api/v1/households/{household_id}/circumstances", tags=["registry"])
    def circumstances(
        household_id: UUID,
        body: CircumstancesIn,
        request: Request,
        actor: Actor = require(*write_roles),
    ) -> dict[str, Any]:
        """Record what a verification found: the facts Resolution 65's exclusions depend on."""
        with command(request, actor):
            application().verify_circumstances(household_id, **body.model_dump())
        return done(household_id)

    @app.post("/api/v1/households/{household_id}/vulnerabilities", tags=["registry"])
    def vulnerability(
        household_id: UUID,
        body: VulnerabilityIn,
        request: Request,
        actor: Actor = require(*write_roles),
    ) -> dict[str, Any]:
        with command(request, actor):
            application().record_vulnerability(
                household_id, body.vulnerability, body.person_id, body.note
            )
        return done(household_id)

    @app.post("/api/v1/households/{household_id}/vulnerabilities/clearance", tags=["registry"])
    def clear_vulnerability(
        household_id: UUID,
        body: ClearVulnerabilityIn,
        request: Request,
        actor: Actor = require(*write_roles),
    ) -> dict[str, Any]:
        with command(request, actor):
            application().clear_vulnerability(
                household_id, body.vulnerability, body.person_id, body.reason
            )
        return done(household_id)

    def person_done(person: Any) -> dict[str, Any]:
        return {
            "person_id": person.id,
            "fin": person.fin,
            "version": person.version,
            "idp_status": person.idp_status,
        }

    @app.post("/api/v1/persons/{fin}/corrections", tags=["registry"])
    def correct(
        fin: FinPath, body: CorrectionIn, request: Request, actor: Actor = require(*write_roles)
    ) -> dict[str, Any]:
        """Correct one detail; the old value stays in the history."""
        with command(request, actor):
            person = application().correct_person(
                fin, body.field, body.new_value, body.reason, body.document_reference
            )
        return person_done(person)

    @app.post("/api/v1/persons/{fin}/idp-status/grant", tags=["registry"])
    def grant(
        fin: FinPath, body: GrantStatusIn, request: Request, actor: Actor = require(*write_roles)
    ) -> dict[str, Any]:
        with command(request, actor):
            person = application().grant_idp_status(
                fin, body.basis, body.effective_date, body.certificate_number
            )
        return person_done(person)

    @app.post("/api/v1/persons/{fin}/idp-status/end", tags=["registry"])
    def end(
        fin: FinPath, body: EndStatusIn, request: Request, actor: Actor = require(*write_roles)
    ) -> dict[str, Any]:
        with command(request, actor):
            person = application().end_idp_status(fin, body.basis, body.effective_date, body.reason)
        return person_done(person)

    @app.post("/api/v1/persons/{fin}/death", tags=["registry"])
    def death(
        fin: FinPath, body: DeathIn, request: Request, actor: Actor = require(*write_roles)
    ) -> dict[str, Any]:
        with command(request, actor):
            person = application().record_death(fin, body.date_of_death, body.document_reference)
        return person_done(person)

    @app.post("/api/v1/persons/{fin}/status-references", status_code=201, tags=["registry"])
    def issue_reference(
        fin: FinPath, request: Request, actor: Actor = require(*write_roles)
    ) -> dict[str, Any]:
        """Issue the citizen's IDP status reference, with a code integration clients verify."""
        with command(request, actor):
            person, code = application().issue_status_reference(fin)
        return {
            "verification_code": code,
            "fin": person.fin,
            "status": person.idp_status,
            "certificate_number": person.idp_certificate_number,
            "household_id": person.household_id,
            "issued_at": person.modified_on,
        }

    @app.get("/api/v1/status-references/{verification_code}", tags=["registry"])
    def verify_reference(
        verification_code: VerificationCodePath,
        fin: Annotated[str, Query(pattern=FIN_PATTERN, description="The citizen's FIN")],
        request: Request,
        actor: Actor = require("integration", *read_roles),
    ) -> dict[str, Any]:
        """Check a status reference: valid when the code was issued for this FIN. Gives the status
        stated on the reference and the person's current status."""
        with container.read_pool.connection() as conn, conn.cursor() as cur:
            found = households.get_status_reference(cur, verification_code)
        if found is None or found["fin"] != fin.upper():
            return {"valid": False}
        audited_read(request, actor, "verify status reference", [found["household_id"]])
        return {"valid": True, **found}

    @app.get("/api/v1/persons/{fin}", tags=["registry"])
    def get_person(
        fin: FinPath, request: Request, actor: Actor = require(*read_roles)
    ) -> dict[str, Any]:
        with container.read_pool.connection() as conn, conn.cursor() as cur:
            found = households.get_person(cur, fin)
        if found is None:
            raise NotFound("person with FIN", fin)
        audited_read(request, actor, "read person", [found["person_id"]])
        return found

    @app.get("/api/v1/persons", tags=["registry"])
    def search_persons(
        request: Request,
        name_prefix: NamePrefixQuery = None,
        origin_settlement: SettlementQuery = None,
        origin_district: DistrictQuery = None,
        idp_status: IdpStatus | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
        actor: Actor = require(*read_roles),
    ) -> dict[str, Any]:
        """Search persons: name prefix (last name first; Azerbaijani letters folded correctly)."""
        with container.read_pool.connection() as conn, conn.cursor() as cur:
            found = households.find_persons(
                cur,
                name_prefix=name_prefix,
                origin_settlement=origin_settlement,
                origin_district=origin_district,
                idp_status=idp_status,
                limit=limit,
                offset=offset,
            )
        if found:
            audited_read(request, actor, "search persons", [p["person_id"] for p in found])
        return {
            "items": found,
            "limit": limit,
            "offset": offset,
            "next_offset": offset + limit if len(found) == limit else None,
        }

    @app.get("/api/v1/households", tags=["registry"])
    def search_households(
        request: Request,
        fin: FinQuery = None,
        name_prefix: NamePrefixQuery = None,
        origin_settlement: SettlementQuery = None,
        origin_district: DistrictQuery = None,
        housing_condition: HousingCondition | None = None,
        vulnerability: Vulnerability | None = None,
        survey_status: Literal["none", "started", "completed"] | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
        actor: Actor = require(*read_roles),
    ) -> dict[str, Any]:
        """Search households; survey_status is none, started or completed (latest survey)."""
        with container.read_pool.connection() as conn, conn.cursor() as cur:
            found = households.find_households(
                cur,
                fin=fin,
                name_prefix=name_prefix,
                origin_settlement=origin_settlement,
                origin_district=origin_district,
                housing_condition=housing_condition,
                vulnerability=vulnerability,
                survey_status=survey_status,
                limit=limit,
                offset=offset,
            )
        if found:
            audited_read(request, actor, "search households", [h["household_id"] for h in found])
        return {
            "items": found,
            "limit": limit,
            "offset": offset,
            "next_offset": offset + limit if len(found) == limit else None,
        }
