"""A concurrent conflicting update is refused (409 over HTTP) and the winner's change is kept."""

from __future__ import annotations

import pytest

from application.ports import ConcurrentUpdate
from domain.base import Actor, CommandContext, acting_as
from infra.bootstrap import Container
from tests.integration.conftest import Stack, register_households


def test_the_second_of_two_conflicting_updates_is_refused_and_the_first_kept(stack: Stack) -> None:
    register_households(stack.container, 1)
    household_id = stack.container.application.recorder.select_notifications(1, 1)[0].originator_id
    other = Container(stack.settings)  # another API process
    try:
        with acting_as(CommandContext(Actor("op-1", "operator"), "c1", "k1")):
            mine = stack.container.services.registry.get_household(household_id)
            theirs = other.services.registry.get_household(household_id)
            mine.record_housing_condition("dormitory", "winner")
            theirs.record_housing_condition("others_flat", "loser")
            stack.container.store.save(mine)
            with pytest.raises(ConcurrentUpdate):
                other.store.save(theirs)
        assert (
            stack.container.services.registry.get_household(household_id).housing_condition
            == "dormitory"
        )
    finally:
        other.close()
