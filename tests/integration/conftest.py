from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import pytest

from domain.base import Actor, CommandContext, acting_as
from domain.registry import NewMember, RegisterHousehold
from infra.bootstrap import Container
from infra.config import Settings
from tests.support import random_fin

# The command-line tests run commands under self-asserted --by names, which development mode
# alone accepts (with the logs in JSON, as production writes them); test_cli_identity.py runs
# commands as production does, with tokens.
if "REINTEGRATION_ENV" not in os.environ:
    os.environ["REINTEGRATION_ENV"] = "development"
    os.environ.setdefault("LOG_FORMAT", "json")


@pytest.fixture
def container(database_url: str) -> Iterator[Container]:
    """The composition root on a fresh database, its read models created (modules whose tests
    need other settings define their own)."""
    c = Container(Settings(database_url=database_url))
    c.projections.prepare()
    try:
        yield c
    finally:
        c.close()


@dataclass
class Stack:
    """The composition root on a fresh database and fresh topics."""

    container: Container
    settings: Settings


@pytest.fixture
def stack(database_url: str, kafka_bootstrap: str, topic_prefix: str) -> Iterator[Stack]:
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=topic_prefix,
        kafka_partitions=3,
    )
    container = Container(settings)
    container.ensure_topics()
    try:
        yield Stack(container, settings)
    finally:
        container.close()


def register_households(container: Container, count: int, members: int = 3) -> int:
    """Register ``count`` households through the application; return how many events that made."""
    context = CommandContext(Actor("seeder", "operator"), "seed-correlation", "seed-command")
    with acting_as(context):
        for i in range(count):
            container.services.registry.register_household(
                RegisterHousehold(
                    members=[
                        NewMember(
                            fin=random_fin(),
                            first_name=f"Ad{j}",
                            last_name=f"Soyad{i}",
                            patronymic=None,
                            birth_date=date(1950 + j * 9, 1 + j, 1 + i % 27),
                            sex="female" if j % 2 == 0 else "male",
                            relationship="head" if j == 0 else "child",
                        )
                        for j in range(1 + i % members)
                    ],
                    origin_settlement_code=["ZAN-002", "LAC-002", "SUS-001", "AGD-002"][i % 4],
                    current_address=f"Sumqayıt, yataqxana {i}",
                )
            )
    return sum(1 + 1 + i % members for i in range(count))
