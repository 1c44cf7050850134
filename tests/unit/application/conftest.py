"""The fast tier: every use case on the eventsourcing library's in-memory persistence, with the
real domain and the real expression language; no PostgreSQL, no Kafka, no read model."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from uuid import UUID

import pytest

from application import services as wiring
from application.demo import document_household
from application.services import Services
from application.shipped import shipped_rule_set
from application.store import LibraryEventStore, in_memory
from domain.base import Actor, CommandContext, acting_as
from domain.registry import NewMember, RegisterHousehold
from infra.cel_language import CelLanguage
from tests.support import random_fin

OPERATOR = CommandContext(Actor("op-aysel", "operator"), "fast-tests", "fast-tests")
SUPERVISOR = CommandContext(Actor("sup-rauf", "supervisor"), "fast-tests", "fast-tests")
RULE_SET = "great-return-housing"
AGHALI = "ZAN-002"


@pytest.fixture
def services() -> Services:
    return wiring.build(LibraryEventStore(in_memory()), CelLanguage(), RULE_SET)


@pytest.fixture
def operator() -> Iterator[CommandContext]:
    with acting_as(OPERATOR) as context:
        yield context


def member(relationship: str = "head", born: date = date(1980, 1, 1), **given: str) -> NewMember:
    return NewMember(
        fin=given.get("fin", random_fin()),
        first_name=given.get("first_name", "Aysel"),
        last_name=given.get("last_name", "Məmmədova"),
        patronymic=None,
        birth_date=born,
        sex=given.get("sex", "female"),
        relationship=relationship,
    )


def family(size: int = 3, origin: str = AGHALI) -> RegisterHousehold:
    kinship = ["head", "spouse", "child", "child", "child", "child"]
    return RegisterHousehold(
        members=[
            member(kinship[i], date(1980 + 8 * (i > 1) + i, 1, 1), sex=("female", "male")[i % 2])
            for i in range(size)
        ],
        origin_settlement_code=origin,
        current_address="Bakı, yataqxana 4, otaq 12",
    )


def approved_rule_set(services: Services) -> None:
    with acting_as(OPERATOR):
        services.eligibility.draft(shipped_rule_set())
    with acting_as(SUPERVISOR):
        services.eligibility.approve(RULE_SET, 1, "Committee decision No. 14", date(2025, 1, 1))


def eligible_family(services: Services, size: int = 3, origin: str = AGHALI) -> UUID:
    """A family registered, documented as a district office does, and determined eligible."""
    with acting_as(OPERATOR):
        household_id = services.registry.register_household(family(size, origin))
        document_household(services, household_id)
        outcome = services.eligibility.determine(household_id)
    assert outcome.decision is not None and outcome.decision.result == "eligible"
    return household_id
