"""Demonstration households, reproducible from a seed (for the README and for trying things)."""

from __future__ import annotations

import random
import secrets
import string
from contextlib import suppress
from datetime import date
from typing import Any
from uuid import UUID

from application.housing import relocations
from application.services import Services
from application.shipped import shipped_rule_set
from domain.base import Actor, CommandContext, NotFound, acting_as
from domain.geography import settlements
from domain.housing import Commitment, seed_hash
from domain.registry import InvalidState, NewMember, PersonAlreadyRegistered, RegisterHousehold
from domain.surveys import shipped_pre_return_questionnaire

FEMALE = [
    "Aysel",
    "Nigar",
    "Səbinə",
    "Günel",
    "Ləman",
    "Aynur",
    "Şəbnəm",
    "Könül",
    "Ülviyyə",
    "Xədicə",
]
MALE = ["Elçin", "Rauf", "Vüqar", "Orxan", "Tural", "Əli", "Həsən", "Cavid", "Ilqar", "Şahin"]
SURNAMES = ["Məmmədov", "Əliyev", "Həsənov", "Quliyev", "Hüseynov", "Cəfərov", "Rəhimov", "Abbasov"]
ADDRESSES = [
    "Bakı, Xətai r-nu, yataqxana 4, otaq {n}",
    "Sumqayıt, 9-cu mkr, sanatoriya binası, otaq {n}",
    "Bərdə, tikintisi yarımçıq bina, mənzil {n}",
    "Bakı, Binəqədi r-nu, qohumların mənzili {n}",
]


def seed_households(
    services: Services,
    count: int,
    seed: int,
    documented: bool = True,
    origins: list[str] | None = None,
) -> list[UUID]:
    """Register ``count`` families reproducibly from ``seed``; when ``documented``, also record
    for each what a district office records before eligibility (see :func:`document_household`),
    with realistic shares of every housing condition, intention and finding."""
    rng = random.Random(seed)
    origins = origins or [
        code for code, s in settlements().items() if s.region == "East Zangezur"
    ] + ["SUS-001", "AGM-001"]
    context = CommandContext(
        Actor("demo-operator", "operator"), f"demo-seed-{seed}", f"demo-seed-{seed}"
    )
    ids: list[UUID] = []
    with acting_as(context):
        for n in range(count):
            surname = rng.choice(SURNAMES)
            size = rng.choices([1, 2, 3, 4, 5, 6, 7], weights=[8, 14, 20, 25, 18, 10, 5])[0]
            members = []
            for i in range(size):
                female = rng.random() < 0.5 if i else rng.random() < 0.3
                relationship = "head" if i == 0 else ("spouse" if i == 1 else "child")
                born = date(1950 + rng.randrange(45), 1 + rng.randrange(12), 1 + rng.randrange(28))
                if relationship == "child":
                    born = date(
                        1995 + rng.randrange(28), 1 + rng.randrange(12), 1 + rng.randrange(28)
                    )
                members.append(
                    NewMember(
                        fin="".join(
                            rng.choice(string.ascii_uppercase + string.digits) for _ in range(7)
                        ),
                        first_name=rng.choice(FEMALE if female else MALE),
                        last_name=surname + ("a" if female else ""),
                        patronymic=None,
                        birth_date=born,
                        sex="female" if female else "male",
                        relationship=relationship,
                    )
                )
            command = RegisterHousehold(
                members,
                rng.choice(origins),
                rng.choice(ADDRESSES).format(n=n + 1),
                f"+99450{rng.randrange(10**7):07d}" if rng.random() < 0.7 else None,
            )
            try:
                household_id = services.registry.register_household(command)
            except PersonAlreadyRegistered:
                continue  # seeded again: these families are already registered
            ids.append(household_id)
            if documented:
                document_household(services, household_id, **random_profile(rng))
    return ids


def random_profile(rng: random.Random) -> dict[str, Any]:
    """One family's circumstances, drawn with the shares a district office sees."""
    verified = rng.random() < 0.9
    return {
        "housing_condition": rng.choices(
            [
                "dormitory",
                "sanatorium",
                "unfinished_building",
                "administrative_building",
                "others_flat",
                "own_or_rented",
            ],
            weights=[30, 10, 10, 5, 25, 20],
        )[0],
        "intention": rng.choices(
            ["now", "within_12_months", "within_5_years", "undecided", "no", None],
            weights=[40, 20, 10, 12, 8, 10],
        )[0],
        "living_at_registered_address": (rng.random() < 0.95) if verified else None,
        "private_housing_after_displacement": rng.random() < 0.05,
        "sham_marriage_or_divorce": rng.random() < 0.01,
        "vulnerabilities": tuple(
            v
            for v, share in (
                ("martyr_family", 0.05),
                ("war_participant", 0.1),
                ("disability", 0.08),
            )
            if rng.random() < share
        ),
    }


def ensure_pre_return_questionnaire(services: Services) -> None:
    with suppress(InvalidState):  # already published
        services.surveys.publish_questionnaire(shipped_pre_return_questionnaire())


def document_household(
    services: Services,
    household_id: UUID,
    *,
    intention: str | None = "now",
    housing_condition: str | None = "dormitory",
    living_at_registered_address: bool | None = True,
    private_housing_after_displacement: bool = False,
    sham_marriage_or_divorce: bool = False,
    vulnerabilities: tuple[str, ...] = (),
    idp_status: bool = True,
    today: date | None = None,
) -> None:
    """Record what a district office records before eligibility is determined: IDP status of
    every member, the housing condition, vulnerabilities, a verification of circumstances
    and a completed pre-return survey. None leaves that part unrecorded."""
    today = today or date.today()
    registry = services.registry
    household = registry.get_household(household_id)
    if idp_status:
        for member in household.members:
            person = registry.get_person(member.fin)
            if person.idp_status != "active":
                registry.grant_idp_status(
                    member.fin, "Law 669-IQ of 21 May 1999", date(1994, 5, 1), None
                )
    if housing_condition and household.housing_condition != housing_condition:
        registry.record_housing_condition(household_id, housing_condition, None)
    for vulnerability in vulnerabilities:
        registry.record_vulnerability(household_id, vulnerability, None, None)
    if living_at_registered_address is not None:
        registry.verify_circumstances(
            household_id,
            living_at_registered_address,
            private_housing_after_displacement,
            sham_marriage_or_divorce,
            today,
            f"inspection act {str(household_id)[:8]}",
            None,
        )
    if intention is not None:
        ensure_pre_return_questionnaire(services)
        response_id = services.surveys.start_survey(household_id, "pre-return", 1)
        answers: list[tuple[str, object]] = [("intention", intention)]
        if intention in ("undecided", "no"):
            answers.append(("reasons_not_to_return", ["security"]))
        answers += [
            ("obstacles", ["none"]),
            ("employment_needed", "no"),
            ("health_needs", "no"),
            ("school_children", 0),
        ]
        for question, value in answers:
            services.surveys.answer(response_id, question, value)
        services.surveys.complete(response_id)


AGHALI = "ZAN-002"
DRAW_PARTICIPANTS = ("Public Council", "State Committee representative")


def great_return(services: Services, families: int = 400, seed: int = 2026) -> dict[str, Any]:
    """Aghali's first phase end to end: 200 houses of 3 to 5 rooms; families originating there
    registered and determined; clearance, readiness, opening; a public lottery (commit, then
    reveal); offers with some declines and an expiry, each unit passing to the reserve list;
    consent; convoys; arrivals, keys, residence, utilities; and the first follow-ups."""
    from datetime import timedelta

    from domain.eligibility import in_force

    service = services.housing
    moves = services.relocation
    follow_ups = services.reintegration
    rng = random.Random(seed)
    today = date.today()
    operator = CommandContext(Actor("demo-operator", "operator"), f"great-return-{seed}", "demo")
    supervisor = CommandContext(
        Actor("demo-supervisor", "supervisor"), f"great-return-{seed}", "demo"
    )

    eligibility = services.eligibility
    with acting_as(supervisor):
        if in_force(eligibility.versions("great-return-housing"), today) is None:
            if not eligibility.versions("great-return-housing"):
                eligibility.draft(shipped_rule_set())
            eligibility.approve(
                "great-return-housing", 1, "State Committee decision No. 14", date(2025, 1, 1)
            )
    household_ids = seed_households(services, families, seed, True, [AGHALI])
    with acting_as(operator):
        eligibility.determine_many(eligibility.households_in(AGHALI))
        try:
            service.settlement(AGHALI)
        except NotFound:  # first run: register Aghali
            service.register_settlement(AGHALI)
            service.certify_clearance(
                AGHALI,
                "ANAMA (mine action agency)",
                today - timedelta(days=30),
                "ANAMA-2022-ZAN-017",
            )
            service.certify_readiness(
                AGHALI,
                ["electricity", "gas", "water", "roads", "school", "clinic"],
                today,
                "Act 22/7",
            )
            rooms = [3] * 80 + [4] * 80 + [5] * 40
            service.register_units(
                AGHALI,
                [
                    {
                        "reference": f"{n + 1:03d}",
                        "address": f"Ağalı kəndi, {1 + n // 20}-ci küçə, ev {n % 20 + 1}",
                        "rooms": rooms[n],
                        "kind": "house",
                        "floor": None,
                    }
                    for n in range(200)
                ],
            )
    with acting_as(supervisor):
        if service.settlement(AGHALI).opened_on is None:
            service.open_for_return(AGHALI, today)
        # Each participant draws a fresh secret of its own, every run: a commitment is never
        # used twice (a second run of the demo announces its round with new ones).
        secrets_ = {name: secrets.token_hex(32) for name in DRAW_PARTICIPANTS}
        announced = service.announce_round(
            AGHALI, [Commitment(name, seed_hash(secret)) for name, secret in secrets_.items()]
        )
        for name, secret in secrets_.items():  # each participant reveals its own
            service.reveal(AGHALI, announced.round_number, name, secret)
        drawn = service.draw_round(AGHALI, announced.round_number, "", "Public Council observers")
    offered = [a.household_id for a in drawn.assignments]
    declined = offered[:6]  # offered[6:8] never answer: their offers expire
    never_answer = set(offered[6:8])  # their offers expire
    with acting_as(operator):
        for household_id in declined:
            moves.decline_offer(
                household_id, rng.choice(["location", "size", "not_ready_to_move"]), None
            )

        def accept_open_offers() -> None:
            for case in relocations(services.store, household_ids).values():
                if case.offer is not None and case.household_id not in never_answer:
                    moves.accept_offer(case.household_id)

        accept_open_offers()  # the drawn families, and those offered from the reserve list
        expiries = moves.expire_offers(
            AGHALI, today + timedelta(days=drawn.offer_deadline_days + 1)
        )
        accept_open_offers()
        allocated = [
            c.household_id
            for c in relocations(services.store, household_ids).values()
            if c.allocated_unit
        ]
        for household_id in allocated:
            moves.give_consent(
                household_id,
                [
                    "house and address",
                    "convoy date",
                    "services in the settlement",
                    "right to withdraw",
                ],
                f"CONSENT-{str(household_id)[:8]}",
                "demo-operator",
            )
        convoys = []
        for start, size in ((0, 10), (10, 18), (28, 15)):
            group = allocated[start : start + size]
            if group:
                convoys.append(moves.schedule_convoy(AGHALI, today, 1 + len(group) // 4, group))
        withdrawn = allocated[40] if len(allocated) > 40 else None
        if withdrawn:
            moves.withdraw_consent(withdrawn, "the family will wait for the school year to end")
        for convoy in convoys[:2]:
            for household_id in moves.convoy_departed(convoy.id, today):
                moves.step(
                    household_id, "arrive", arrived_on=today, members_arrived=rng.randint(1, 6)
                )
                moves.step(household_id, "hand_over_keys", handed_over_on=today)
        for household_id in convoys[0].household_ids if convoys else []:
            moves.register_residence(household_id, today, f"RES-{str(household_id)[:8]}")
            for utility in ("electricity", "gas", "water"):
                moves.step(
                    household_id,
                    "connect_utility",
                    utility=utility,
                    connected_on=today,
                    account_reference=None,
                )
            moves.step(household_id, "complete", completed_on=today)
            follow_ups.follow_up(
                household_id,
                "record_employment_need",
                persons=1,
                sectors=["agriculture"],
                note=None,
            )
            follow_ups.follow_up(
                household_id,
                "assess",
                framework="iasc",
                criterion="safety_and_security",
                met=True,
                evidence="settlement cleared and policed",
                assessor="demo-operator",
                assessed_on=today,
            )
            follow_ups.follow_up(
                household_id,
                "assess",
                framework="iasc",
                criterion="housing_land_and_property",
                met=True,
                evidence="keys and residence registered",
                assessor="demo-operator",
                assessed_on=today,
            )
        if convoys:
            first = convoys[0].household_ids[0]
            follow_ups.follow_up(
                first,
                "provide_employment",
                person_fin=services.registry.get_household(first).members[0].fin,
                employer="Zəngilan Aqrar MMC",
                programme="Great Return employment",
                start_date=today,
            )
            follow_ups.follow_up(
                first,
                "enrol",
                service="school",
                institution="Ağalı kənd məktəbi",
                person_fin=None,
                enrolled_on=today,
            )
    return {
        "families_registered": len(household_ids),
        "round": announced.round_number,
        "seed_hash": announced.seed_hash,
        "entrants": len(announced.entrants),
        "units_drawn": len(drawn.assignments),
        "reserve": len(drawn.reserve),
        "declined": len(declined),
        "expired": len(expiries),
        "allocated": len(allocated),
        "convoys": [str(c.id) for c in convoys],
        "consent_withdrawn": str(withdrawn) if withdrawn else None,
    }
