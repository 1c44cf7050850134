"""Reintegration's use cases: the follow-up after a family registers residence in its
settlement (employment needs and jobs, services, durable-solution assessments)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from application.ports import EventStore
from domain.housing import HousingStateError
from domain.reintegration import Reintegration, reintegration_id
from domain.relocation import Relocation, relocation_id

ACTS = ("record_employment_need", "provide_employment", "enrol", "assess", "change_allowance")


class FollowUps:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    def reintegration(self, household_id: UUID) -> Reintegration:
        found: Reintegration = self.store.get(
            reintegration_id(household_id), "reintegration of household"
        )
        return found

    def follow_up(self, household_id: UUID, act: str, **kwargs: Any) -> Reintegration:
        """One reintegration act: record_employment_need, provide_employment, enrol, assess,
        change_allowance. Only for a household whose residence is registered."""
        if act not in ACTS:
            raise ValueError(f"not a reintegration act: {act}")
        case: Relocation = self.store.get(relocation_id(household_id), "relocation of household")
        if case.stage not in ("residence_registered", "completed"):
            raise HousingStateError(
                "reintegration follows a registered residence in the settlement", "household_id"
            )
        follow_up: Reintegration | None = self.store.find(reintegration_id(household_id))
        follow_up = follow_up or Reintegration(
            household_id=household_id, settlement_code=case.settlement_code
        )
        getattr(follow_up, act)(**kwargs)
        self.store.save(follow_up)
        return follow_up
