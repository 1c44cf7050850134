"""An event applied again (a replay from another source, a redelivery) changes nothing that a
later event of the same aggregate set: each handler's change sits under its version guard."""

from __future__ import annotations

from datetime import date

import psycopg

from domain.base import Actor, CommandContext, acting_as
from domain.registry import NewMember, RegisterHousehold
from infra.bootstrap import PROJECTIONS
from projections.runner import Delivery, apply_batch, connect, prepare
from tests.integration.conftest import Stack
from tests.support import random_fin

SCHEMA = "replay_households"


def test_a_registration_applied_again_keeps_the_corrected_address(stack: Stack) -> None:
    container = stack.container
    app = container.application
    fin = random_fin()
    with acting_as(CommandContext(Actor("clerk", "operator"), "replay", "replay")):
        container.services.registry.register_household(
            RegisterHousehold(
                [NewMember(fin, "Aysel", "Məmmədova", None, date(1980, 1, 1), "female", "head")],
                "ZAN-002",
                "Bakı, yataqxana 7",
            )
        )
        container.services.registry.correct_person(
            fin, "registered_address", "Bakı, Xətai 12", "moved", "act 1"
        )
    notifications = app.recorder.select_notifications(1, 1000)
    deliveries = [
        Delivery("log", 0, n.id, container.projections.encode_notification(n)[0])
        for n in notifications
    ]
    registration = next(
        d
        for d, n in zip(deliveries, notifications, strict=True)
        if n.topic.endswith("Person.Registered")
    )
    projection = PROJECTIONS["households"]
    prepare(container.database_url, projection, SCHEMA)
    with connect(container.database_url, SCHEMA) as conn:
        apply_batch(conn, projection, deliveries)
        # The registration again, from a source whose position has not passed it.
        apply_batch(conn, projection, [Delivery("replay", 0, 0, registration.value)])
    with psycopg.connect(container.database_url) as conn:
        row = conn.execute(
            f"SELECT registered_address, version FROM {SCHEMA}.rm_persons WHERE fin = %s", (fin,)
        ).fetchone()
    assert row == ("Bakı, Xətai 12", 2)
