"""The national log: a synthetic registry the size of the real one, with the history a case
builds up, generated reproducibly from a seed and written through the domain and the services.

At full size: 175,000 households (about 660,000 persons) across every settlement of the
reference data, each registered with its people, IDP status, housing condition and
vulnerabilities, its circumstances verified, and four waves of the pre-return survey (nine
households in ten answer each wave, every applicable question); every household's eligibility
determined under the shipped rule set; and eight settlements opened for return, each with
2,500 houses allocated by a public lottery among the 5,000 households originating there, then
offers answered (a few declined), consent, convoys, arrival, keys, residence, utilities,
completion and the reintegration follow-up (allowance, employment need, the eight IASC
criteria). About ten million events.

Order of the log, as it happened: the returning settlements' households first (registration
and the first survey wave), their eligibility, the lotteries and the moves; then the rest of
the registry; then everyone else's eligibility; then the later survey waves.
"""

from __future__ import annotations

import hashlib
import random
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from application.demo import random_profile
from application.housing import relocations
from application.shipped import shipped_rule_set
from domain import surveys
from domain.base import Actor, CommandContext, acting_as
from domain.geography import settlements
from domain.housing import Commitment, seed_hash
from domain.registration import register_household
from domain.registry import (
    COLLECTIVE_CENTRES,
    NewMember,
    RegisterHousehold,
)
from domain.reintegration import IASC_CRITERIA, Reintegration
from domain.surveys import shipped_pre_return_questionnaire

OPERATOR = CommandContext(Actor("bench-operator", "operator"), "national", "bench")
SUPERVISOR = CommandContext(Actor("bench-supervisor", "supervisor"), "national", "bench")
FIRST = {
    "female": ["Aysel", "Nigar", "Səbinə", "Günel", "Ləman", "Şəbnəm", "Aygün", "Nərmin"],
    "male": ["Rauf", "Elçin", "Ülvi", "Orxan", "Tural", "İlqar", "Vüqar", "Əli"],
}
LAST = ["Məmmədov", "Əliyev", "Həsənov", "Quliyev", "Hüseynov", "Cəfərov", "Rəhimov", "Abbasov"]
LAST += ["İsmayılov", "Nəsirov", "Babayev", "Kərimov", "Səfərov", "Mustafayev", "Vəliyev"]
SAVE_EVERY = 1000  # events per transaction, as the legacy import


@dataclass(frozen=True)
class Size:
    households: int
    returning_settlements: int
    origin_households_each: int  # households originating in each returning settlement
    houses_each: int
    waves: int


SIZES = {
    "quick": Size(5_000, 2, 500, 250, 4),
    "full": Size(175_000, 8, 5_000, 2_500, 4),
}


class Saver:
    """Saves aggregates a few hundred events at a time."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.pending: list[Any] = []
        self.events = 0

    def add(self, *aggregates: Any) -> None:
        self.pending += aggregates
        self.events += sum(len(a.pending_events) for a in aggregates)
        if self.events >= SAVE_EVERY:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.app.save(*self.pending)
        self.pending, self.events = [], 0


def survey_answers(rng: random.Random, intention: str) -> list[tuple[str, Any]]:
    """Every question of the pre-return survey that applies, answered as families answer."""
    returning = intention in ("now", "within_12_months", "within_5_years")
    answers: list[tuple[str, Any]] = [("intention", intention)]
    if returning:
        answers.append(("reasons_to_return", rng.sample(["home", "land", "family_graves"], 2)))
    else:
        answers.append(("reasons_not_to_return", rng.sample(["security", "jobs", "health"], 1)))
    answers.append(("obstacles", rng.sample(["mines", "housing", "jobs", "schools"], 2)))
    answers.append(("household_skills", rng.sample(["agriculture", "construction", "trade"], 1)))
    employment = rng.random() < 0.4
    answers.append(("employment_needed", "yes" if employment else "no"))
    if employment:
        answers.append(("employment_count", rng.randint(1, 3)))
        answers.append(("employment_sectors", rng.sample(["agriculture", "construction"], 1)))
    health = rng.random() < 0.1
    answers.append(("health_needs", "yes" if health else "no"))
    if health:
        answers.append(("health_details", "regular care for an elderly member"))
    answers.append(("school_children", rng.randint(0, 3)))
    answers.append(("kindergarten_children", rng.randint(0, 1)))
    if intention in ("now", "within_12_months"):
        answers.append(("earliest_move_date", (date.today() + timedelta(days=90)).isoformat()))
    return answers


class National:
    """Generates the log into the container's event store; ``progress(what, done, total)`` is
    called as it goes."""

    def __init__(
        self,
        container: Any,
        size: Size,
        seed: int,
        progress: Callable[[str, int, int], None] = lambda *_: None,
    ) -> None:
        self.container = container
        self.app = container.store
        self.size = size
        self.rng = random.Random(seed)
        self.progress = progress
        self.today = date.today()
        self.fins: set[str] = set()
        self.households: list[UUID] = []
        self.intentions: dict[UUID, str | None] = {}
        self.responses: dict[UUID, int] = {}
        codes = sorted(settlements())
        self.returning = [c for c in codes if c.startswith("ZAN")][: size.returning_settlements]
        if len(self.returning) < size.returning_settlements:
            self.returning += [c for c in codes if c not in self.returning][
                : size.returning_settlements - len(self.returning)
            ]
        self.others = [c for c in codes if c not in self.returning]
        self.figures: dict[str, Any] = {}

    def run(self) -> dict[str, Any]:
        with acting_as(SUPERVISOR):
            self.questionnaire = self.container.services.surveys.publish_questionnaire(
                shipped_pre_return_questionnaire()
            )
        with acting_as(OPERATOR):
            self.container.services.eligibility.draft(shipped_rule_set())
        with acting_as(SUPERVISOR):
            self.container.services.eligibility.approve(
                "great-return-housing", 1, "Resolution 65 (bench)", date(2025, 1, 1)
            )
        returning = self.size.returning_settlements * self.size.origin_households_each
        origins = [c for c in self.returning for _ in range(self.size.origin_households_each)]
        first = self._register(origins, "registry: returning settlements' households")
        # The lottery lists the households originating in a settlement from the read model.
        self.container.projections.catch_up()
        self._determine(first, "eligibility: returning settlements")
        for code in self.returning:
            self._return(code)
        rest = self.size.households - returning
        others = [self.rng.choice(self.others) for _ in range(rest)]
        later = self._register(others, "registry: everyone else")
        self._determine(later, "eligibility: everyone else")
        for wave in range(2, self.size.waves + 1):
            self._survey_wave(wave)
        self.figures["households"] = len(self.households)
        self.figures["persons"] = len(self.fins)
        return self.figures

    # --- the registry and the surveys -------------------------------------------------------

    def _register(self, origins: list[str], what: str) -> list[UUID]:
        saver = Saver(self.app)
        ids = []
        with acting_as(OPERATOR):
            for n, origin in enumerate(origins):
                ids.append(self._household(saver, origin))
                if n % 1000 == 999:
                    self.progress(what, n + 1, len(origins))
            saver.flush()
        self.progress(what, len(origins), len(origins))
        return ids

    def _fin(self) -> str:
        alphabet = string.ascii_uppercase + string.digits
        while True:
            fin = "".join(self.rng.choice(alphabet) for _ in range(7))
            if fin not in self.fins:
                self.fins.add(fin)
                return fin

    def _household(self, saver: Saver, origin: str) -> UUID:
        rng = self.rng
        size = rng.choices([1, 2, 3, 4, 5, 6, 7, 8], weights=[8, 14, 20, 24, 18, 9, 5, 2])[0]
        last = rng.choice(LAST)
        members = []
        for i in range(size):
            sex = "female" if rng.random() < (0.3 if i == 0 else 0.5) else "male"
            relationship = "head" if i == 0 else ("spouse" if i == 1 else "child")
            born = (
                date(1995 + rng.randrange(28), 1 + rng.randrange(12), 1 + rng.randrange(28))
                if relationship == "child"
                else date(1945 + rng.randrange(50), 1 + rng.randrange(12), 1 + rng.randrange(28))
            )
            members.append(
                NewMember(
                    fin=self._fin(),
                    first_name=rng.choice(FIRST[sex]),
                    last_name=last + ("a" if sex == "female" else ""),
                    patronymic=None,
                    birth_date=born,
                    sex=sex,
                    relationship=relationship,
                )
            )
        household, persons = register_household(
            RegisterHousehold(
                members,
                origin,
                f"Bakı, yataqxana {rng.randrange(500)}, otaq {rng.randrange(1, 200)}",
                f"+99450{rng.randrange(10**7):07d}" if rng.random() < 0.7 else None,
            ),
            self.today,
        )
        profile = random_profile(rng)
        for person in persons:
            person.grant_idp_status("Law 669-IQ", date(1994, 5, 1), None, self.today)
        household.record_housing_condition(profile["housing_condition"], None)
        for vulnerability in profile["vulnerabilities"]:
            household.record_vulnerability(vulnerability, None, None)
        if profile["living_at_registered_address"] is not None:
            household.verify_circumstances(
                profile["living_at_registered_address"],
                profile["private_housing_after_displacement"],
                profile["sham_marriage_or_divorce"],
                self.today,
                f"inspection act {len(self.households)}",
                None,
                self.today,
            )
        saver.add(household, *persons)
        self.households.append(household.id)
        self.intentions[household.id] = profile["intention"]
        if profile["intention"] is not None:
            saver.add(self._response(household.id, profile["intention"]))
        return household.id

    def _response(self, household_id: UUID, intention: str) -> Any:
        """The household's next response (numbered after its earlier ones; some skip a wave)."""
        n = self.responses[household_id] = self.responses.get(household_id, 0) + 1
        response = surveys.SurveyResponse.start(household_id, self.questionnaire, n)
        for question, value in survey_answers(self.rng, intention):
            response.answer(self.questionnaire, question, value)
        response.complete(self.questionnaire)
        return response

    def _survey_wave(self, wave: int) -> None:
        """A later wave: nine households in ten answer again; a few changed their mind."""
        saver = Saver(self.app)
        what = f"survey wave {wave}"
        choices = ["now", "within_12_months", "within_5_years", "undecided", "no"]
        with acting_as(OPERATOR):
            for n, household_id in enumerate(self.households):
                if self.rng.random() < 0.9:
                    intention = self.intentions[household_id] or self.rng.choice(choices)
                    if self.rng.random() < 0.15:
                        intention = self.rng.choice(choices)
                    saver.add(self._response(household_id, intention))
                if n % 1000 == 999:
                    self.progress(what, n + 1, len(self.households))
            saver.flush()
        self.progress(what, len(self.households), len(self.households))

    # --- eligibility ------------------------------------------------------------------------

    def _determine(self, households: list[UUID], what: str) -> None:
        service = self.container.services.eligibility
        with acting_as(OPERATOR):
            for start in range(0, len(households), 5000):
                service.determine_many(households[start : start + 5000])
                self.progress(what, min(start + 5000, len(households)), len(households))

    # --- the Great Return -------------------------------------------------------------------

    def _return(self, code: str) -> None:
        """Open a settlement, draw its houses, and move the families in."""
        service = self.container.services.housing
        relocation = self.container.services.relocation
        rng = self.rng
        today = self.today
        what = f"return to {code}"
        with acting_as(OPERATOR):
            service.register_settlement(code)
            service.certify_clearance(
                code, "ANAMA (mine action agency)", today - timedelta(days=30), f"ANAMA-{code}"
            )
            service.certify_readiness(
                code, ["electricity", "gas", "water", "roads", "school", "clinic"], today, "Act"
            )
            rooms = [2, 3, 3, 4, 4, 5]
            service.register_units(
                code,
                [
                    {
                        "reference": f"{n + 1:04d}",
                        "address": f"{code}, {1 + n // 25}-ci küçə, ev {n % 25 + 1}",
                        "rooms": rooms[n % len(rooms)],
                        "kind": "house",
                        "floor": None,
                    }
                    for n in range(self.size.houses_each)
                ],
            )
        with acting_as(SUPERVISOR):
            service.open_for_return(code, today)
            # Two participants, each with a secret of its own (reproducible from the seed).
            secrets_ = {
                name: hashlib.sha256(f"{code}-{name}-{rng.random()}".encode()).hexdigest()
                for name in ("Public Council", "Committee representative")
            }
            announced = service.announce_round(
                code, [Commitment(name, seed_hash(secret)) for name, secret in secrets_.items()]
            )
            for name, secret in secrets_.items():
                service.reveal(code, announced.round_number, name, secret)
            drawn = service.draw_round(code, announced.round_number, "", "Public Council")
        self.progress(what, 1, 5)
        offered = [a.household_id for a in drawn.assignments]
        moving: list[UUID] = []
        with acting_as(OPERATOR):
            for chunk in _chunks(offered, 200):
                saver = Saver(self.app)
                for case in relocations(self.app, chunk).values():
                    if rng.random() < 0.03:
                        case.decline_offer(rng.choice(["location", "size"]), None)
                    else:
                        case.accept_offer(today)
                        case.give_consent(
                            ["house and address", "convoy date", "right to withdraw"],
                            f"CONSENT-{str(case.household_id)[:8]}",
                            "bench-operator",
                        )
                        moving.append(case.household_id)
                    saver.add(case)
                saver.flush()
            self.progress(what, 2, 5)
            convoys = [
                relocation.schedule_convoy(code, today, 1 + len(group) // 4, group)
                for group in _chunks(moving, 40)
            ]
            for convoy in convoys:
                relocation.convoy_departed(convoy.id, today)
            self.progress(what, 3, 5)
            settlement = service.settlement(code)
            for chunk in _chunks(moving, 200):
                saver = Saver(self.app)
                cases = relocations(self.app, chunk)
                households = self.app.load_many(chunk)
                for household_id, case in cases.items():
                    case.arrive(today, rng.randint(1, 6))
                    case.hand_over_keys(today)
                    case.register_residence(today, f"RES-{str(household_id)[:8]}")
                    for utility in ("electricity", "gas", "water"):
                        case.connect_utility(utility, today, None)
                    case.complete(today)
                    # As the housing service does when residence is registered.
                    follow_up = Reintegration(household_id=household_id, settlement_code=code)
                    follow_up.change_allowance(
                        households[household_id].housing_condition in COLLECTIVE_CENTRES,
                        settlement.opened_on,
                        "residence registered in the settlement of return",
                    )
                    follow_up.record_employment_need(rng.randint(1, 3), ["agriculture"], None)
                    for criterion in IASC_CRITERIA:
                        follow_up.assess(
                            "iasc", criterion, rng.random() < 0.8, "visit", "bench-operator", today
                        )
                    saver.add(case, follow_up)
                saver.flush()
        self.progress(what, 5, 5)


def _chunks(items: list[UUID], n: int) -> Iterator[list[UUID]]:
    for start in range(0, len(items), n):
        yield items[start : start + n]
