"""The relay reads stored uuids as their text (ADR 19): over the whole log of the demo's great
return, every kind of event it holds becomes the very message, key and headers that the domain
event read the library's way encodes to."""

from __future__ import annotations

from typing import Any

from application.demo import great_return
from application.services import Services
from infra import contract
from infra.relay import relay_mapper


def test_every_kind_of_event_the_great_return_records_is_published_byte_for_byte_the_same(
    services: Services,
) -> None:
    great_return(services, families=30, seed=11)
    store: Any = services.store
    app = store.app
    text = relay_mapper(app)
    kinds: set[str] = set()
    notifications = app.recorder.select_notifications(1, 1_000_000)
    for notification in notifications:
        as_objects = app.mapper.to_domain_event(notification)
        as_text = text.to_domain_event(notification)
        name, value = contract.encode(as_objects)
        assert contract.encode(as_text) == (name, value), notification.topic
        assert contract.headers(name, as_text, notification.id) == contract.headers(
            name, as_objects, notification.id
        )
        assert str(as_text.partition_key) == str(as_objects.partition_key)
        kinds.add(name)
    # The demo's return touches most of the contract: registration, surveys, eligibility,
    # the settlement and its lottery, offers, relocation and follow-ups.
    assert len(notifications) > 500
    assert len(kinds) >= 40, sorted(kinds)  # 42 of the contract's kinds when written
