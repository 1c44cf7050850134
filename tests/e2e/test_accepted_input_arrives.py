"""What the API accepts always arrives: property tests that send generated requests (text of
every script, combining marks, emoji, right-to-left letters, line breaks, and now and then
characters no reader could hold) to the running service with Kafka, then check that every
accepted write is in the read models exactly as stored (NFC), every refused one left nothing
behind, no projection dead-lettered anything, and each read model equals a rebuild from the
event log."""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.bootstrap import PROJECTIONS, Container
from infra.config import Settings
from tests.e2e.conftest import RunningService
from tests.support import random_fin, wait_until

AZERBAIJANI = "abcçdeəfgğhxıijkqlmnoöprsştuüvyzABCÇDEƏFGĞHXIİJKQLMNOÖPRSŞTUÜVYZ"
# Mostly letters people write, sometimes anything at all (controls and invisible characters
# included): the service must accept the first and refuse the second, never store half.
letters = st.characters(
    categories=("Lu", "Ll", "Lt", "Lo", "Mn", "Nd"), exclude_characters="\u0345"
)
# Characters some reader downstream refuses or misreads, and then any character at all.
hostile = st.sampled_from(
    ["\x00", "\x1b", "\x85", "\u202e", "\u2066", "\u200b", "\ufeff", "\uffff"]
)
anything = st.one_of(hostile, st.characters(codec="utf-8"))
name_chars = st.one_of(st.sampled_from(AZERBAIJANI), letters, st.just(" "), st.just("-"))
line_chars = st.one_of(name_chars, st.sampled_from(",./№()'\"«»:;0123456789 😀"))


@st.composite
def sometimes_spoiled(draw: Any, alphabet: st.SearchStrategy[str], max_size: int) -> str:
    """Text from ``alphabet``; one time in eight, with one character of any kind in it."""
    value: str = draw(st.text(alphabet, min_size=1, max_size=max_size))
    if draw(st.integers(0, 7)) == 0:
        at = draw(st.integers(0, len(value)))
        value = value[:at] + draw(anything) + value[at:]
    return value


names = sometimes_spoiled(name_chars, 40)
lines = sometimes_spoiled(line_chars, 120)
paragraphs = sometimes_spoiled(st.one_of(line_chars, st.sampled_from("\n\t\r ")), 200)


def nfc(value: str) -> str:
    return unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n")).strip()


@st.composite
def registrations(draw: Any) -> dict[str, Any]:
    size = draw(st.integers(1, 4))
    members = []
    for i in range(size):
        members.append(
            {
                "fin": random_fin(),
                "first_name": draw(names),
                "last_name": draw(names),
                "patronymic": draw(st.none() | names),
                "birth_date": draw(st.dates(date(1900, 1, 1), date(2025, 12, 31))).isoformat(),
                "sex": draw(st.sampled_from(["female", "male"])),
                "relationship": "head"
                if i == 0
                else draw(st.sampled_from(["spouse", "child", "parent"])),
                "registered_address": draw(st.none() | lines),
            }
        )
    return {
        "origin_settlement_code": draw(
            st.sampled_from(["ZAN-002", "LAC-002", "SUS-001", "AGD-002"])
        ),
        "current_address": draw(lines),
        "contact_phone": draw(
            st.none() | st.sampled_from(["+994 50 123 45 67", "(012) 555-12-34"])
        ),
        "members": members,
    }


@dataclass
class Ledger:
    """What the API said it accepted (to read back), and how often it refused."""

    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: int = 0


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    yield Ledger()


def stored_events(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM reintegration_events").fetchone()
        return int(row[0]) if row else 0


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(registration=registrations(), note=paragraphs, reason=lines)
def _register_and_document(
    service: RunningService, ledger: Ledger, registration: dict[str, Any], note: str, reason: str
) -> None:
    database_url = service.database_url or ""
    with service.client("operator") as client:
        before = stored_events(database_url)
        created = client.post("/api/v1/households", json=registration)
        if created.status_code != 201:
            assert created.status_code == 422, created.text
            assert stored_events(database_url) == before  # nothing half-written
            ledger.refused += 1
            return
        household_id = created.json()["household_id"]
        ledger.accepted[household_id] = registration
        head_fin = registration["members"][0]["fin"]
        corrected = client.post(
            f"/api/v1/persons/{head_fin}/corrections",
            json={"field": "patronymic", "new_value": reason or None, "reason": "typo in the act"},
        )
        assert corrected.status_code in (200, 409, 422), corrected.text
        if corrected.status_code == 200:
            registration["members"][0]["patronymic"] = reason or None
        # The case's last event: once the read model shows it, it shows everything before.
        condition = client.post(
            f"/api/v1/households/{household_id}/housing-condition",
            json={"condition": "dormitory", "note": note},
        )
        if condition.status_code == 422:
            condition = client.post(
                f"/api/v1/households/{household_id}/housing-condition",
                json={"condition": "dormitory"},
            )
        assert condition.status_code == 200, condition.text


def test_every_accepted_write_reaches_every_read_model(
    service_with_kafka: RunningService, ledger: Ledger
) -> None:
    _register_and_document(service_with_kafka, ledger)
    assert len(ledger.accepted) >= 20, "the generator should make mostly valid requests"
    assert ledger.refused >= 1, "and now and then one the service must refuse"
    with service_with_kafka.client("operator") as client:
        for household_id, registration in ledger.accepted.items():
            read = wait_until(
                lambda h=household_id: _read_when_current(client, h),
                timeout_s=60,
                what=f"household {household_id} in the read model",
            )
            assert read["current_address"] == nfc(registration["current_address"])
            for given_member, shown in zip(registration["members"], read["members"], strict=True):
                assert shown["fin"] == given_member["fin"]
                for name in ("first_name", "last_name"):
                    assert shown[name] == nfc(given_member[name])
                patronymic = given_member["patronymic"]
                assert shown["patronymic"] == (nfc(patronymic) or None if patronymic else None)
    container = Container(
        Settings(
            database_url=service_with_kafka.database_url,
            kafka_bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"],
            kafka_topic_prefix=service_with_kafka.topic_prefix or "",
        )
    )
    try:
        for name in PROJECTIONS:
            wait_until(
                lambda n=name: container.projections.status(n).total_lag == 0,
                timeout_s=60,
                what=f"projection {name} caught up",
            )
            assert container.projections.status(name).dead_letters_pending == 0
            report = container.projections.cross_check(name, "property test")
            assert report.ok, report.to_text()
    finally:
        container.close()


def _read_when_current(client: httpx.Client, household_id: str) -> dict[str, Any] | None:
    response = client.get(f"/api/v1/households/{household_id}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    household: dict[str, Any] = response.json()
    return household if household["housing_condition"] == "dormitory" else None
