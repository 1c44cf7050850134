"""Dead letters are sequenced per case: while a case's event waits in the dead letters, the
case's later events are parked behind it (neither applied nor skipped) and other cases carry
on; a replay or a discard releases them in order; no reason, log line or header quotes the
failing row."""

from __future__ import annotations

import os
import secrets
import subprocess
import threading
from collections.abc import Iterator
from datetime import date
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY

from domain.base import Actor, CommandContext, acting_as
from domain.registry import NewMember, RegisterHousehold
from infra.bootstrap import PROJECTIONS, Container
from infra.config import Settings
from projections.admin import dead_letters, discard_dead_letter, replay_dead_letters
from tests.integration.conftest import Stack
from tests.integration.kafka_reading import read_topic
from tests.integration.test_dead_letters import publish_everything
from tests.support import ROOT, random_fin

HOUSEHOLDS = PROJECTIONS["households"]


def register(container: Container, address: str, first_names: tuple[str, ...] = ("Aysel",)) -> Any:
    """A household with its members; then a later event of the same case."""
    with acting_as(CommandContext(Actor("clerk", "operator"), "parking", "parking")):
        registry = container.services.registry
        household_id = registry.register_household(
            RegisterHousehold(
                [
                    NewMember(
                        random_fin(),
                        name,
                        "Məmmədova",
                        None,
                        date(1980 + i, 1, 1),
                        "female",
                        "head" if i == 0 else "child",
                    )
                    for i, name in enumerate(first_names)
                ],
                "ZAN-002",
                address,
            )
        )
        registry.record_housing_condition(household_id, "dormitory", None)
    return household_id


def refuse(database_url: str, table: str, column: str, marker: str) -> None:
    """Make the read model refuse rows holding the marker (as a broken migration might)."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            f"ALTER TABLE projection_households.{table} ADD CONSTRAINT refuse_{column} "
            f"CHECK ({column} NOT LIKE '%%{marker}%%')"
        )


def allow(database_url: str, table: str, column: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(f"ALTER TABLE projection_households.{table} DROP CONSTRAINT refuse_{column}")


def one(database_url: str, query: str, *params: Any) -> Any:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def parked(database_url: str) -> list[tuple[int, int]]:
    """(dead letter, offset) of every parked event, in order."""
    with psycopg.connect(database_url) as conn:
        return [
            (r[0], r[1])
            for r in conn.execute(
                'SELECT dead_letter_id, "offset" FROM projection_households.parked_events ORDER BY id'
            ).fetchall()
        ]


def parked_gauge() -> float:
    return (
        REGISTRY.get_sample_value(
            "reintegration_projection_parked_events", {"projection": "households"}
        )
        or 0.0
    )


def project(container: Container) -> None:
    container.projections.projector("households").run(threading.Event(), until_caught_up=True)


@pytest.fixture
def embedded(database_url: str) -> Iterator[Container]:
    """The composition root without Kafka: projections follow the event store's log."""
    container = Container(Settings(database_url=database_url))
    try:
        yield container
    finally:
        container.close()


def test_a_cases_later_events_wait_behind_its_dead_letter_and_replay_applies_them_in_order(
    stack: Stack, capfd: pytest.CaptureFixture[str]
) -> None:
    container = stack.container
    database_url = container.database_url
    marker = f"Marker{secrets.token_hex(6)}"
    container.projections.prepare()
    refuse(database_url, "rm_households", "current_address", marker)

    failing = register(container, f"Bakı, {marker} küçəsi 4", ("Aysel", "Nigar"))
    other = register(container, "Sumqayıt, yataqxana 2")
    publish_everything(stack)
    project(container)

    # The failing case: its registration is a dead letter, its three later events (two
    # persons, the housing condition) are parked behind it, nothing of it is in the read model.
    letters = dead_letters(database_url, HOUSEHOLDS)
    assert [(d.error_class, d.event_type, d.parked) for d in letters] == [
        ("CheckViolation", "reintegration.registry.HouseholdRegistered", 3)
    ]
    head = letters[0].id
    assert [p[0] for p in parked(database_url)] == [head, head, head]
    offsets = [p[1] for p in parked(database_url)]
    assert offsets == sorted(offsets) and min(offsets) > letters[0].offset
    assert (
        one(
            database_url,
            "SELECT count(*) FROM projection_households.rm_persons WHERE household_id = %s",
            failing,
        )
        == 0
    )
    # The other case is not held up.
    assert (
        one(
            database_url,
            "SELECT housing_condition FROM projection_households.rm_households "
            "WHERE household_id = %s",
            other,
        )
        == "dormitory"
    )
    state = container.projections.status("households")
    assert (state.dead_letters_pending, state.parked) == (1, 3)
    assert parked_gauge() == 3

    # A new event of the case is parked too: it must not overtake its registration.
    with acting_as(CommandContext(Actor("clerk", "operator"), "parking", "parking")):
        container.services.registry.record_housing_condition(failing, "others_flat", None)
    publish_everything(stack)
    project(container)
    assert len(parked(database_url)) == 4

    # No reason, log line or dead-letter header quotes the failing row.
    assert marker not in letters[0].error_message
    assert "refuse_current_address" in letters[0].error_message
    published = read_topic(
        stack.settings.kafka_bootstrap_servers or "", container.topics.dead_letters
    )
    assert len(published) == 1
    assert published[0].headers["dlq-error-class"] == "CheckViolation"
    assert all(marker not in value for value in published[0].headers.values())
    logged = capfd.readouterr()
    assert "dead letter" in logged.out + logged.err
    assert marker not in logged.out + logged.err

    # The operator fixes the cause and replays: the registration, then the parked events.
    allow(database_url, "rm_households", "current_address")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": stack.settings.kafka_bootstrap_servers or "",
        "KAFKA_TOPIC_PREFIX": stack.settings.kafka_topic_prefix,
    }
    cli = str(ROOT / ".venv/bin/reintegration")
    listing = subprocess.run(
        [cli, "dead-letters", "list"], env=env, capture_output=True, text=True, check=True
    )
    assert "CheckViolation" in listing.stdout and marker not in listing.stdout
    replay = subprocess.run(
        [cli, "dead-letters", "replay", "--by", "kamran"], env=env, capture_output=True, text=True
    )
    assert replay.returncode == 0, replay.stderr
    assert f"households #{head}: replayed; 4 parked events applied" in replay.stderr

    assert parked(database_url) == []
    assert dead_letters(database_url, HOUSEHOLDS) == []
    (resolved,) = dead_letters(database_url, HOUSEHOLDS, include_resolved=True)
    assert resolved.replayed_by == "kamran"
    assert (
        one(
            database_url,
            "SELECT housing_condition FROM projection_households.rm_households "
            "WHERE household_id = %s",
            failing,
        )
        == "others_flat"
    )
    report = container.projections.cross_check("households", "test")
    assert report.ok, report.to_text()

    # Replaying again changes nothing and is not an error.
    again = subprocess.run(
        [cli, "dead-letters", "replay", "--by", "kamran", "--id", str(head)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0, again.stderr
    assert "already replayed" in again.stderr


def test_replay_needs_a_name(stack: Stack) -> None:
    replay = subprocess.run(
        [str(ROOT / ".venv/bin/reintegration"), "dead-letters", "replay"],
        env={**os.environ, "DATABASE_URL": stack.container.database_url},
        capture_output=True,
        text=True,
    )
    assert replay.returncode == 2
    assert "--by" in replay.stderr


def test_a_dead_letter_that_still_fails_on_replay_changes_nothing(embedded: Container) -> None:
    database_url = embedded.database_url
    marker = f"Marker{secrets.token_hex(6)}"
    embedded.projections.prepare()
    refuse(database_url, "rm_households", "current_address", marker)
    register(embedded, f"Gəncə, {marker} 7")
    project(embedded)
    before = parked(database_url)
    (letter,) = dead_letters(database_url, HOUSEHOLDS)

    (outcome,) = replay_dead_letters(database_url, HOUSEHOLDS, "kamran")

    assert outcome.outcome == "still failing"
    assert outcome.reason is not None and marker not in outcome.reason
    assert parked(database_url) == before and len(before) == 2
    assert dead_letters(database_url, HOUSEHOLDS) == [letter]


def test_discarding_a_dead_letter_records_why_and_releases_the_parked_events_in_order(
    embedded: Container,
) -> None:
    """In embedded mode (the event store's log) the key is the case, as the relay keys it."""
    database_url = embedded.database_url
    marker = f"Marker{secrets.token_hex(6)}"
    embedded.projections.prepare()
    refuse(database_url, "rm_households", "current_address", marker)
    refuse(database_url, "rm_persons", "first_name", marker)
    failing = register(embedded, f"Bakı, {marker} 1", ("Aysel", f"Nigar{marker}", "Leyla"))
    other = register(embedded, "Xırdalan, 3")
    project(embedded)

    (letter,) = dead_letters(database_url, HOUSEHOLDS)
    assert letter.parked == 4  # three persons and the housing condition
    assert (
        one(
            database_url,
            "SELECT count(*) FROM projection_households.rm_persons WHERE household_id = %s",
            other,
        )
        == 1
    )

    outcome = discard_dead_letter(
        database_url, HOUSEHOLDS, letter.id, "Rauf Əliyev", "a test registration, withdrawn"
    )

    # Aysel applied; Nigar's registration fails in turn and holds the two events after it.
    assert outcome.outcome == "discarded"
    assert outcome.released == 1
    assert outcome.new_dead_letter is not None and outcome.still_parked == 2
    (discarded,) = [
        d for d in dead_letters(database_url, HOUSEHOLDS, include_resolved=True) if d.discarded_at
    ]
    assert (discarded.discarded_by, discarded.discard_reason) == (
        "Rauf Əliyev",
        "a test registration, withdrawn",
    )
    (head,) = dead_letters(database_url, HOUSEHOLDS)
    assert head.id == outcome.new_dead_letter and head.parked == 2
    assert marker not in head.error_message
    assert [p[0] for p in parked(database_url)] == [head.id, head.id]

    # Discarding again changes nothing.
    assert (
        discard_dead_letter(database_url, HOUSEHOLDS, letter.id, "Rauf Əliyev", "again").outcome
        == "already discarded"
    )

    allow(database_url, "rm_persons", "first_name")
    (replayed,) = replay_dead_letters(database_url, HOUSEHOLDS, "Rauf Əliyev")
    assert (replayed.outcome, replayed.released) == ("replayed", 2)
    assert parked(database_url) == []
    assert (
        one(
            database_url,
            "SELECT count(*) FROM projection_households.rm_persons WHERE household_id = %s",
            failing,
        )
        == 3
    )
    # The household's registration was given up: its row is missing, by decision, on record.
    assert (
        one(
            database_url,
            "SELECT count(*) FROM projection_households.rm_households WHERE household_id = %s",
            failing,
        )
        == 0
    )


def test_a_rebuilt_schema_starts_without_dead_letters_or_parked_events(stack: Stack) -> None:
    container = stack.container
    database_url = container.database_url
    marker = f"Marker{secrets.token_hex(6)}"
    container.projections.prepare()
    refuse(database_url, "rm_households", "current_address", marker)
    register(container, f"Bakı, {marker} 9")
    publish_everything(stack)
    project(container)
    assert container.projections.status("households").parked == 2

    assert container.projections.rebuild("households", threading.Event())

    state = container.projections.status("households")
    assert (state.dead_letters_pending, state.parked) == (0, 0)
    report = container.projections.cross_check("households", "test")
    assert report.ok, report.to_text()


def test_an_event_without_a_key_is_never_parked(embedded: Container) -> None:
    from projections.runner import Delivery, apply_batch, connect

    database_url = embedded.database_url
    embedded.projections.prepare()
    with connect(database_url, HOUSEHOLDS.schema) as conn:
        result = apply_batch(
            conn,
            HOUSEHOLDS,
            [Delivery("keyless", 0, 0, b"junk"), Delivery("keyless", 0, 1, b"junk")],
        )
    assert (len(result.dead), len(result.parked)) == (2, 0)
