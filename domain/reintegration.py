"""Reintegration: what follows the move until displacement has durably ended.

Employment needs and jobs provided, services enrolled in, the IDP allowance's change (60 AZN a
month, 33 AZN in dense collective centres where the state pays utilities directly, since
1 Apr 2019; protection measures last 3 years from the date conditions for return are created,
Law 669-IQ of 21 May 1999), and durable-solution assessments against the IASC Framework's
eight criteria and the IRIS sub-criteria (return alone does not end displacement).
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain import text
from domain.base import (
    CaseAggregate,
    DomainError,
    FieldError,
    HouseholdCaseAggregate,
    HouseholdEvent,
    ValidationFailed,
)
from domain.registry import COLLECTIVE_CENTRES, MAX_MEMBERS
from domain.text import LINE, NAME, PARAGRAPH

REINTEGRATION_NAMESPACE = uuid5(NAMESPACE_URL, "urn:reintegration:reintegration")
SERVICES = ("school", "clinic", "kindergarten")
MAX_SECTORS = 20
SECTOR = LINE.at_most(100)
ALLOWANCE_AZN = 60
ALLOWANCE_COLLECTIVE_CENTRE_AZN = 33
PROTECTION_YEARS = 3
# IASC Framework on Durable Solutions for IDPs (2010): eight criteria.
IASC_CRITERIA = (
    "safety_and_security",
    "adequate_standard_of_living",
    "livelihoods_and_employment",
    "housing_land_and_property",
    "documentation",
    "family_reunification",
    "participation_in_public_affairs",
    "access_to_remedies",
)
# International Recommendations on IDP Statistics (2020): ten sub-criteria of five criteria.
IRIS_SUB_CRITERIA = (
    "victims_of_violence",
    "freedom_of_movement",
    "food_security",
    "adequate_housing",
    "access_to_health",
    "access_to_education",
    "employment",
    "economic_security",
    "property_restitution",
    "documentation",
)


class ReintegrationError(DomainError):
    pass


def reintegration_id(household_id: UUID) -> UUID:
    return uuid5(REINTEGRATION_NAMESPACE, str(household_id))


def protection_ends(conditions_created_on: date) -> date:
    """Protection measures (the allowance among them) last 3 years from the date conditions for
    return were created; 29 February falls back to 28 February."""
    try:
        return conditions_created_on.replace(year=conditions_created_on.year + PROTECTION_YEARS)
    except ValueError:
        return conditions_created_on.replace(
            year=conditions_created_on.year + PROTECTION_YEARS, day=28
        )


def monthly_allowance(in_collective_centre: bool) -> int:
    return ALLOWANCE_COLLECTIVE_CENTRE_AZN if in_collective_centre else ALLOWANCE_AZN


class Reintegration(HouseholdCaseAggregate):
    """One returnee household's follow-up."""

    class Opened(CaseAggregate.Created):
        household_id: UUID
        settlement_code: str

        @property
        def case_id(self) -> UUID:
            return self.household_id

    class EmploymentNeedRecorded(HouseholdEvent):
        persons_seeking_work: int
        sectors: list[str]
        note: str | None

    class EmploymentProvided(HouseholdEvent):
        person_fin: str
        employer: str
        programme: str | None
        start_date: date

    class ServiceEnrolled(HouseholdEvent):
        service: str
        institution: str
        person_fin: str | None
        enrolled_on: date

    class BenefitChanged(HouseholdEvent):
        benefit: str
        monthly_amount_azn: int
        conditions_created_on: date
        terminates_on: date
        reason: str

    class DurableSolutionAssessed(HouseholdEvent):
        framework: str
        criterion: str
        met: bool
        evidence: str
        assessor: str
        assessed_on: date

    @staticmethod
    def create_id(household_id: UUID, settlement_code: str) -> UUID:
        return reintegration_id(household_id)

    @event(Opened)
    def __init__(self, household_id: UUID, settlement_code: str) -> None:
        self.household_id = household_id
        self.settlement_code = settlement_code
        self.persons_seeking_work = 0
        self.employed: list[str] = []
        self.services: list[tuple[str, str | None]] = []
        self.allowance: dict[str, Any] | None = None
        self.assessments: dict[tuple[str, str], bool] = {}

    def record_employment_need(self, persons: int, sectors: list[str], note: str | None) -> None:
        errors: list[FieldError] = []
        if not 0 <= persons <= MAX_MEMBERS:
            errors.append(FieldError("persons_seeking_work", f"0 to {MAX_MEMBERS}"))
        if len(sectors) > MAX_SECTORS:
            errors.append(FieldError("sectors", f"at most {MAX_SECTORS}"))
        cleaned = [
            text.clean(errors, f"sectors[{i}]", sector, SECTOR, required="must not be empty") or ""
            for i, sector in enumerate(sectors[:MAX_SECTORS])
        ]
        cleaned_note = text.clean(errors, "note", note, PARAGRAPH)
        if errors:
            raise ValidationFailed(errors)
        self._need(persons_seeking_work=persons, sectors=cleaned, note=cleaned_note)

    @event(EmploymentNeedRecorded)
    def _need(self, persons_seeking_work: int, sectors: list[str], note: str | None) -> None:
        self.persons_seeking_work = persons_seeking_work

    def provide_employment(
        self, person_fin: str, employer: str, programme: str | None, start_date: date
    ) -> None:
        errors: list[FieldError] = []
        fin = text.clean_fin(errors, "person_fin", person_fin)
        by = text.clean(errors, "employer", employer, LINE, required="required")
        under = text.clean(errors, "programme", programme, LINE)
        if errors:
            raise ValidationFailed(errors)
        self._employed(
            person_fin=fin or "", employer=by or "", programme=under, start_date=start_date
        )

    @event(EmploymentProvided)
    def _employed(
        self, person_fin: str, employer: str, programme: str | None, start_date: date
    ) -> None:
        self.employed.append(person_fin)

    def enrol(
        self, service: str, institution: str, person_fin: str | None, enrolled_on: date
    ) -> None:
        errors: list[FieldError] = []
        if service not in SERVICES:
            errors.append(FieldError("service", f"one of {', '.join(SERVICES)}"))
        where = text.clean(errors, "institution", institution, LINE, required="required")
        fin = text.clean_fin(errors, "person_fin", person_fin) if person_fin else None
        if errors:
            raise ValidationFailed(errors)
        self._enrolled(
            service=service, institution=where or "", person_fin=fin, enrolled_on=enrolled_on
        )

    @event(ServiceEnrolled)
    def _enrolled(
        self, service: str, institution: str, person_fin: str | None, enrolled_on: date
    ) -> None:
        self.services.append((service, person_fin))

    def change_allowance(
        self, in_collective_centre: bool, conditions_created_on: date, reason: str
    ) -> None:
        """The IDP allowance continues at its amount until protection ends, 3 years after the
        conditions for return were created in the household's settlement."""
        why = text.required_text("reason", reason, LINE)
        amount = monthly_allowance(in_collective_centre)
        ends = protection_ends(conditions_created_on)
        if self.allowance == {"amount": amount, "terminates_on": ends}:
            raise ReintegrationError("the allowance already says that")
        self._benefit(
            benefit="idp_monthly_allowance",
            monthly_amount_azn=amount,
            conditions_created_on=conditions_created_on,
            terminates_on=ends,
            reason=why,
        )

    @event(BenefitChanged)
    def _benefit(
        self,
        benefit: str,
        monthly_amount_azn: int,
        conditions_created_on: date,
        terminates_on: date,
        reason: str,
    ) -> None:
        self.allowance = {"amount": monthly_amount_azn, "terminates_on": terminates_on}

    def assess(
        self,
        framework: str,
        criterion: str,
        met: bool,
        evidence: str,
        assessor: str,
        assessed_on: date,
    ) -> None:
        known = {"iasc": IASC_CRITERIA, "iris": IRIS_SUB_CRITERIA}
        errors = []
        if framework not in known:
            errors.append(FieldError("framework", "iasc or iris"))
        elif criterion not in known[framework]:
            errors.append(FieldError("criterion", f"one of {', '.join(known[framework])}"))
        found = text.clean(errors, "evidence", evidence, PARAGRAPH, required="required")
        by = text.clean(errors, "assessor", assessor, NAME, required="required")
        if errors:
            raise ValidationFailed(errors)
        self._assessed(
            framework=framework,
            criterion=criterion,
            met=met,
            evidence=found or "",
            assessor=by or "",
            assessed_on=assessed_on,
        )

    @event(DurableSolutionAssessed)
    def _assessed(
        self,
        framework: str,
        criterion: str,
        met: bool,
        evidence: str,
        assessor: str,
        assessed_on: date,
    ) -> None:
        self.assessments[(framework, criterion)] = met

    @property
    def unmet_criteria(self) -> list[str]:
        """IASC criteria not (yet) assessed as met."""
        return [c for c in IASC_CRITERIA if not self.assessments.get(("iasc", c), False)]


def start_allowance(
    follow_up: Reintegration, housing_condition: str | None, conditions_created_on: date | None
) -> None:
    """When a family registers residence in its settlement of return, its IDP allowance gets its
    end date: 3 years after the settlement opened (Law 669-IQ), at the rate of its housing
    before (33 AZN for a collective centre, else 60). Once."""
    if conditions_created_on is None or follow_up.allowance is not None:
        return
    follow_up.change_allowance(
        housing_condition in COLLECTIVE_CENTRES,
        conditions_created_on,
        "residence registered in the settlement of return",
    )
