"""The Great Return as a service: settlements and their units, lottery rounds and offers,
relocation steps and convoys, and reintegration follow-up.

Every command loads the aggregates it touches from the write model, acts, and saves them in one
transaction. The read model is used only to list the households originating from a settlement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

import structlog
from psycopg_pool import ConnectionPool

from domain import eligibility as el
from domain.base import FieldError, NotFound, ValidationFailed
from domain.geography import settlement as reference_settlement
from domain.housing import (
    LOTTERY_ALGORITHM,
    SEED_HASH_PATTERN,
    AllocationRound,
    Entrant,
    HousingStateError,
    RoundUnit,
    Settlement,
    draw,
    round_id,
    settlement_id,
    unit_errors,
    unit_text,
)
from domain.registry import COLLECTIVE_CENTRES
from domain.reintegration import Reintegration, reintegration_id
from domain.relocation import Convoy, Relocation, relocation_id, schedule_convoy
from infra.application import ReintegrationApplication
from infra.eligibility import Eligibility

log = structlog.get_logger(__name__)
OFFER_BATCH = 100  # households offered per transaction (two events each at most)
MAX_UNITS_PER_REQUEST = 1000  # over HTTP (a few hundred kilobytes); a CSV file may hold more


@dataclass
class LotteryCheck:
    """An auditor's re-run of a drawn round."""

    round_id: UUID
    settlement_code: str
    round_number: int
    seed_matches_commitment: bool
    assignments_match: bool
    reserve_matches: bool
    algorithm_version: str
    entrants: int
    units: int

    @property
    def matches(self) -> bool:
        return self.seed_matches_commitment and self.assignments_match and self.reserve_matches

    def as_dict(self) -> dict[str, Any]:
        return {
            **{k: (str(v) if isinstance(v, UUID) else v) for k, v in self.__dict__.items()},
            "matches": self.matches,
        }


class Housing:
    def __init__(
        self,
        application: ReintegrationApplication,
        read_pool: ConnectionPool[Any],
        eligibility: Eligibility,
    ) -> None:
        self.app = application
        self.read_pool = read_pool
        self.eligibility = eligibility

    # --- settlements -----------------------------------------------------------------------

    def settlement(self, code: str) -> Settlement:
        found: Settlement = self.app.get(settlement_id(code), f"settlement {code} in the programme")
        return found

    def register_settlement(self, code: str) -> Settlement:
        reference = reference_settlement(code)
        if reference is None:
            raise ValidationFailed([FieldError("code", "not a settlement of the reference data")])
        if self.app.recorder.select_events(settlement_id(code), limit=1):
            raise HousingStateError(f"{code} is already registered", "code")
        settlement = Settlement(code=code, name=reference.name_en)
        self.app.save_all(settlement)
        return settlement

    def certify_clearance(
        self, code: str, agency: str, certified_on: date, reference: str
    ) -> Settlement:
        settlement = self.settlement(code)
        settlement.certify_clearance(agency, certified_on, reference, date.today())
        self.app.save_all(settlement)
        return settlement

    def certify_readiness(
        self, code: str, items: list[str], certified_on: date, reference: str
    ) -> Settlement:
        settlement = self.settlement(code)
        settlement.certify_readiness(items, certified_on, reference)
        self.app.save_all(settlement)
        return settlement

    def open_for_return(self, code: str, opened_on: date) -> Settlement:
        settlement = self.settlement(code)
        settlement.open_for_return(opened_on)
        self.app.save_all(settlement)
        return settlement

    def register_units(self, code: str, units: list[dict[str, Any]]) -> list[UUID]:
        """Register units (reference, address, rooms, kind, floor): every unit is checked, then
        all are recorded in one transaction, or none."""
        settlement = self.settlement(code)
        parsed = []
        errors: list[FieldError] = []
        if not units:
            errors.append(FieldError("units", "at least one unit"))
        for i, unit in enumerate(units):
            try:
                values = (
                    str(unit.get("reference", "")),
                    str(unit.get("address", "")),
                    int(unit.get("rooms", 0)),
                    str(unit.get("kind", "")),
                    None if unit.get("floor") is None else int(unit["floor"]),
                )
            except (TypeError, ValueError, OverflowError):
                errors.append(FieldError(f"units[{i}]", "rooms and floor are whole numbers"))
                continue
            found: list[FieldError] = []
            unit_text(found, values[0], values[1])
            found += unit_errors(*values)
            errors += [FieldError(f"units[{i}].{e.field}", e.reason) for e in found]
            parsed.append(values)
        if errors:
            raise ValidationFailed(errors)
        ids = [settlement.register_unit(*values) for values in parsed]
        self.app.save_all(settlement)
        return ids

    # --- lottery rounds --------------------------------------------------------------------

    def rounds(self, code: str) -> list[AllocationRound]:
        counts = self.app.count_numbered(round_id, [code])
        return [self.app.get(round_id(code, n), "round") for n in range(1, counts[code] + 1)]

    def get_round(self, code: str, number: int) -> AllocationRound:
        found: AllocationRound = self.app.get(round_id(code, number), f"round {number} of {code}")
        return found

    def announce_round(self, code: str, seed_hash: str) -> AllocationRound:
        """Publish the round before the draw: the seed's hash, the eligible households in
        order and the available units. Nothing about them can change afterwards."""
        settlement = self.settlement(code)
        if settlement.opened_on is None:
            raise HousingStateError(f"{code} is not open for return: no allocation into it", "code")
        if not isinstance(seed_hash, str) or SEED_HASH_PATTERN.fullmatch(seed_hash) is None:
            raise ValidationFailed([FieldError("seed_hash", "sha256:<64 hex digits> of the seed")])
        earlier = self.rounds(code)
        if any(r.seed is None for r in earlier):
            raise HousingStateError("the previous round is not drawn yet", "round")
        cases = self.relocations(self._origin_households(code))
        if any(c.offer for c in cases.values()):
            # A new round's entrants and units must not change under it: the offers of the
            # last round are answered or expired first.
            raise HousingStateError(
                "offers of the previous round are still open: wait for answers or expire them",
                "round",
            )
        taken = {c.allocated_unit for c in cases.values() if c.allocated_unit}
        units = [
            RoundUnit(u.unit_id, u.rooms)
            for u in settlement.units.values()
            if u.unit_id not in taken
        ]
        if not units:
            raise HousingStateError(f"{code} has no unit available", "units")
        rule_set = self.eligibility.in_force()
        entrants = [
            e
            for e in self._eligible(code)
            if not ((case := cases.get(e.household_id)) and (case.allocated_unit or case.offer))
        ]
        if not entrants:
            raise HousingStateError(f"no eligible household originates from {code}", "entrants")
        announced = AllocationRound(
            settlement_code=code,
            round_number=len(earlier) + 1,
            seed_hash=seed_hash,
            algorithm_version=LOTTERY_ALGORITHM,
            entrants=entrants,
            units=sorted(units, key=lambda u: str(u.unit_id)),
            rule_set_code=rule_set.code,
            rule_set_version=rule_set.rule_set_version,
            offer_deadline_days=rule_set.parsed.offer_deadline_days,
        )
        self.app.save_all(announced)
        return announced

    def _eligible(self, code: str) -> list[Entrant]:
        """Households originating here whose current decision says eligible, in priority order."""
        ids = self._origin_households(code)
        counts = self.app.count_numbered(el.decision_id, ids)
        decisions = self.app.load_many([el.decision_id(h, n) for h, n in counts.items() if n])
        entrants = []
        for d in decisions.values():
            if d.effective_result != "eligible" or d.origin_settlement_code != code:
                continue
            entrants.append(
                Entrant(
                    household_id=d.household_id,
                    decision_id=d.id,
                    priority_group=d.effective_priority_group or "",
                    priority_rank=d.priority_rank or 99,
                    score=float(d.score or 0),
                    rooms_entitled=int(d.effective_rooms or d.rooms_entitled or 1),
                )
            )
        return sorted(entrants, key=lambda e: (e.priority_rank, -e.score, str(e.household_id)))

    def _origin_households(self, code: str) -> list[UUID]:
        with self.read_pool.connection() as conn:
            rows = conn.execute(
                "SELECT household_id FROM rm_households WHERE origin_settlement_code = %s",
                (code,),
            ).fetchall()
        return [r["household_id"] for r in rows]

    def relocations(self, household_ids: list[UUID]) -> dict[UUID, Relocation]:
        """The relocation cases of these households that have one, by household."""
        loaded = self.app.load_many([relocation_id(h) for h in household_ids])
        return {r.household_id: r for r in loaded.values()}

    def draw_round(self, code: str, number: int, seed: str, witnesses: str) -> AllocationRound:
        """Reveal the seed and draw; then offer every assigned unit (see offer_drawn)."""
        allocation_round = self.get_round(code, number)
        allocation_round.draw(seed, witnesses)
        self.app.save_all(allocation_round)
        self.offer_drawn(code, number)
        return allocation_round

    def offer_drawn(self, code: str, number: int, today: date | None = None) -> int:
        """Offer each drawn unit to its household (idempotent: run again after an interruption,
        it offers only what is not offered yet). Returns how many offers it made."""
        allocation_round = self.get_round(code, number)
        if allocation_round.seed is None:
            raise HousingStateError("the round is not drawn yet", "round")
        settlement = self.settlement(code)
        today = today or date.today()
        made = 0
        for start in range(0, len(allocation_round.assignments), OFFER_BATCH):
            chunk = allocation_round.assignments[start : start + OFFER_BATCH]
            cases = self.relocations([a.household_id for a in chunk])
            changed = []
            for a in chunk:
                case = cases.get(a.household_id) or Relocation(
                    household_id=a.household_id, settlement_code=code
                )
                if allocation_round.id in case.offers_received:
                    continue
                case.offer_housing(
                    allocation_round.id,
                    a.unit_id,
                    a.rooms,
                    settlement.units[a.unit_id].address,
                    today,
                    allocation_round.offer_deadline_days,
                    from_reserve=False,
                )
                changed.append(case)
            if changed:
                self.app.save_all(*changed)
                made += len(changed)
        return made

    def verify_lottery(self, code: str, number: int) -> LotteryCheck:
        """Re-run a drawn round from what it recorded: the seed against the published hash,
        then the draw on the recorded entrants and units."""
        from domain.housing import seed_hash

        r = self.get_round(code, number)
        if r.seed is None:
            raise HousingStateError("the round is not drawn yet", "round")
        assignments, reserve = draw(r.seed, r.entrants, r.units)
        return LotteryCheck(
            round_id=r.id,
            settlement_code=code,
            round_number=number,
            seed_matches_commitment=seed_hash(r.seed) == r.seed_hash,
            assignments_match=assignments == r.assignments,
            reserve_matches=reserve == r.reserve,
            algorithm_version=r.algorithm_version,
            entrants=len(r.entrants),
            units=len(r.units),
        )

    # --- offers ----------------------------------------------------------------------------

    def relocation(self, household_id: UUID) -> Relocation:
        found: Relocation = self.app.get(relocation_id(household_id), "relocation of household")
        return found

    def accept_offer(self, household_id: UUID) -> Relocation:
        case = self.relocation(household_id)
        case.accept_offer(date.today())
        self.app.save_all(case)
        return case

    def decline_offer(self, household_id: UUID, reason: str, note: str | None) -> Relocation | None:
        """Decline; the unit goes to the next household on the round's reserve list (returned)."""
        case = self.relocation(household_id)
        round_ref, unit = case.decline_offer(reason, note)
        successor = self._next_from_reserve(round_ref, unit)
        self.app.save_all(case, *([successor] if successor else []))
        return successor

    def expire_offers(self, code: str, today: date | None = None) -> list[tuple[UUID, UUID | None]]:
        """Expire every open offer of the settlement past its deadline; each unit goes to the
        next household on the reserve list. Run by a scheduler or an operator; idempotent."""
        today = today or date.today()
        results = []
        lapsed = [
            c
            for c in self.relocations(self._origin_households(code)).values()
            if c.offer is not None and today > c.offer["deadline"]
        ]
        for case in sorted(
            lapsed, key=lambda c: ((c.offer or {})["deadline"], str(c.household_id))
        ):
            round_ref, unit = case.expire_offer(today)
            successor = self._next_from_reserve(round_ref, unit, today)
            self.app.save_all(case, *([successor] if successor else []))
            results.append((case.household_id, successor.household_id if successor else None))
        return results

    def _next_from_reserve(
        self, round_ref: UUID, unit: UUID, today: date | None = None
    ) -> Relocation | None:
        allocation_round: AllocationRound = self.app.get(round_ref, "round")
        rooms = allocation_round.unit_rooms(unit)
        waiting = [p.household_id for p in allocation_round.reserve if p.rooms == rooms]
        cases = self.relocations(waiting)
        settlement = self.settlement(allocation_round.settlement_code)
        for household_id in waiting:
            case = cases.get(household_id)
            if case is not None and (
                round_ref in case.offers_received or case.offer or case.allocated_unit
            ):
                continue
            case = case or Relocation(
                household_id=household_id, settlement_code=allocation_round.settlement_code
            )
            case.offer_housing(
                round_ref,
                unit,
                rooms,
                settlement.units[unit].address,
                today or date.today(),
                allocation_round.offer_deadline_days,
                from_reserve=True,
            )
            return case
        return None

    # --- relocation ------------------------------------------------------------------------

    def give_consent(
        self, household_id: UUID, informed_of: list[str], document_reference: str, recorded_by: str
    ) -> Relocation:
        case = self._case_for(household_id)
        case.give_consent(informed_of, document_reference, recorded_by)
        self.app.save_all(case)
        return case

    def _case_for(self, household_id: UUID) -> Relocation:
        try:
            return self.relocation(household_id)
        except NotFound:
            household = self.app.get_household(household_id)
            return Relocation(
                household_id=household_id, settlement_code=household.origin_settlement_code
            )

    def withdraw_consent(self, household_id: UUID, reason: str) -> Relocation:
        case = self.relocation(household_id)
        case.withdraw_consent(reason)
        self.app.save_all(case)
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
        self.app.save_all(convoy, *cases)
        return convoy

    def convoy(self, convoy_id: UUID) -> Convoy:
        found: Convoy = self.app.get(convoy_id, "convoy")
        return found

    def convoy_departed(self, convoy_id: UUID, departed_on: date) -> list[UUID]:
        """Every family still in the convoy departs (one that withdrew is no longer in it)."""
        convoy = self.convoy(convoy_id)
        cases = [
            c for c in self.relocations(convoy.household_ids).values() if c.convoy_id == convoy_id
        ]
        for case in cases:
            case.depart(departed_on)
        self.app.save_all(*cases)
        return [c.household_id for c in cases]

    STEPS = ("arrive", "hand_over_keys", "connect_utility", "complete")
    FOLLOW_UPS = (
        "record_employment_need",
        "provide_employment",
        "enrol",
        "assess",
        "change_allowance",
    )

    def step(self, household_id: UUID, act: str, **kwargs: Any) -> Relocation:
        """One relocation step of a family: arrive, hand_over_keys, connect_utility, complete."""
        if act not in self.STEPS:
            raise ValueError(f"not a relocation step: {act}")
        case = self.relocation(household_id)
        getattr(case, act)(**kwargs)
        self.app.save_all(case)
        return case

    def register_residence(
        self, household_id: UUID, registered_on: date, registration_reference: str
    ) -> Relocation:
        """Register residence at the new address; the household's reintegration follow-up opens
        and its IDP allowance gets its end date (3 years after the settlement opened)."""
        case = self.relocation(household_id)
        case.register_residence(registered_on, registration_reference)
        follow_up = self._reintegration(household_id, case.settlement_code)
        settlement = self.settlement(case.settlement_code)
        household = self.app.get_household(household_id)
        if settlement.opened_on is not None and follow_up.allowance is None:
            follow_up.change_allowance(
                household.housing_condition in COLLECTIVE_CENTRES,
                settlement.opened_on,
                "residence registered in the settlement of return",
            )
        self.app.save_all(case, follow_up)
        return case

    # --- reintegration ---------------------------------------------------------------------

    def reintegration(self, household_id: UUID) -> Reintegration:
        found: Reintegration = self.app.get(
            reintegration_id(household_id), "reintegration of household"
        )
        return found

    def _reintegration(self, household_id: UUID, settlement_code: str) -> Reintegration:
        try:
            return self.reintegration(household_id)
        except NotFound:  # the first act opens the follow-up
            return Reintegration(household_id=household_id, settlement_code=settlement_code)

    def follow_up(self, household_id: UUID, act: str, **kwargs: Any) -> Reintegration:
        """One reintegration act: record_employment_need, provide_employment, enrol, assess,
        change_allowance. Only for a household whose residence is registered."""
        if act not in self.FOLLOW_UPS:
            raise ValueError(f"not a reintegration act: {act}")
        case = self.relocation(household_id)
        if case.stage not in ("residence_registered", "completed"):
            raise HousingStateError(
                "reintegration follows a registered residence in the settlement", "household_id"
            )
        follow_up = self._reintegration(household_id, case.settlement_code)
        getattr(follow_up, act)(**kwargs)
        self.app.save_all(follow_up)
        return follow_up
