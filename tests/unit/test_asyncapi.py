from __future__ import annotations

import yaml

import schemas
from infra import asyncapi
from infra.contract import EVENT_SCHEMAS, REFERENCE_EVENTS


def test_the_committed_asyncapi_document_is_up_to_date() -> None:
    assert asyncapi.DOCUMENT.read_text(encoding="utf-8") == asyncapi.render(asyncapi.generate()), (
        "schemas/asyncapi.yaml is out of date: run `reintegration contract asyncapi`"
    )


def test_the_asyncapi_document_lists_every_topic_and_message_with_its_schema() -> None:
    document = yaml.safe_load(asyncapi.DOCUMENT.read_text(encoding="utf-8"))
    assert document["asyncapi"] == "3.0.0"
    cases = document["channels"]["cases"]
    assert cases["address"] == "reintegration.cases"
    assert cases["bindings"]["kafka"]["partitions"] == 6
    reference = {EVENT_SCHEMAS[e] for e in REFERENCE_EVENTS}
    for name in EVENT_SCHEMAS.values():
        schema = schemas.catalogue()[name]
        message = document["components"]["messages"][schema.short_name]
        assert message["payload"]["schema"] == schema.definition
        assert message["x-fingerprint"] == schema.fingerprint.hex()
        assert message["bindings"]["kafka"]["key"]["format"] == "uuid"
        channel = document["channels"]["referenceData" if name in reference else "cases"]
        assert schema.short_name in channel["messages"]
    headers = document["components"]["schemas"]["EventHeaders"]["properties"]
    assert set(headers) == {
        "event-type",
        "event-id",
        "notification-id",
        "correlation-id",
        "chain-hash",
    }
