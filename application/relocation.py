"""Relocation's use cases: a household's offer (accepted, declined or expired, each unit passing
to the next family on the reserve list), consent, convoys and the steps of the move."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from application.housing import get_settlement, relocations
from application.ports import EventStore
from domain import allocation
from domain.housing import AllocationRound, HousingStateError
from domain.registry import Household
from domain.reintegration import Reintegration, reintegration_id, start_allowance
from domain.relocation import Convoy, Relocation, relocation_id, schedule_convoy

STEPS = ("arrive", "hand_over_keys", "connect_utility", "complete")


class Relocations:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    def relocation(self, household_id: UUID) -> Relocation:
        found: Relocation = self.store.get(relocation_id(household_id), "relocation of household")
        return found

    def _case_for(self, household_id: UUID) -> Relocation:
        case: Relocation | None = self.store.find(relocation_id(household_id))
        if case is None:
            household: Household = self.store.get(household_id, "household")
            case = Relocation(
                household_id=household_id, settlement_code=household.origin_settlement_code
            )
        return case

    # --- offers ----------------------------------------------------------------------------

    def accept_offer(self, household_id: UUID) -> Relocation:
        case = self.relocation(household_id)
        case.accept_offer(date.today())
        self.store.save(case)
        return case

    def decline_offer(self, household_id: UUID, reason: str, note: str | None) -> Relocation | None:
        """Decline; the unit goes to the next household on the round's reserve list (returned)."""
        case = self.relocation(household_id)
        round_ref, unit = case.decline_offer(reason, note)
        successor = self._next_from_reserve(round_ref, unit, date.today())
        self.store.save(case, *([successor] if successor else []))
        return successor

    def expire_offers(self, code: str, today: date | None = None) -> list[tuple[UUID, UUID | None]]:
        """Expire every open offer of the settlement past its deadline; each unit goes to the
        next household on the reserve list. Run by a scheduler or an operator; idempotent."""
        today = today or date.today()
        results = []
        cases = relocations(self.store, self.store.households_originating_from(code))
        lapsed = [c for c in cases.values() if c.offer is not None and today > c.offer["deadline"]]
        for case in sorted(
            lapsed, key=lambda c: ((c.offer or {})["deadline"], str(c.household_id))
        ):
            round_ref, unit = case.expire_offer(today)
            successor = self._next_from_reserve(round_ref, unit, today)
            self.store.save(case, *([successor] if successor else []))
            results.append((case.household_id, successor.household_id if successor else None))
        return results

    def _next_from_reserve(self, round_ref: UUID, unit: UUID, today: date) -> Relocation | None:
        allocation_round: AllocationRound = self.store.get(round_ref, "round")
        settlement = get_settlement(self.store, allocation_round.settlement_code)
        waiting = allocation.reserve_households(allocation_round, unit)
        return allocation.next_on_reserve(
            allocation_round, settlement, unit, relocations(self.store, waiting), today
        )

    # --- consent and convoys ---------------------------------------------------------------

    def give_consent(
        self, household_id: UUID, informed_of: list[str], document_reference: str, recorded_by: str
    ) -> Relocation:
        case = self._case_for(household_id)
        case.give_consent(informed_of, document_reference, recorded_by)
        self.store.save(case)
        return case

    def withdraw_consent(self, household_id: UUID, reason: str) -> Relocation:
        case = self.relocation(household_id)
        case.withdraw_consent(reason)
        self.store.save(case)
        return case

    def schedule_convoy(
        self, code: str, departs_on: date, vehicles: int, household_ids: list[UUID]
    ) -> Convoy:
        """A convoy and each family's place in it, in one transaction: every family must have
        consented and been allocated a house in this settlement."""
        convoy = schedule_convoy(code, departs_on, vehicles, household_ids, date.today())
        cases = []
        for household_id in household_ids:
            case = self.relocation(household_id)
            if case.settlement_code != code:
                raise HousingStateError(
                    f"household {household_id} returns to {case.settlement_code}"
                )
            case.schedule(convoy.id, departs_on)
            cases.append(case)
        self.store.save(convoy, *cases)
        return convoy

    def convoy(self, convoy_id: UUID) -> Convoy:
        found: Convoy = self.store.get(convoy_id, "convoy")
        return found

    def convoy_departed(self, convoy_id: UUID, departed_on: date) -> list[UUID]:
        """Every family still in the convoy departs (one that withdrew is no longer in it)."""
        convoy = self.convoy(convoy_id)
        cases = [
            c
            for c in relocations(self.store, convoy.household_ids).values()
            if c.convoy_id == convoy_id
        ]
        for case in cases:
            case.depart(departed_on)
        self.store.save(*cases)
        return [c.household_id for c in cases]

    # --- the steps after departure ---------------------------------------------------------

    def step(self, household_id: UUID, act: str, **kwargs: Any) -> Relocation:
        """One relocation step of a family: arrive, hand_over_keys, connect_utility, complete."""
        if act not in STEPS:
            raise ValueError(f"not a relocation step: {act}")
        case = self.relocation(household_id)
        getattr(case, act)(**kwargs)
        self.store.save(case)
        return case

    def register_residence(
        self, household_id: UUID, registered_on: date, registration_reference: str
    ) -> Relocation:
        """Register residence at the new address; the household's reintegration follow-up opens
        and its IDP allowance gets its end date (3 years after the settlement opened)."""
        case = self.relocation(household_id)
        case.register_residence(registered_on, registration_reference)
        follow_up: Reintegration | None = self.store.find(reintegration_id(household_id))
        follow_up = follow_up or Reintegration(
            household_id=household_id, settlement_code=case.settlement_code
        )
        settlement = get_settlement(self.store, case.settlement_code)
        household: Household = self.store.get(household_id, "household")
        start_allowance(follow_up, household.housing_condition, settlement.opened_on)
        self.store.save(case, follow_up)
        return case
