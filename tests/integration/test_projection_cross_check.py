"""`reintegration audit projections` rebuilds from the log and finds any difference."""

from __future__ import annotations

import threading

import psycopg

from tests.integration.conftest import Stack, register_households
from tests.integration.test_dead_letters import publish_everything


def test_a_faithful_read_model_passes_and_a_tampered_one_is_reported(stack: Stack) -> None:
    register_households(stack.container, 25)
    publish_everything(stack)
    stack.container.projections.projector("households").run(threading.Event(), until_caught_up=True)

    clean = stack.container.projections.cross_check("households", "test")
    assert clean.ok, clean.to_text()
    assert clean.summary["rm_households rows (rebuilt)"] == 25

    with psycopg.connect(stack.settings.database_url or "") as conn:
        conn.execute(
            "UPDATE projection_households.rm_households SET origin_settlement_code = 'KAL-002' "
            "WHERE household_id = (SELECT household_id FROM projection_households.rm_households LIMIT 1)"
        )
    tampered = stack.container.projections.cross_check("households", "test")
    assert not tampered.ok
    problems = {(f["table"], f["problem"]) for f in tampered.findings}
    assert ("rm_households", "1 rows only in live") in problems
    assert ("rm_households", "1 rows missing from live") in problems
    with psycopg.connect(stack.settings.database_url or "") as conn:
        leftovers = conn.execute(
            "SELECT 1 FROM pg_namespace WHERE nspname LIKE 'audit_scratch%'"
        ).fetchall()
    assert leftovers == []
