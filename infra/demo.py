"""Demonstration households, reproducible from a seed (for the README and for trying things)."""

from __future__ import annotations

import random
import string
from datetime import date
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


def seed_households(app: ReintegrationApplication, count: int, seed: int) -> list[UUID]:
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
                ids.append(app.register_household(command))
            except PersonAlreadyRegistered:
                continue  # seeded again: these families are already registered
    return ids
