"""Demonstration households, reproducible from a seed (for the README and for trying things)."""

from __future__ import annotations

import random
import string
from contextlib import suppress
from datetime import date
from typing import Any
from uuid import UUID

from domain.base import Actor, CommandContext, acting_as
from domain.geography import settlements
from domain.registry import NewMember, PersonAlreadyRegistered, RegisterHousehold
from infra.application import ReintegrationApplication

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
    app: ReintegrationApplication, count: int, seed: int, documented: bool = True
) -> list[UUID]:
    """Register ``count`` families reproducibly from ``seed``; when ``documented``, also record
    for each what a district office records before eligibility (see :func:`document_household`),
    with realistic shares of every housing condition, intention and finding."""
    rng = random.Random(seed)
    origins = [code for code, s in settlements().items() if s.region == "East Zangezur"] + [
        "SUS-001",
        "AGM-001",
    ]
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
                household_id = app.register_household(command)
            except PersonAlreadyRegistered:
                continue  # seeded again: these families are already registered
            ids.append(household_id)
            if documented:
                document_household(app, household_id, **random_profile(rng))
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


def ensure_pre_return_questionnaire(app: ReintegrationApplication) -> None:
    from domain.registry import InvalidState
    from domain.surveys import shipped_pre_return_questionnaire

    with suppress(InvalidState):  # already published
        app.publish_questionnaire(shipped_pre_return_questionnaire())


def document_household(
    app: ReintegrationApplication,
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
    household = app.get_household(household_id)
    if idp_status:
        for member in household.members:
            person = app.get_person(member.fin)
            if person.idp_status != "active":
                app.grant_idp_status(
                    member.fin, "Law 669-IQ of 21 May 1999", date(1994, 5, 1), None
                )
    if housing_condition and household.housing_condition != housing_condition:
        app.record_housing_condition(household_id, housing_condition, None)
    for vulnerability in vulnerabilities:
        app.record_vulnerability(household_id, vulnerability, None, None)
    if living_at_registered_address is not None:
        app.verify_circumstances(
            household_id,
            living_at_registered_address,
            private_housing_after_displacement,
            sham_marriage_or_divorce,
            today,
            f"inspection act {str(household_id)[:8]}",
            None,
        )
    if intention is not None:
        ensure_pre_return_questionnaire(app)
        response_id = app.start_survey(household_id, "pre-return", 1)
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
            app.answer_survey(response_id, question, value)
        app.complete_survey(response_id)
