"""Housing's use cases: settlements of return and their units, and the public lottery (the
round announced with every participant's commitment, drawn with every reveal and the public
value, or voided when a participant withholds its reveal; each drawn unit offered)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from application.eligibility import rule_set_in_force
from application.ports import EventStore
from domain import allocation
from domain import eligibility as el
from domain.base import FieldError, ValidationFailed
from domain.geography import settlement as reference_settlement
from domain.housing import (
    AllocationRound,
    Commitment,
    HousingStateError,
    LotteryCommitment,
    PublicRandomness,
    Settlement,
    commitment_id,
    published,
    round_id,
    settlement_id,
    unit_errors,
    unit_text,
)
from domain.relocation import Relocation, relocation_id

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
    participants: int = 0
    digests_match: bool = True

    @property
    def matches(self) -> bool:
        return (
            self.seed_matches_commitment
            and self.assignments_match
            and self.reserve_matches
            and self.digests_match
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            **{k: (str(v) if isinstance(v, UUID) else v) for k, v in self.__dict__.items()},
            "matches": self.matches,
        }


def relocations(store: EventStore, household_ids: list[UUID]) -> dict[UUID, Relocation]:
    """The relocation cases of these households that have one, by household."""
    loaded = store.load_many([relocation_id(h) for h in household_ids])
    return {r.household_id: r for r in loaded.values()}


def get_settlement(store: EventStore, code: str) -> Settlement:
    found: Settlement = store.get(settlement_id(code), f"settlement {code} in the programme")
    return found


def get_round(store: EventStore, code: str, number: int) -> AllocationRound:
    found: AllocationRound = store.get(round_id(code, number), f"round {number} of {code}")
    return found


class Housing:
    def __init__(self, store: EventStore, default_rule_set: str) -> None:
        self.store = store
        self.default_rule_set = default_rule_set

    # --- settlements -----------------------------------------------------------------------

    def settlement(self, code: str) -> Settlement:
        return get_settlement(self.store, code)

    def register_settlement(self, code: str) -> Settlement:
        reference = reference_settlement(code)
        if reference is None:
            raise ValidationFailed([FieldError("code", "not a settlement of the reference data")])
        if self.store.exists(settlement_id(code)):
            raise HousingStateError(f"{code} is already registered", "code")
        settlement = Settlement(code=code, name=reference.name_en)
        self.store.save(settlement)
        return settlement

    def certify_clearance(
        self, code: str, agency: str, certified_on: date, reference: str
    ) -> Settlement:
        settlement = self.settlement(code)
        settlement.certify_clearance(agency, certified_on, reference, date.today())
        self.store.save(settlement)
        return settlement

    def certify_readiness(
        self, code: str, items: list[str], certified_on: date, reference: str
    ) -> Settlement:
        settlement = self.settlement(code)
        settlement.certify_readiness(items, certified_on, reference)
        self.store.save(settlement)
        return settlement

    def open_for_return(self, code: str, opened_on: date) -> Settlement:
        settlement = self.settlement(code)
        settlement.open_for_return(opened_on)
        self.store.save(settlement)
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
        self.store.save(settlement)
        return ids

    # --- lottery rounds --------------------------------------------------------------------

    def rounds(self, code: str) -> list[AllocationRound]:
        count = self.store.count_numbered(round_id, [code])[code]
        return [get_round(self.store, code, n) for n in range(1, count + 1)]

    def get_round(self, code: str, number: int) -> AllocationRound:
        return get_round(self.store, code, number)

    def announce_round(
        self,
        code: str,
        participants: list[Commitment],
        public_randomness: PublicRandomness | None = None,
        now: datetime | None = None,
    ) -> AllocationRound:
        """Publish the round before the draw: every participant's commitment, the public
        randomness to come, the eligible households in order and the available units, read
        from the write model. Nothing about them can change afterwards. A commitment any round
        used before is refused; each is recorded as used in the same transaction."""
        for i, c in enumerate(participants):
            if isinstance(c.commitment, str) and self.store.exists(commitment_id(c.commitment)):
                raise HousingStateError(
                    f"the commitment of {c.participant} was used by an earlier round: its "
                    "secret is known (or will be), so every round needs fresh secrets",
                    f"participants[{i}].commitment",
                )
        settlement = self.settlement(code)
        households = self.store.households_originating_from(code)
        counts = self.store.count_numbered(el.decision_id, households)
        decisions = self.store.load_many([el.decision_id(h, n) for h, n in counts.items() if n])
        announced = allocation.announce(
            settlement,
            self.rounds(code),
            relocations(self.store, households),
            decisions.values(),
            rule_set_in_force(self.store, self.default_rule_set),
            participants,
            public_randomness,
            now or datetime.now(UTC),
        )
        used = [
            LotteryCommitment(
                commitment=c.commitment,
                round_id=announced.id,
                participant=c.participant,
                settlement_code=code,
            )
            for c in announced.commitments
        ]
        self.store.save(announced, *used)  # a commitment used concurrently: all refused
        return announced

    def reveal(
        self,
        code: str,
        number: int,
        participant: str,
        contribution: str,
        now: datetime | None = None,
    ) -> AllocationRound:
        """Record one participant's secret, checked against its commitment."""
        allocation_round = self.get_round(code, number)
        allocation_round.reveal(participant, contribution, now or datetime.now(UTC))
        self.store.save(allocation_round)
        return allocation_round

    def draw_round(
        self,
        code: str,
        number: int,
        public_value: str,
        witnesses: str,
        now: datetime | None = None,
    ) -> AllocationRound:
        """Draw once every participant has revealed (with the public value, once published);
        then offer every assigned unit (see offer_drawn)."""
        allocation_round = self.get_round(code, number)
        allocation_round.draw(public_value, witnesses, now or datetime.now(UTC))
        self.store.save(allocation_round)
        self.offer_drawn(code, number)
        return allocation_round

    def void_round(
        self,
        code: str,
        number: int,
        withheld_by: list[str],
        reason: str,
        now: datetime | None = None,
    ) -> AllocationRound:
        """Void a round a participant did not reveal for (the documented rule: the round is
        closed without a draw and the next one is announced with fresh commitments)."""
        allocation_round = self.get_round(code, number)
        allocation_round.void(withheld_by, reason, now or datetime.now(UTC))
        self.store.save(allocation_round)
        return allocation_round

    def published_round(self, code: str, number: int) -> dict[str, Any]:
        """The round as the document anyone re-runs with ``tools/rerun_lottery.py``."""
        return published(self.get_round(code, number))

    def offer_drawn(self, code: str, number: int, today: date | None = None) -> int:
        """Offer each drawn unit to its household, a batch to a transaction (idempotent: run
        again after an interruption, it offers only what is not offered yet). Returns how many
        offers it made."""
        allocation_round = self.get_round(code, number)
        settlement = self.settlement(code)
        made = 0
        assignments = allocation_round.assignments
        if allocation_round.seed is None:
            raise HousingStateError("the round is not drawn yet", "round")
        for start in range(0, len(assignments), OFFER_BATCH):
            chunk = assignments[start : start + OFFER_BATCH]
            cases = relocations(self.store, [a.household_id for a in chunk])
            changed = allocation.offer_drawn(
                allocation_round, settlement, cases, today or date.today(), chunk
            )
            if changed:
                self.store.save(*changed)
                made += len(changed)
        return made
