"""The policy of allocating houses: when a lottery round may be announced, who enters it and in
what order, which units it draws, and who is offered a unit a family declined.

Pure functions over aggregates the caller loaded (the settlement, its earlier rounds, the
households' relocation cases and current eligibility decisions): the application layer loads,
these decide, the application layer saves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date, datetime
from uuid import UUID

from domain import text
from domain.base import FieldError, ValidationFailed
from domain.eligibility import EligibilityDecision, RuleSet
from domain.housing import (
    LOTTERY_ALGORITHM,
    MAX_PARTICIPANTS,
    MIN_PARTICIPANTS,
    PARTICIPANT,
    PUBLIC_SOURCES,
    SEED_HASH_PATTERN,
    AllocationRound,
    Assignment,
    Commitment,
    Entrant,
    HousingStateError,
    PublicRandomness,
    RoundUnit,
    Settlement,
    announcement_document,
    digest,
    pseudonym,
    round_id,
)
from domain.relocation import Relocation
from domain.text import IDENTIFIER, LINE


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
    commitments: list[Commitment],
    public_randomness: PublicRandomness | None,
    now: datetime,
) -> AllocationRound:
    """A new round, published before the draw: the participants' commitments, the public
    randomness to come, the eligible households in order (with their pseudonyms) and the units
    still available. ``cases`` are the relocation cases of the households originating from the
    settlement; ``decisions`` their current eligibility decisions.

    A round is announced only into an open settlement, once the last round is drawn or voided
    and its offers are answered or expired (so that its entrants and units cannot change under
    it), with commitments no earlier round of the settlement used."""
    code = settlement.code
    if settlement.opened_on is None:
        raise HousingStateError(f"{code} is not open for return: no allocation into it", "code")
    commitments = checked_commitments(commitments)
    public_randomness = checked_public_randomness(public_randomness, now)
    if any(not r.closed for r in earlier_rounds):
        raise HousingStateError("the previous round is not drawn or voided yet", "round")
    used = {r.seed_hash for r in earlier_rounds} | {
        m.commitment for r in earlier_rounds for m in r.commitments
    }
    for i, c in enumerate(commitments):
        if c.commitment in used:
            raise HousingStateError(
                f"the commitment of {c.participant} was used by an earlier round of {code}: "
                "its secret is known, so every round needs fresh secrets",
                f"participants[{i}].commitment",
            )
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
    number = len(earlier_rounds) + 1
    this_round = round_id(code, number)
    entrants_ = [replace(e, pseudonym=pseudonym(this_round, e.household_id)) for e in waiting]
    units_ = sorted(units, key=lambda u: str(u.unit_id))
    announced = announcement_document(
        code,
        number,
        this_round,
        commitments,
        public_randomness,
        entrants_,
        units_,
        rule_set.code,
        rule_set.rule_set_version,
    )
    return AllocationRound(
        settlement_code=code,
        round_number=number,
        seed_hash="",
        algorithm_version=LOTTERY_ALGORITHM,
        entrants=entrants_,
        units=units_,
        rule_set_code=rule_set.code,
        rule_set_version=rule_set.rule_set_version,
        offer_deadline_days=rule_set.parsed.offer_deadline_days,
        commitments=commitments,
        public_randomness=public_randomness,
        announcement_digest=digest(announced),
    )


def checked_commitments(commitments: list[Commitment]) -> list[Commitment]:
    """Two to twelve participants, each named once, each with a well-formed commitment of its
    own."""
    errors: list[FieldError] = []
    if not MIN_PARTICIPANTS <= len(commitments) <= MAX_PARTICIPANTS:
        errors.append(
            FieldError(
                "participants",
                f"{MIN_PARTICIPANTS} to {MAX_PARTICIPANTS} participants, each committing its own "
                "secret: one party alone could choose the seed",
            )
        )
    found: list[Commitment] = []
    for i, c in enumerate(commitments):
        name = text.clean(
            errors,
            f"participants[{i}].participant",
            c.participant,
            PARTICIPANT,
            required="required",
        )
        if not isinstance(c.commitment, str) or SEED_HASH_PATTERN.fullmatch(c.commitment) is None:
            errors.append(
                FieldError(f"participants[{i}].commitment", "sha256:<64 hex digits> of the secret")
            )
        elif any(f.commitment == c.commitment for f in found):
            errors.append(
                FieldError(f"participants[{i}].commitment", "the same as another participant's")
            )
        if name and any(f.participant.casefold() == name.casefold() for f in found):
            errors.append(FieldError(f"participants[{i}].participant", "named twice"))
        found.append(Commitment(name or "", c.commitment))
    if errors:
        raise ValidationFailed(errors)
    return found


def checked_public_randomness(
    public: PublicRandomness | None, now: datetime
) -> PublicRandomness | None:
    """A public value still to come: named by its source and reference, published after
    ``now`` (a value known at the announcement could be worked into the commitments)."""
    if public is None:
        return None
    errors: list[FieldError] = []
    source = text.clean(
        errors, "public_randomness.source", public.source, IDENTIFIER, required="required"
    )
    if source and source not in PUBLIC_SOURCES:
        errors.append(
            FieldError("public_randomness.source", f"one of {', '.join(sorted(PUBLIC_SOURCES))}")
        )
    reference = text.clean(
        errors, "public_randomness.reference", public.reference, LINE, required="required"
    )
    at = public.published_at
    if not isinstance(at, datetime) or at.tzinfo is None:
        errors.append(FieldError("public_randomness.published_at", "a time with its offset"))
    elif at <= now:
        errors.append(
            FieldError(
                "public_randomness.published_at",
                "must be after the announcement: a value already published is known to all",
            )
        )
    if errors:
        raise ValidationFailed(errors)
    return PublicRandomness(source or "", reference or "", at)


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
