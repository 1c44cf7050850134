"""Housing: settlements that open for return, their housing units, and the public lottery.

A settlement opens for return only after its security clearance (demining) is certified. Its
houses are assigned by a public lottery that anyone can re-run: the hash of a secret seed is
published with the ordered list of entrants and the units before the draw (commit), the seed is
revealed at the draw (reveal), and :func:`draw` turns seed, entrants and units into the same
assignment every time.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain import text
from domain.base import CaseAggregate, DomainError, FieldError, ValidationFailed
from domain.text import IDENTIFIER, LINE

LOTTERY_ALGORITHM = "reintegration-lottery/1"
MAX_ROOMS = 12
FLOORS = range(-5, 201)  # basements to the highest tower
SEED = IDENTIFIER.at_most(256)
SEED_HASH_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")
UNIT_KINDS = ("house", "flat")
READINESS_ITEMS = ("electricity", "gas", "water", "roads", "school", "clinic", "internet")
SETTLEMENT_NAMESPACE = uuid5(NAMESPACE_URL, "urn:reintegration:settlement")
ROUND_NAMESPACE = uuid5(NAMESPACE_URL, "urn:reintegration:allocation-round")


class HousingError(DomainError):
    pass


class HousingStateError(HousingError):
    """The command does not fit the settlement's or the round's state (HTTP 409)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def settlement_id(code: str) -> UUID:
    return uuid5(SETTLEMENT_NAMESPACE, code)


def unit_id(settlement_code: str, reference: str) -> UUID:
    return uuid5(SETTLEMENT_NAMESPACE, f"{settlement_code}:unit:{reference}")


def round_id(settlement_code: str, number: int) -> UUID:
    return uuid5(ROUND_NAMESPACE, f"{settlement_code}:{number}")


def seed_hash(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class HousingUnit:
    unit_id: UUID
    reference: str
    address: str
    rooms: int
    kind: str
    floor: int | None


class Settlement(CaseAggregate):
    """A settlement of the return programme: clearance, readiness, opening, housing units."""

    class Registered(CaseAggregate.Created):
        code: str
        name: str

    class SecurityClearanceCertified(CaseAggregate.Event):
        agency: str
        certified_on: date
        certificate_reference: str

    class InfrastructureReadinessCertified(CaseAggregate.Event):
        items: list[str]
        certified_on: date
        reference: str

    class OpenedForReturn(CaseAggregate.Event):
        opened_on: date

    class HousingUnitRegistered(CaseAggregate.Event):
        unit_id: UUID
        reference: str
        address: str
        rooms: int
        kind: str
        floor: int | None

    @staticmethod
    def create_id(code: str, name: str) -> UUID:
        return settlement_id(code)

    @event(Registered)
    def __init__(self, code: str, name: str) -> None:
        self.code = code
        self.name = name
        self.clearance: dict[str, Any] | None = None
        self.readiness: list[str] = []
        self.opened_on: date | None = None
        self.units: dict[UUID, HousingUnit] = {}

    def certify_clearance(
        self, agency: str, certified_on: date, reference: str, today: date
    ) -> None:
        errors: list[FieldError] = []
        by = text.clean(errors, "agency", agency, LINE, required="required")
        ref = text.clean(
            errors, "certificate_reference", reference, IDENTIFIER, required="required"
        )
        if certified_on > today:
            errors.append(FieldError("certified_on", "cannot be in the future"))
        if errors:
            raise ValidationFailed(errors)
        self._cleared(agency=by or "", certified_on=certified_on, certificate_reference=ref or "")

    @event(SecurityClearanceCertified)
    def _cleared(self, agency: str, certified_on: date, certificate_reference: str) -> None:
        self.clearance = {
            "agency": agency,
            "certified_on": certified_on,
            "certificate_reference": certificate_reference,
        }

    def certify_readiness(self, items: list[str], certified_on: date, reference: str) -> None:
        errors: list[FieldError] = []
        ref = text.clean(errors, "reference", reference, IDENTIFIER, required="required")
        if not items or any(item not in READINESS_ITEMS for item in items):
            errors.append(FieldError("items", f"one or more of {', '.join(READINESS_ITEMS)}"))
        if errors:
            raise ValidationFailed(errors)
        self._ready(items=sorted(set(items)), certified_on=certified_on, reference=ref or "")

    @event(InfrastructureReadinessCertified)
    def _ready(self, items: list[str], certified_on: date, reference: str) -> None:
        self.readiness = sorted(set(self.readiness) | set(items))

    def open_for_return(self, opened_on: date) -> None:
        if self.clearance is None:
            raise HousingStateError(
                f"{self.code} has no certified security clearance: it cannot open for return",
                "clearance",
            )
        if self.opened_on is not None:
            raise HousingStateError(f"{self.code} is already open since {self.opened_on}")
        if opened_on < self.clearance["certified_on"]:
            raise ValidationFailed([FieldError("opened_on", "before the clearance was certified")])
        self._opened(opened_on=opened_on)

    @event(OpenedForReturn)
    def _opened(self, opened_on: date) -> None:
        self.opened_on = opened_on

    def register_unit(
        self, reference: str, address: str, rooms: int, kind: str, floor: int | None
    ) -> UUID:
        errors: list[FieldError] = []
        ref, where = unit_text(errors, reference, address)
        errors += unit_errors(reference, address, rooms, kind, floor)
        if errors:
            raise ValidationFailed(errors)
        new_id = unit_id(self.code, ref)
        if new_id in self.units:
            raise HousingStateError(f"unit {ref} is already registered", "reference")
        self._unit(
            unit_id=new_id, reference=ref, address=where, rooms=rooms, kind=kind, floor=floor
        )
        return new_id

    @event(HousingUnitRegistered)
    def _unit(
        self, unit_id: UUID, reference: str, address: str, rooms: int, kind: str, floor: int | None
    ) -> None:
        self.units[unit_id] = HousingUnit(unit_id, reference, address, rooms, kind, floor)


def unit_text(errors: list[FieldError], reference: str, address: str) -> tuple[str, str]:
    """A unit's reference and address as recorded (cleaned; empty when they break a rule)."""
    ref = text.clean(errors, "reference", reference, IDENTIFIER, required="required")
    where = text.clean(errors, "address", address, LINE, required="required")
    return ref or "", where or ""


def unit_errors(
    reference: str, address: str, rooms: int, kind: str, floor: int | None
) -> list[FieldError]:
    """What is wrong with a unit's rooms, kind and floor (its text: :func:`unit_text`)."""
    errors: list[FieldError] = []
    if isinstance(rooms, bool) or not isinstance(rooms, int) or not 1 <= rooms <= MAX_ROOMS:
        errors.append(FieldError("rooms", f"1 to {MAX_ROOMS}"))
    if kind not in UNIT_KINDS:
        errors.append(FieldError("kind", "house or flat"))
    if kind == "flat" and floor is None:
        errors.append(FieldError("floor", "a flat has a floor"))
    if floor is not None and (isinstance(floor, bool) or floor not in FLOORS):
        errors.append(FieldError("floor", f"{FLOORS.start} to {FLOORS.stop - 1}"))
    return errors


# --- the lottery ------------------------------------------------------------------------


@dataclass(frozen=True)
class Entrant:
    """An eligible household in a round, as its eligibility decision placed it."""

    household_id: UUID
    decision_id: UUID
    priority_group: str
    priority_rank: int
    score: float
    rooms_entitled: int


@dataclass(frozen=True)
class RoundUnit:
    unit_id: UUID
    rooms: int


@dataclass(frozen=True)
class Assignment:
    household_id: UUID
    unit_id: UUID
    rooms: int  # the room category drawn in
    position: int  # place in the category's drawn order, from 1


@dataclass(frozen=True)
class ReservePlace:
    household_id: UUID
    rooms: int
    position: int  # place on the category's reserve list, from 1


def category(rooms_entitled: int, categories: list[int]) -> int:
    """The room category a household draws in: the smallest unit size that covers its
    entitlement, or the largest there is when none does."""
    fitting = [c for c in sorted(categories) if c >= rooms_entitled]
    return fitting[0] if fitting else max(categories)


def _lot(seed: str, item: UUID) -> str:
    return hashlib.sha256(f"{seed}:{item}".encode()).hexdigest()


def draw(
    seed: str, entrants: list[Entrant], units: list[RoundUnit]
) -> tuple[list[Assignment], list[ReservePlace]]:
    """The draw, version 1. Within each room category, households are ordered by priority
    group, then by the rule set's score (higher first), then by lot: SHA-256 of the seed and
    the household id. Units are ordered by the lot of their id. The n-th household gets the
    n-th unit; the rest form the category's reserve list, in order. Depends only on its
    arguments: anyone with the seed, the entrants and the units gets the same result."""
    categories = sorted({u.rooms for u in units})
    assignments: list[Assignment] = []
    reserve: list[ReservePlace] = []
    if not categories:
        return assignments, reserve
    for rooms in categories:
        pool = sorted(
            (e for e in entrants if category(e.rooms_entitled, categories) == rooms),
            key=lambda e: (e.priority_rank, -e.score, _lot(seed, e.household_id)),
        )
        houses = sorted((u for u in units if u.rooms == rooms), key=lambda u: _lot(seed, u.unit_id))
        for i, entrant in enumerate(pool):
            if i < len(houses):
                assignments.append(
                    Assignment(entrant.household_id, houses[i].unit_id, rooms, i + 1)
                )
            else:
                reserve.append(ReservePlace(entrant.household_id, rooms, i - len(houses) + 1))
    return assignments, reserve


class AllocationRound(CaseAggregate):
    """One lottery round of a settlement: announced with the seed's hash, the entrants in
    order and the units, then drawn with the seed revealed."""

    class Announced(CaseAggregate.Created):
        settlement_code: str
        round_number: int
        seed_hash: str
        algorithm_version: str
        entrants: list[Entrant]
        units: list[RoundUnit]
        rule_set_code: str
        rule_set_version: int
        offer_deadline_days: int

        @property
        def partition_key(self) -> UUID:
            return settlement_id(self.settlement_code)

    class Changed(CaseAggregate.Event):
        settlement_code: str

        @property
        def partition_key(self) -> UUID:
            return settlement_id(self.settlement_code)

    class Drawn(Changed):
        seed: str
        assignments: list[Assignment]
        reserve: list[ReservePlace]
        witnesses: str

    @staticmethod
    def create_id(settlement_code: str, round_number: int, **_: Any) -> UUID:
        return round_id(settlement_code, round_number)

    @event(Announced)
    def __init__(
        self,
        settlement_code: str,
        round_number: int,
        seed_hash: str,
        algorithm_version: str,
        entrants: list[Entrant],
        units: list[RoundUnit],
        rule_set_code: str,
        rule_set_version: int,
        offer_deadline_days: int,
    ) -> None:
        self.settlement_code = settlement_code
        self.round_number = round_number
        self.seed_hash = seed_hash
        self.algorithm_version = algorithm_version
        self.entrants = list(entrants)
        self.units = list(units)
        self.rule_set_code = rule_set_code
        self.rule_set_version = rule_set_version
        self.offer_deadline_days = offer_deadline_days
        self.seed: str | None = None
        self.assignments: list[Assignment] = []
        self.reserve: list[ReservePlace] = []

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        kwargs.setdefault("settlement_code", self.settlement_code)
        super().trigger_event(event_class, **kwargs)

    def draw(self, seed: str, witnesses: str) -> None:
        if self.seed is not None:
            raise HousingStateError("this round is already drawn", "seed")
        if (
            not isinstance(seed, str)
            or text.problem(seed, SEED)
            or not 0 < len(seed) <= SEED.max_length
        ):
            # Not normalised: the seed is the exact string whose hash was published.
            raise ValidationFailed(
                [FieldError("seed", f"1 to {SEED.max_length} characters, no control characters")]
            )
        who = text.required_text(
            "witnesses", witnesses, LINE, "who witnessed the draw (e.g. the Public Council)"
        )
        if seed_hash(seed) != self.seed_hash:
            raise ValidationFailed(
                [
                    FieldError(
                        "seed", "does not match the hash published when the round was announced"
                    )
                ]
            )
        assignments, reserve = draw(seed, self.entrants, self.units)
        self._drawn(seed=seed, assignments=assignments, reserve=reserve, witnesses=who)

    @event(Drawn)
    def _drawn(
        self, seed: str, assignments: list[Assignment], reserve: list[ReservePlace], witnesses: str
    ) -> None:
        self.seed = seed
        self.assignments = list(assignments)
        self.reserve = list(reserve)

    def unit_rooms(self, unit: UUID) -> int:
        return next(u.rooms for u in self.units if u.unit_id == unit)
