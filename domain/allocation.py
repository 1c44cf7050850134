"""The policy of allocating houses: when a lottery round may be announced, who enters it and in
what order, which units it draws, and who is offered a unit a family declined.

Pure functions over aggregates the caller loaded (the settlement, its earlier rounds, the
households' relocation cases and current eligibility decisions): the application layer loads,
these decide, the application layer saves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from uuid import UUID

from domain.base import FieldError, ValidationFailed
from domain.eligibility import EligibilityDecision, RuleSet
from domain.housing import (
    LOTTERY_ALGORITHM,
    SEED_HASH_PATTERN,
    AllocationRound,
    Assignment,
    Entrant,
    HousingStateError,
    RoundUnit,
    Settlement,
)
from domain.relocation import Relocation


def entrants(decisions: Iterable[EligibilityDecision], settlement_code: str) -> list[Entrant]:
    """The households of a round: those originating from the settlement whose current decision
    says eligible, in priority order (group, then score, higher first, then id)."""
    found = [
        Entrant(
            household_id=d.household_id,
            decision_id=d.id,
            priority_group=d.effective_priority_group or "",
            priority_rank=d.priority_rank or 99,
            score=float(d.score or 0),
            rooms_entitled=int(d.effective_rooms or d.rooms_entitled or 1),
        )
        for d in decisions
        if d.effective_result == "eligible" and d.origin_settlement_code == settlement_code
    ]
    return sorted(found, key=lambda e: (e.priority_rank, -e.score, str(e.household_id)))


def announce(
    settlement: Settlement,
    earlier_rounds: list[AllocationRound],
    cases: Mapping[UUID, Relocation],
    decisions: Iterable[EligibilityDecision],
    rule_set: RuleSet,
    seed_hash: str,
) -> AllocationRound:
    """A new round, published before the draw: the seed's hash, the eligible households in
    order and the units still available. ``cases`` are the relocation cases of the households
    originating from the settlement; ``decisions`` their current eligibility decisions.

    A round is announced only into an open settlement, once the last round is drawn and its
    offers are answered or expired (so that its entrants and units cannot change under it)."""
    code = settlement.code
    if settlement.opened_on is None:
        raise HousingStateError(f"{code} is not open for return: no allocation into it", "code")
    if not isinstance(seed_hash, str) or SEED_HASH_PATTERN.fullmatch(seed_hash) is None:
        raise ValidationFailed([FieldError("seed_hash", "sha256:<64 hex digits> of the seed")])
    if any(r.seed is None for r in earlier_rounds):
        raise HousingStateError("the previous round is not drawn yet", "round")
    if any(c.offer for c in cases.values()):
        raise HousingStateError(
            "offers of the previous round are still open: wait for answers or expire them",
            "round",
        )
    taken = {c.allocated_unit for c in cases.values() if c.allocated_unit}
    units = [
        RoundUnit(u.unit_id, u.rooms) for u in settlement.units.values() if u.unit_id not in taken
    ]
    if not units:
        raise HousingStateError(f"{code} has no unit available", "units")
    waiting = [
        e
        for e in entrants(decisions, code)
        if not ((case := cases.get(e.household_id)) and (case.allocated_unit or case.offer))
    ]
    if not waiting:
        raise HousingStateError(f"no eligible household originates from {code}", "entrants")
    return AllocationRound(
        settlement_code=code,
        round_number=len(earlier_rounds) + 1,
        seed_hash=seed_hash,
        algorithm_version=LOTTERY_ALGORITHM,
        entrants=waiting,
        units=sorted(units, key=lambda u: str(u.unit_id)),
        rule_set_code=rule_set.code,
        rule_set_version=rule_set.rule_set_version,
        offer_deadline_days=rule_set.parsed.offer_deadline_days,
    )


def offer_drawn(
    allocation_round: AllocationRound,
    settlement: Settlement,
    cases: Mapping[UUID, Relocation],
    today: date,
    assignments: Iterable[Assignment] | None = None,
) -> list[Relocation]:
    """Offer each drawn unit (of ``assignments``, default all the round's) to its household
    (``cases`` holds the households' relocation cases that exist). A household already offered
    this round is skipped, so offering again after an interruption offers only what is left.
    Returns the cases that changed (new ones included)."""
    if allocation_round.seed is None:
        raise HousingStateError("the round is not drawn yet", "round")
    changed = []
    for assignment in allocation_round.assignments if assignments is None else assignments:
        case = cases.get(assignment.household_id) or Relocation(
            household_id=assignment.household_id, settlement_code=settlement.code
        )
        if allocation_round.id in case.offers_received:
            continue
        case.offer_housing(
            allocation_round.id,
            assignment.unit_id,
            assignment.rooms,
            settlement.units[assignment.unit_id].address,
            today,
            allocation_round.offer_deadline_days,
            from_reserve=False,
        )
        changed.append(case)
    return changed


def next_on_reserve(
    allocation_round: AllocationRound,
    settlement: Settlement,
    unit: UUID,
    cases: Mapping[UUID, Relocation],
    today: date,
) -> Relocation | None:
    """The unit a family declined (or let expire) goes to the next household on the round's
    reserve list for its room category that holds no offer or house and was not offered this
    round yet; that household's case with the offer made (or None when the list is used up)."""
    rooms = allocation_round.unit_rooms(unit)
    for place in allocation_round.reserve:
        if place.rooms != rooms:
            continue
        case = cases.get(place.household_id)
        if case is not None and (
            allocation_round.id in case.offers_received or case.offer or case.allocated_unit
        ):
            continue
        case = case or Relocation(
            household_id=place.household_id, settlement_code=allocation_round.settlement_code
        )
        case.offer_housing(
            allocation_round.id,
            unit,
            rooms,
            settlement.units[unit].address,
            today,
            allocation_round.offer_deadline_days,
            from_reserve=True,
        )
        return case
    return None


def reserve_households(allocation_round: AllocationRound, unit: UUID) -> list[UUID]:
    """The households on the reserve list of the unit's room category, in order."""
    rooms = allocation_round.unit_rooms(unit)
    return [p.household_id for p in allocation_round.reserve if p.rooms == rooms]
