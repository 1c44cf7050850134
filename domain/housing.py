"""Housing: settlements that open for return, their housing units, and the public lottery.

A settlement opens for return only after its security clearance (demining) is certified. Its
houses are assigned by a public lottery no single party can steer. At the announcement, each
participant of the draw (at least two: members of the Public Council, the committee's
representative) commits the hash of a secret contribution of their own, and the entrants (by
pseudonym), the units and, when configured, a public randomness value still to be published
(a drand round, the state lottery's numbers of a named date) are fixed. At the draw every
participant reveals, each reveal is checked against its commitment, and the seed is derived
from all the contributions and the public value (:func:`derive_seed`): as long as one
participant keeps its secret until the draw, nobody can know or choose the result in advance.
A participant who withholds its reveal voids the round (:meth:`AllocationRound.void`); the
others never redraw. :func:`draw` turns seed, entrants and units into the same assignment every
time, and :func:`published` is the round as a document anyone can re-run
(``tools/rerun_lottery.py``).

Kept whole: the settlement, its units and its lottery rounds form one consistency boundary
(a round reads the settlement's units and is published from its own events). The next split,
when it grows, is the lottery (rounds, commitments, the draw) into ``domain/lottery.py``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain import text
from domain.base import CaseAggregate, DomainError, FieldError, ValidationFailed
from domain.text import IDENTIFIER, LINE, NAME

LOTTERY_ALGORITHM = "reintegration-lottery/2"
"""Version 2: the seed is derived from every participant's contribution and the public value;
entrants are drawn by their pseudonym. Version 1 (one party's seed, lots of household ids) is
still re-run for rounds announced with it, and such a round is never drawn any more."""
LOTTERY_ALGORITHM_V1 = "reintegration-lottery/1"
PUBLISHED_FORMAT = "reintegration-lottery-round/1"
MIN_PARTICIPANTS = 2
MAX_PARTICIPANTS = 12
PARTICIPANT = NAME
MIN_SECRET_LENGTH = 32  # `reintegration lottery commit` makes 64 hex digits (256 bits)
REVEAL_MARGIN = timedelta(minutes=1)
"""Reveals close this long before the public value is published (clocks differ a little)."""
DRAND_CHAINS = {  # genesis time and period of drand's public chains
    "drand-quicknet": (1692803367, 3),
    "drand-mainnet": (1595431050, 30),
}
PUBLIC_SOURCES = {
    # drand's randomness of a round: 32 bytes, as lowercase hex
    "drand-quicknet": re.compile(r"[0-9a-f]{64}"),
    "drand-mainnet": re.compile(r"[0-9a-f]{64}"),
    # the state lottery's drawn numbers, in the order drawn, one space apart, no leading zeros
    "state-lottery": re.compile(r"(0|[1-9][0-9]{0,2})( (0|[1-9][0-9]{0,2}))*"),
}
"""The public randomness a round may use, each value in its one canonical spelling (so that
nobody can try several spellings of the same published value)."""
MAX_ROOMS = 12
FLOORS = range(-5, 201)  # basements to the highest tower
SEED = IDENTIFIER.at_most(256)
SEED_HASH_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")
UNIT_KINDS = ("house", "flat")
READINESS_ITEMS = ("electricity", "gas", "water", "roads", "school", "clinic", "internet")
SETTLEMENT_NAMESPACE = uuid5(NAMESPACE_URL, "urn:reintegration:settlement")
ROUND_NAMESPACE = uuid5(NAMESPACE_URL, "urn:reintegration:allocation-round")
COMMITMENT_NAMESPACE = uuid5(NAMESPACE_URL, "urn:reintegration:lottery-commitment")


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
    """The commitment to a secret: ``sha256:`` and the hex SHA-256 of its UTF-8 bytes."""
    return "sha256:" + hashlib.sha256(seed.encode("utf-8")).hexdigest()


def commitment_id(commitment: str) -> UUID:
    """The id under which a commitment is recorded as used (once, by one round, ever)."""
    return uuid5(COMMITMENT_NAMESPACE, commitment)


def pseudonym(round_: UUID, household_id: UUID) -> str:
    """An entrant's id in the round's published result (given on the family's offer letter):
    it names no one to whoever does not know the household's id."""
    return str(uuid5(ROUND_NAMESPACE, f"{round_}:entrant:{household_id}"))


def canonical(value: Any) -> bytes:
    """The one byte string of a JSON value that digests are computed over (sorted keys, no
    spaces, UTF-8): the standalone re-run computes the same."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(value: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical(value)).hexdigest()


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
    """An eligible household in a round, as its eligibility decision placed it; drawn by its
    pseudonym (empty in rounds of version 1, drawn by household id)."""

    household_id: UUID
    decision_id: UUID
    priority_group: str
    priority_rank: int
    score: float
    rooms_entitled: int
    pseudonym: str = ""

    @property
    def drawn_as(self) -> str:
        return self.pseudonym or str(self.household_id)


@dataclass(frozen=True)
class Commitment:
    """A participant of the draw, the hash of its secret contribution and, when participants'
    keys are published, its Ed25519 signature of :func:`commitment_message` (base64)."""

    participant: str
    commitment: str
    signature: str = ""


def commitment_message(
    origin: str,
    settlement_code: str,
    round_number: int,
    commitment: str,
    public: PublicRandomness | None,
) -> bytes:
    """What a participant signs when it commits: this log (its origin: no other deployment),
    this round of this settlement, this hash, and the public randomness announced with it (so
    that it cannot be dropped or changed behind the participant's back)."""
    terms = (
        "none"
        if public is None
        else f"{public.source} {public.reference} {public.published_at.astimezone(UTC).isoformat()}"
    )
    return (
        f"reintegration-lottery commitment/v2\n{origin}\n{settlement_code}\n{round_number}\n"
        f"{commitment}\n{terms}\n"
    ).encode()


@dataclass(frozen=True)
class Contribution:
    """A participant's secret, revealed at the draw."""

    participant: str
    contribution: str


@dataclass(frozen=True)
class PublicRandomness:
    """A value nobody knows at the announcement, to be published by others after the reveals
    are due: its source (``drand-quicknet``, ``state-lottery``), which value (a drand round
    number, the draw's date) and when it is published."""

    source: str
    reference: str
    published_at: datetime


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


def _lot(seed: str, item: UUID | str) -> str:
    return hashlib.sha256(f"{seed}:{item}".encode()).hexdigest()


def derive_seed(round_: UUID, contributions: list[Contribution], public_value: str) -> str:
    """The seed of a round of version 2: SHA-256 of the canonical JSON of the round's id, every
    contribution in the announced order of the participants, and the public value ("" when
    none was announced). Unknowable while one contribution or the public value is."""
    return hashlib.sha256(
        canonical(
            {
                "algorithm": LOTTERY_ALGORITHM,
                "round_id": str(round_),
                "contributions": [[c.participant, c.contribution] for c in contributions],
                "public_value": public_value,
            }
        )
    ).hexdigest()


def draw(
    seed: str, entrants: list[Entrant], units: list[RoundUnit]
) -> tuple[list[Assignment], list[ReservePlace]]:
    """The draw. Within each room category, households are ordered by priority group, then by
    the rule set's score (higher first), then by lot: SHA-256 of the seed, a colon and the
    entrant's pseudonym (version 1: its household id). Units are ordered by the lot of their id. The n-th household gets the
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
            key=lambda e: (e.priority_rank, -e.score, _lot(seed, e.drawn_as)),
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
    """One lottery round of a settlement: announced with the participants' commitments, the
    entrants in order and the units (and the public randomness to come), then drawn once every
    participant revealed, or voided when one did not."""

    class Announced(CaseAggregate.Created):
        """Version 2 added the participants' commitments, the public randomness to come, the
        entrants' pseudonyms and the announcement's digest (version 1: one party's seed hash)."""

        class_version = 2

        settlement_code: str
        round_number: int
        seed_hash: str
        algorithm_version: str
        entrants: list[Entrant]
        units: list[RoundUnit]
        rule_set_code: str
        rule_set_version: int
        offer_deadline_days: int
        commitments: list[Commitment]
        public_randomness: PublicRandomness | None
        announcement_digest: str

        @property
        def partition_key(self) -> UUID:
            return settlement_id(self.settlement_code)

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            state["commitments"] = []
            state["public_randomness"] = None
            state["announcement_digest"] = ""

    class Changed(CaseAggregate.Event):
        settlement_code: str

        @property
        def partition_key(self) -> UUID:
            return settlement_id(self.settlement_code)

    class Drawn(Changed):
        """Version 2 added every participant's contribution, the public value and the result's
        digest; ``seed`` is then the derived seed."""

        class_version = 2

        seed: str
        assignments: list[Assignment]
        reserve: list[ReservePlace]
        witnesses: str
        contributions: list[Contribution]
        public_value: str
        result_digest: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            state["contributions"] = []
            state["public_value"] = ""
            state["result_digest"] = ""

    class ContributionRevealed(Changed):
        """A participant revealed its secret, matching its commitment (before the public
        value, if one was announced, is published)."""

        participant: str
        contribution: str

    class Voided(Changed):
        """A participant withheld its reveal (or a round of version 1 was set aside): the round
        is closed without a draw, and the next round is announced with fresh commitments."""

        withheld_by: list[str]
        reason: str

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
        commitments: list[Commitment],
        public_randomness: PublicRandomness | None,
        announcement_digest: str,
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
        self.commitments = list(commitments)
        self.public_randomness = public_randomness
        self.announcement_digest = announcement_digest
        self.seed: str | None = None
        self.assignments: list[Assignment] = []
        self.reserve: list[ReservePlace] = []
        self.contributions: list[Contribution] = []
        self.public_value = ""
        self.result_digest = ""
        self.witnesses = ""
        self.voided: dict[str, Any] | None = None
        self.revealed: dict[str, str] = {}  # participant: contribution, as recorded

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        kwargs.setdefault("settlement_code", self.settlement_code)
        super().trigger_event(event_class, **kwargs)

    @property
    def closed(self) -> bool:
        """Drawn or voided: the next round may be announced."""
        return self.seed is not None or self.voided is not None

    @property
    def single_party(self) -> bool:
        """Announced with one party's seed hash (version 1)."""
        return not self.commitments

    def reveal(self, participant: str, contribution: str, now: datetime) -> None:
        """Record one participant's secret once it matches its commitment; while a public
        value is announced, only before it is published (after it, anyone could compute the
        result and a participant could choose whether to reveal)."""
        self._refuse_if_closed()
        if self.single_party:
            raise HousingStateError(
                "this round was announced with one party's seed: void it and announce it again",
                "round",
            )
        name = self._participant(participant, "participant")
        if name in self.revealed:
            raise HousingStateError(f"{name} has revealed already", "participant")
        if (
            self.public_randomness is not None
            and now >= self.public_randomness.published_at - REVEAL_MARGIN
        ):
            raise HousingStateError(
                f"reveals were due a minute before "
                f"{self.public_randomness.published_at.isoformat()}, "
                f"when {self.public_randomness.source} publishes its value: the round can "
                "only be voided now",
                "participant",
            )
        if (
            not isinstance(contribution, str)
            or text.problem(contribution, SEED)
            or not MIN_SECRET_LENGTH <= len(contribution) <= SEED.max_length
        ):
            raise ValidationFailed(
                [
                    FieldError(
                        "contribution",
                        f"{MIN_SECRET_LENGTH} to {SEED.max_length} characters, no control "
                        "characters",
                    )
                ]
            )
        committed = next(m.commitment for m in self.commitments if m.participant == name)
        if seed_hash(contribution) != committed:
            raise ValidationFailed(
                [
                    FieldError(
                        "contribution",
                        f"does not match the commitment {name} published when the round was "
                        "announced",
                    )
                ]
            )
        self._revealed(participant=name, contribution=contribution)

    @event(ContributionRevealed)
    def _revealed(self, participant: str, contribution: str) -> None:
        self.revealed[participant] = contribution

    def _participant(self, given: str, field: str) -> str:
        """A participant of the round, named as the announcement recorded it."""
        names = {m.participant.casefold(): m.participant for m in self.commitments}
        found = (
            names.get(text.normalise(given, PARTICIPANT).strip().casefold())
            if isinstance(given, str)
            else None
        )
        if found is None:
            raise ValidationFailed([FieldError(field, "not a participant of the round")])
        return found

    def draw(self, public_value: str, witnesses: str, now: datetime) -> None:
        """Draw once every participant has revealed and, when one was announced, with the
        public randomness value, once it is published."""
        self._refuse_if_closed()
        if self.single_party:
            raise HousingStateError(
                "this round was announced with one party's seed, which that party could have "
                "chosen: void it and announce the round again with at least two participants",
                "round",
            )
        missing = [m.participant for m in self.commitments if m.participant not in self.revealed]
        if missing:
            raise HousingStateError(
                f"{', '.join(missing)} did not reveal: the round is drawn only with every "
                "participant's contribution; if a participant withholds it, void the round "
                "and announce the next one",
                "contributions",
            )
        if self.public_randomness is not None and now < self.public_randomness.published_at:
            raise HousingStateError(
                f"the public value of {self.public_randomness.source} is published at "
                f"{self.public_randomness.published_at.isoformat()}: draw after it",
                "public_value",
            )
        who = text.required_text(
            "witnesses", witnesses, LINE, "who witnessed the draw (e.g. the Public Council)"
        )
        value = self._checked_public_value(public_value)
        revealed = [
            Contribution(m.participant, self.revealed[m.participant]) for m in self.commitments
        ]
        seed = derive_seed(self.id, revealed, value)
        assignments, reserve = draw(seed, self.entrants, self.units)
        result = result_document(revealed, value, seed, self.entrants, assignments, reserve)
        self._drawn(
            seed=seed,
            assignments=assignments,
            reserve=reserve,
            witnesses=who,
            contributions=revealed,
            public_value=value,
            result_digest=digest({"announcement_digest": self.announcement_digest, **result}),
        )

    def _refuse_if_closed(self) -> None:
        if self.seed is not None:
            raise HousingStateError("this round is already drawn", "round")
        if self.voided is not None:
            raise HousingStateError("this round was voided: announce the next one", "round")

    def _checked_public_value(self, public_value: str) -> str:
        public = self.public_randomness
        if public is None:
            if public_value:
                raise ValidationFailed(
                    [FieldError("public_value", "no public randomness was announced")]
                )
            return ""
        if not isinstance(public_value, str) or not public_value:
            raise ValidationFailed(
                [
                    FieldError(
                        "public_value",
                        f"the value {public.source} published for {public.reference}",
                    )
                ]
            )
        spelling = PUBLIC_SOURCES.get(public.source)
        if spelling is not None and spelling.fullmatch(public_value) is None:
            raise ValidationFailed(
                [
                    FieldError(
                        "public_value",
                        f"not the canonical spelling of a {public.source} value (one spelling "
                        "only, so that none can be chosen among several)",
                    )
                ]
            )
        return public_value

    @event(Drawn)
    def _drawn(
        self,
        seed: str,
        assignments: list[Assignment],
        reserve: list[ReservePlace],
        witnesses: str,
        contributions: list[Contribution],
        public_value: str,
        result_digest: str,
    ) -> None:
        self.seed = seed
        self.assignments = list(assignments)
        self.reserve = list(reserve)
        self.witnesses = witnesses
        self.contributions = list(contributions)
        self.public_value = public_value
        self.result_digest = result_digest

    def void(self, withheld_by: list[str], reason: str, now: datetime) -> None:
        """Close the round without a draw because ``withheld_by`` (exactly the participants
        with no recorded reveal) did not reveal; while a public value is announced, only once
        the reveals are past due. A round of version 1 may be voided with a reason alone. The
        others do not redraw: the next round is announced with fresh commitments."""
        self._refuse_if_closed()
        why = text.required_text("reason", reason, LINE, "why the round is voided")
        if self.single_party:
            self._voided(withheld_by=[], reason=why)
            return
        named = [self._participant(p, "withheld_by") for p in withheld_by]
        missing = [m.participant for m in self.commitments if m.participant not in self.revealed]
        if not missing:
            raise HousingStateError(
                "every participant has revealed: the round is drawn, not voided", "withheld_by"
            )
        if sorted(named) != sorted(missing):
            raise ValidationFailed(
                [
                    FieldError(
                        "withheld_by",
                        f"exactly the participants who did not reveal: {', '.join(missing)}",
                    )
                ]
            )
        public = self.public_randomness
        if public is not None and now < public.published_at:
            raise HousingStateError(
                f"reveals are due until {public.published_at.isoformat()}: void after that",
                "withheld_by",
            )
        self._voided(withheld_by=missing, reason=why)

    @event(Voided)
    def _voided(self, withheld_by: list[str], reason: str) -> None:
        self.voided = {"withheld_by": list(withheld_by), "reason": reason}

    def announcement(self) -> dict[str, Any]:
        """What the announcement published, as :func:`announcement_document` writes it."""
        return announcement_document(
            self.settlement_code,
            self.round_number,
            self.id,
            self.commitments,
            self.public_randomness,
            self.entrants,
            self.units,
            self.rule_set_code,
            self.rule_set_version,
        )

    def unit_rooms(self, unit: UUID) -> int:
        return next(u.rooms for u in self.units if u.unit_id == unit)


def announcement_document(
    settlement_code: str,
    round_number: int,
    round_: UUID,
    commitments: list[Commitment],
    public_randomness: PublicRandomness | None,
    entrants: list[Entrant],
    units: list[RoundUnit],
    rule_set_code: str,
    rule_set_version: int,
) -> dict[str, Any]:
    """What the announcement publishes, as the published result shows it (its digest is
    recorded on the event)."""
    return {
        "settlement_code": settlement_code,
        "round_number": round_number,
        "round_id": str(round_),
        "algorithm_version": LOTTERY_ALGORITHM,
        "rule_set": {"code": rule_set_code, "version": rule_set_version},
        "commitments": [
            {"participant": c.participant, "commitment": c.commitment, "signature": c.signature}
            for c in commitments
        ],
        "public_randomness": None
        if public_randomness is None
        else {
            "source": public_randomness.source,
            "reference": public_randomness.reference,
            "published_at": public_randomness.published_at.astimezone(UTC).isoformat(),
        },
        "entrants": [
            {
                "id": e.drawn_as,
                "priority_group": e.priority_group,
                "priority_rank": e.priority_rank,
                "score": e.score,
                "rooms_entitled": e.rooms_entitled,
            }
            for e in entrants
        ],
        "units": [{"unit_id": str(u.unit_id), "rooms": u.rooms} for u in units],
    }


def result_document(
    contributions: list[Contribution],
    public_value: str,
    seed: str,
    entrants: list[Entrant],
    assignments: list[Assignment],
    reserve: list[ReservePlace],
) -> dict[str, Any]:
    """What the draw publishes: the reveals, the public value, the seed, and the assignment
    and reserve lists by pseudonym."""
    alias = {e.household_id: e.drawn_as for e in entrants}
    return {
        "contributions": [
            {"participant": c.participant, "contribution": c.contribution} for c in contributions
        ],
        "public_value": public_value,
        "seed": seed,
        "assignments": [
            {
                "id": alias[a.household_id],
                "unit_id": str(a.unit_id),
                "rooms": a.rooms,
                "position": a.position,
            }
            for a in assignments
        ],
        "reserve": [
            {"id": alias[p.household_id], "rooms": p.rooms, "position": p.position} for p in reserve
        ],
    }


def published(r: AllocationRound) -> dict[str, Any]:
    """The round as a document anyone can re-run without this project
    (``tools/rerun_lottery.py``): the announcement and, once drawn, the result, each with its
    digest (recorded on the events, so a changed byte shows)."""
    if r.single_party:
        raise HousingStateError(
            "rounds announced with one party's seed are re-run with `reintegration audit "
            "lottery`, not published in this form",
            "round",
        )
    announcement = r.announcement()
    document: dict[str, Any] = {
        "format": PUBLISHED_FORMAT,
        "announcement": announcement,
        "announcement_digest": r.announcement_digest,
        "result": None,
        "result_digest": None,
        "voided": r.voided,
    }
    if r.seed is not None:
        document["result"] = result_document(
            r.contributions, r.public_value, r.seed, r.entrants, r.assignments, r.reserve
        )
        document["result_digest"] = r.result_digest
    return document


class LotteryCommitment(CaseAggregate):
    """A commitment, recorded once when a round announces it: no round may use it again (its
    secret would be known, or knowable, by the time of the draw)."""

    class Used(CaseAggregate.Created):
        commitment: str
        round_id: UUID
        participant: str
        settlement_code: str

        @property
        def partition_key(self) -> UUID:
            return settlement_id(self.settlement_code)

    @staticmethod
    def create_id(commitment: str, **_: Any) -> UUID:
        return commitment_id(commitment)

    @event(Used)
    def __init__(
        self, commitment: str, round_id: UUID, participant: str, settlement_code: str
    ) -> None:
        self.commitment = commitment
        self.round_id = round_id
        self.participant = participant
        self.settlement_code = settlement_code
