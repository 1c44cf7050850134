"""The housing read model equals a rebuild from the log whatever order Kafka delivers the
partitions in.

A unit's status is changed by the events of several aggregates: the settlement registers it
(on the reference-data topic), households' relocations take it (offered, allocated, keys
handed over) and give it back (declined, expired), each keyed by its own case, and a declined
unit is offered to the next family in the same transaction. Kafka keeps the order of each
partition and nothing more. These tests relay a scenario to real topics, read every partition
back, apply the partitions to the housing projection interleaved as Kafka may deliver them,
and run the auditor's cross-check (a rebuild from the log) against it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import date

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.demo import great_return
from application.housing import relocations
from domain.base import acting_as
from domain.housing import AllocationRound
from infra.kafka import high_watermarks
from projections.admin import drop_schema
from projections.runner import (
    Delivery,
    advance_to_end,
    apply_batch,
    connect,
    current_generation,
    prepare,
)
from tests.integration.conftest import Stack
from tests.integration.kafka_reading import read_topic
from tests.integration.test_dead_letters import publish_everything
from tests.integration.test_eligibility import OPERATOR
from tests.integration.test_great_return import AGHALI, drawn, eligible_families, open_settlement

Partitions = dict[tuple[str, int], list[Delivery]]
BATCH = 50
TODAY = date.today()


def the_demo(stack: Stack) -> None:
    """The Great Return demo: 200 units, offers declined and expired, keys handed over."""
    great_return(stack.container.services, families=60, seed=7)


def units_passed_down_the_reserve_list(stack: Stack) -> None:
    """Four units for ten families: three offers declined, each unit offered to the next
    family on the reserve list in the same transaction (the last of those declined again); then
    every family holding an offer accepts, consents, travels and receives the keys."""
    container = stack.container
    families = eligible_families(container, [3] * 10)
    open_settlement(container, [3] * 4)
    result = drawn(container)
    assert isinstance(result, AllocationRound)
    moves = container.services.relocation
    with acting_as(OPERATOR):
        successors = [
            moves.decline_offer(a.household_id, "location", None) for a in result.assignments[:3]
        ]
        last = successors[-1]
        assert None not in successors and last is not None
        moves.decline_offer(last.household_id, "size", None)
        cases = relocations(container.store, families).values()
        holding = [case.household_id for case in cases if case.offer]
        for household_id in holding:
            moves.accept_offer(household_id)
            moves.give_consent(household_id, ["house", "date"], "C-1", "aysel")
        convoy = moves.schedule_convoy(AGHALI, TODAY, 1, holding)
        for household_id in moves.convoy_departed(convoy.id, TODAY):
            moves.step(household_id, "arrive", arrived_on=TODAY, members_arrived=3)
            moves.step(household_id, "hand_over_keys", handed_over_on=TODAY)
    assert len(holding) == 4


SCENARIOS = [the_demo, units_passed_down_the_reserve_list]


def relayed(stack: Stack, scenario: Callable[[Stack], None]) -> Partitions:
    """The scenario's events relayed to real topics and read back, partition by partition."""
    scenario(stack)
    publish_everything(stack)
    partitions: Partitions = {}
    for topic in stack.container.topics.event_topics:
        for m in read_topic(stack.settings.kafka_bootstrap_servers or "", topic):
            partitions.setdefault((topic, m.partition), []).append(
                Delivery(topic, m.partition, m.offset, m.value, m.key, m.headers)
            )
    return partitions


def interleaved(partitions: Partitions, rates: Sequence[int], seed: int) -> list[Delivery]:
    """One delivery order Kafka may produce: each partition keeps its order, and the next
    message comes from a partition chosen at random, each as likely as its rate (a partition
    fetched more slowly falls behind the others)."""
    queues = [list(reversed(q)) for _, q in sorted(partitions.items())]
    chooser = random.Random(seed)
    order: list[Delivery] = []
    while waiting := [i for i, q in enumerate(queues) if q]:
        chosen = chooser.choices(waiting, [rates[i] for i in waiting])[0]
        order.append(queues[chosen].pop())
    return order


def project_live(stack: Stack, order: list[Delivery]) -> None:
    """Build the live housing read model from nothing in ``order``, a batch at a time as a
    projector commits them, and record the partitions as read to their end."""
    projection = stack.container.projections.projector("housing").projection
    database_url = stack.settings.database_url or ""
    drop_schema(database_url, projection.schema)
    prepare(database_url, projection)
    with connect(database_url, projection.schema) as conn:
        generation = current_generation(conn)
        for start in range(0, len(order), BATCH):
            batch = order[start : start + BATCH]
            assert not apply_batch(conn, projection, batch, expected_generation=generation).dead
        ends = high_watermarks(
            stack.settings.kafka_bootstrap_servers or "", stack.container.topics.event_topics
        )
        advance_to_end(conn, ends, generation)


def unit_statuses(stack: Stack) -> dict[str, int]:
    with psycopg.connect(stack.settings.database_url or "") as conn:
        rows = conn.execute(
            "SELECT status, count(*) FROM projection_housing.rm_housing_units GROUP BY 1"
        ).fetchall()
    return {status: count for status, count in rows}


def test_units_keep_their_status_when_the_settlement_arrives_after_the_households(
    stack: Stack,
) -> None:
    partitions = relayed(stack, the_demo)
    reference_last = sorted(partitions, key=lambda p: p[0] == stack.container.topics.reference_data)
    project_live(stack, [d for p in reference_last for d in partitions[p]])

    report = stack.container.projections.cross_check("housing", "test")
    assert report.ok, report.to_text()
    assert unit_statuses(stack)["occupied"] > 20


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_housing_read_model_equals_a_rebuild_whatever_order_the_partitions_arrive_in(
    stack: Stack, scenario: Callable[[Stack], None]
) -> None:
    partitions = relayed(stack, scenario)
    assert len(partitions) >= 3  # the cases' partitions and the reference data's

    @settings(
        max_examples=10,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        rates=st.lists(st.integers(1, 10), min_size=len(partitions), max_size=len(partitions)),
        seed=st.integers(0, 2**32),
    )
    def any_delivery_order(rates: list[int], seed: int) -> None:
        project_live(stack, interleaved(partitions, rates, seed))
        report = stack.container.projections.cross_check("housing", "test")
        assert report.ok, report.to_text()

    any_delivery_order()
