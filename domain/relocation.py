"""Relocation: a household's way home, from the housing offer to the completed move.

Return is voluntary. An offer is accepted or declined (with a reason) or expires; nothing
moves without recorded, informed consent; consent can be withdrawn before departure without
penalty; the steps after it come in order: scheduled into a convoy, departed, arrived, keys
handed over, residence registered, utilities connected, completed.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

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
from domain.housing import settlement_id
from domain.registry import MAX_MEMBERS
from domain.text import IDENTIFIER, LINE, NAME, PARAGRAPH

RELOCATION_NAMESPACE = uuid5(NAMESPACE_URL, "urn:reintegration:relocation")
UTILITIES = ("electricity", "gas", "water", "internet")
STAGES = (
    "offered",
    "allocated",
    "consented",
    "scheduled",
    "departed",
    "arrived",
    "keys_handed_over",
    "residence_registered",
    "completed",
)
DECLINE_REASONS = ("location", "size", "condition", "not_ready_to_move", "other")
MAX_INFORMED_OF = 20
MAX_VEHICLES = 100
MAX_CONVOY_HOUSEHOLDS = 200


class RelocationError(DomainError):
    pass


class RelocationStateError(RelocationError):
    """A step out of order, or one the case's state does not allow (HTTP 409)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def relocation_id(household_id: UUID) -> UUID:
    return uuid5(RELOCATION_NAMESPACE, str(household_id))


class Relocation(HouseholdCaseAggregate):
    """One household's relocation case."""

    class Opened(CaseAggregate.Created):
        household_id: UUID
        settlement_code: str

        @property
        def case_id(self) -> UUID:
            return self.household_id

    class HousingOffered(HouseholdEvent):
        round_id: UUID
        unit_id: UUID
        rooms: int
        address: str
        deadline: date
        from_reserve: bool

    class HousingOfferAccepted(HouseholdEvent):
        round_id: UUID
        unit_id: UUID
        address: str

    class HousingOfferDeclined(HouseholdEvent):
        round_id: UUID
        unit_id: UUID
        reason: str
        note: str | None

    class HousingOfferExpired(HouseholdEvent):
        round_id: UUID
        unit_id: UUID
        deadline: date

    class ConsentToReturnGiven(HouseholdEvent):
        informed_of: list[str]
        document_reference: str
        recorded_by: str

    class ConsentWithdrawn(HouseholdEvent):
        reason: str

    class RelocationScheduled(HouseholdEvent):
        convoy_id: UUID
        departs_on: date

    class FamilyDeparted(HouseholdEvent):
        convoy_id: UUID
        departed_on: date

    class FamilyArrived(HouseholdEvent):
        arrived_on: date
        members_arrived: int

    class KeysHandedOver(HouseholdEvent):
        unit_id: UUID
        handed_over_on: date

    class ResidenceRegistered(HouseholdEvent):
        address: str
        registered_on: date
        registration_reference: str

    class UtilityConnected(HouseholdEvent):
        utility: str
        connected_on: date
        account_reference: str | None

    class RelocationCompleted(HouseholdEvent):
        completed_on: date

    @staticmethod
    def create_id(household_id: UUID, settlement_code: str) -> UUID:
        return relocation_id(household_id)

    @event(Opened)
    def __init__(self, household_id: UUID, settlement_code: str) -> None:
        self.household_id = household_id
        self.settlement_code = settlement_code
        self.offer: dict[str, Any] | None = None  # the open offer
        self.allocated_unit: UUID | None = None
        self.allocated_address: str | None = None
        self.offers_received: list[UUID] = []  # rounds the household was offered in
        self.consent = False
        self.convoy_id: UUID | None = None
        self.stage = "opened"
        self.utilities: list[str] = []
        self.residence_address: str | None = None

    # --- offers ----------------------------------------------------------------------------

    def offer_housing(
        self,
        round_id: UUID,
        unit_id: UUID,
        rooms: int,
        address: str,
        offered_on: date,
        deadline_days: int,
        from_reserve: bool,
    ) -> None:
        if self.offer is not None:
            raise RelocationStateError("the household already holds an open offer", "household_id")
        if self.allocated_unit is not None:
            raise RelocationStateError("the household already has a house", "household_id")
        self._offered(
            round_id=round_id,
            unit_id=unit_id,
            rooms=rooms,
            address=address,
            deadline=offered_on + timedelta(days=deadline_days),
            from_reserve=from_reserve,
        )

    @event(HousingOffered)
    def _offered(
        self,
        round_id: UUID,
        unit_id: UUID,
        rooms: int,
        address: str,
        deadline: date,
        from_reserve: bool,
    ) -> None:
        self.offer = {
            "round_id": round_id,
            "unit_id": unit_id,
            "address": address,
            "deadline": deadline,
        }
        self.offers_received.append(round_id)
        self.stage = "offered"

    def accept_offer(self, today: date) -> None:
        offer = self._open_offer()
        if today > offer["deadline"]:
            raise RelocationStateError(f"the offer expired on {offer['deadline']}", "deadline")
        self._accepted(
            round_id=offer["round_id"], unit_id=offer["unit_id"], address=offer["address"]
        )

    @event(HousingOfferAccepted)
    def _accepted(self, round_id: UUID, unit_id: UUID, address: str) -> None:
        self.allocated_unit = unit_id
        self.allocated_address = address
        self.offer = None
        self.stage = "consented" if self.consent else "allocated"

    def decline_offer(self, reason: str, note: str | None) -> tuple[UUID, UUID]:
        offer = self._open_offer()
        errors: list[FieldError] = []
        if reason not in DECLINE_REASONS:
            errors.append(FieldError("reason", f"one of {', '.join(DECLINE_REASONS)}"))
        cleaned_note = text.clean(errors, "note", note, PARAGRAPH)
        if errors:
            raise ValidationFailed(errors)
        self._declined(
            round_id=offer["round_id"], unit_id=offer["unit_id"], reason=reason, note=cleaned_note
        )
        return offer["round_id"], offer["unit_id"]

    @event(HousingOfferDeclined)
    def _declined(self, round_id: UUID, unit_id: UUID, reason: str, note: str | None) -> None:
        self.offer = None
        self.stage = "opened"

    def expire_offer(self, today: date) -> tuple[UUID, UUID]:
        offer = self._open_offer()
        if today <= offer["deadline"]:
            raise RelocationStateError(f"the offer is open until {offer['deadline']}", "deadline")
        self._expired(
            round_id=offer["round_id"], unit_id=offer["unit_id"], deadline=offer["deadline"]
        )
        return offer["round_id"], offer["unit_id"]

    @event(HousingOfferExpired)
    def _expired(self, round_id: UUID, unit_id: UUID, deadline: date) -> None:
        self.offer = None
        self.stage = "opened"

    def _open_offer(self) -> dict[str, Any]:
        if self.offer is None:
            raise RelocationStateError("the household holds no open offer", "household_id")
        return self.offer

    # --- consent and the move --------------------------------------------------------------

    def give_consent(
        self, informed_of: list[str], document_reference: str, recorded_by: str
    ) -> None:
        errors: list[FieldError] = []
        if not informed_of:
            errors.append(
                FieldError(
                    "informed_of", "what the family was informed of (house, date, services…)"
                )
            )
        elif len(informed_of) > MAX_INFORMED_OF:
            errors.append(FieldError("informed_of", f"at most {MAX_INFORMED_OF} items"))
        topics = [
            text.clean(errors, f"informed_of[{i}]", item, LINE, required="must not be empty") or ""
            for i, item in enumerate(informed_of[:MAX_INFORMED_OF])
        ]
        reference = text.clean(
            errors,
            "document_reference",
            document_reference,
            IDENTIFIER,
            required="the signed consent form's reference",
        )
        taken_by = text.clean(
            errors, "recorded_by", recorded_by, NAME, required="who took the consent"
        )
        if errors:
            raise ValidationFailed(errors)
        if self.consent:
            raise RelocationStateError("consent is already recorded")
        if self.stage in (
            "departed",
            "arrived",
            "keys_handed_over",
            "residence_registered",
            "completed",
        ):
            raise RelocationStateError("the family has already moved")
        self._consented(
            informed_of=topics, document_reference=reference or "", recorded_by=taken_by or ""
        )

    @event(ConsentToReturnGiven)
    def _consented(self, informed_of: list[str], document_reference: str, recorded_by: str) -> None:
        self.consent = True
        if self.stage == "allocated":
            self.stage = "consented"

    def withdraw_consent(self, reason: str) -> None:
        if not self.consent:
            raise RelocationStateError("there is no consent to withdraw")
        if self.stage not in ("opened", "offered", "allocated", "consented", "scheduled"):
            raise RelocationStateError("consent can be withdrawn only before departure")
        self._withdrawn(reason=text.required_text("reason", reason, LINE))

    @event(ConsentWithdrawn)
    def _withdrawn(self, reason: str) -> None:
        self.consent = False
        self.convoy_id = None
        self.stage = "allocated" if self.allocated_unit else "opened"

    def schedule(self, convoy_id: UUID, departs_on: date) -> None:
        self._needs_consent("scheduled into a convoy")
        if self.allocated_unit is None:
            raise RelocationStateError("the family has no house allocated yet")
        if self.convoy_id is not None:
            raise RelocationStateError("the family is already scheduled into a convoy")
        self._scheduled(convoy_id=convoy_id, departs_on=departs_on)

    @event(RelocationScheduled)
    def _scheduled(self, convoy_id: UUID, departs_on: date) -> None:
        self.convoy_id = convoy_id
        self.stage = "scheduled"

    def depart(self, departed_on: date) -> None:
        self._needs_consent("moved")
        self._must_be("scheduled", "depart")
        if self.convoy_id is None:  # scheduled always sets it; kept for the type checker
            raise RelocationStateError("the family is in no convoy")
        self._departed(convoy_id=self.convoy_id, departed_on=departed_on)

    @event(FamilyDeparted)
    def _departed(self, convoy_id: UUID, departed_on: date) -> None:
        self.stage = "departed"

    def arrive(self, arrived_on: date, members_arrived: int) -> None:
        self._must_be("departed", "arrive")
        if not 1 <= members_arrived <= MAX_MEMBERS:
            raise ValidationFailed([FieldError("members_arrived", f"1 to {MAX_MEMBERS}")])
        self._arrived(arrived_on=arrived_on, members_arrived=members_arrived)

    @event(FamilyArrived)
    def _arrived(self, arrived_on: date, members_arrived: int) -> None:
        self.stage = "arrived"

    def hand_over_keys(self, handed_over_on: date) -> None:
        self._must_be("arrived", "receive the keys")
        if self.allocated_unit is None:  # scheduling required one; kept for the type checker
            raise RelocationStateError("the family has no house allocated")
        self._keys(unit_id=self.allocated_unit, handed_over_on=handed_over_on)

    @event(KeysHandedOver)
    def _keys(self, unit_id: UUID, handed_over_on: date) -> None:
        self.stage = "keys_handed_over"

    def register_residence(self, registered_on: date, registration_reference: str) -> None:
        self._must_be("keys_handed_over", "register residence")
        reference = text.required_text("registration_reference", registration_reference, IDENTIFIER)
        self._resident(
            address=self.allocated_address or "",
            registered_on=registered_on,
            registration_reference=reference,
        )

    @event(ResidenceRegistered)
    def _resident(self, address: str, registered_on: date, registration_reference: str) -> None:
        self.residence_address = address
        self.stage = "residence_registered"

    def connect_utility(
        self, utility: str, connected_on: date, account_reference: str | None
    ) -> None:
        if utility not in UTILITIES:
            raise ValidationFailed([FieldError("utility", f"one of {', '.join(UTILITIES)}")])
        account = text.optional_text("account_reference", account_reference, IDENTIFIER)
        if self.stage not in ("keys_handed_over", "residence_registered"):
            raise RelocationStateError(
                f"utilities are connected once the keys are handed over (the case is {self.stage})",
                "utility",
            )
        if utility in self.utilities:
            raise RelocationStateError(f"{utility} is already connected", "utility")
        self._connected(utility=utility, connected_on=connected_on, account_reference=account)

    @event(UtilityConnected)
    def _connected(self, utility: str, connected_on: date, account_reference: str | None) -> None:
        self.utilities.append(utility)

    def complete(self, completed_on: date) -> None:
        self._must_be("residence_registered", "be completed")
        missing = [u for u in UTILITIES if u not in self.utilities and u != "internet"]
        if missing:
            raise RelocationStateError(f"not connected yet: {', '.join(missing)}", "utilities")
        self._completed(completed_on=completed_on)

    @event(RelocationCompleted)
    def _completed(self, completed_on: date) -> None:
        self.stage = "completed"

    def _needs_consent(self, what: str) -> None:
        if not self.consent:
            raise RelocationStateError(
                f"nothing moves without the family's consent: it cannot be {what}", "consent"
            )

    def _must_be(self, stage: str, act: str) -> None:
        if self.stage != stage:
            raise RelocationStateError(
                f"the family is at stage {self.stage}: it must be {stage} to {act}", "stage"
            )


class Convoy(CaseAggregate):
    """A convoy of families to a settlement on a date."""

    class Scheduled(CaseAggregate.Created):
        settlement_code: str
        departs_on: date
        vehicles: int
        household_ids: list[UUID]

        @property
        def partition_key(self) -> UUID:
            return settlement_id(self.settlement_code)

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return uuid4()

    @event(Scheduled)
    def __init__(
        self, settlement_code: str, departs_on: date, vehicles: int, household_ids: list[UUID]
    ) -> None:
        self.settlement_code = settlement_code
        self.departs_on = departs_on
        self.vehicles = vehicles
        self.household_ids = list(household_ids)


def schedule_convoy(
    settlement_code: str, departs_on: date, vehicles: int, household_ids: list[UUID], today: date
) -> Convoy:
    errors = []
    if departs_on < today:
        errors.append(FieldError("departs_on", "cannot be in the past"))
    if not 1 <= vehicles <= MAX_VEHICLES:
        errors.append(FieldError("vehicles", f"1 to {MAX_VEHICLES}"))
    if not household_ids or len(set(household_ids)) != len(household_ids):
        errors.append(FieldError("household_ids", "one or more distinct households"))
    elif len(household_ids) > MAX_CONVOY_HOUSEHOLDS:
        errors.append(FieldError("household_ids", f"at most {MAX_CONVOY_HOUSEHOLDS} households"))
    if errors:
        raise ValidationFailed(errors)
    return Convoy(
        settlement_code=settlement_code,
        departs_on=departs_on,
        vehicles=vehicles,
        household_ids=list(household_ids),
    )
