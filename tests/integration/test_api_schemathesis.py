"""Schemathesis over the OpenAPI document: every operation, for each role (and for callers
without a valid token), with valid and invalid data from a fixed seed. No answer may be a
5xx; every answer must have a documented status, content type and schema. Afterwards the
read models, rebuilt from the event log, must equal the live ones, with no dead letter:
whatever the boundary accepted reached every view."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.http import create_app
from domain.base import Actor
from infra.bootstrap import PROJECTIONS, Container
from infra.config import Settings
from tests.support import create_database, database_url

TOKENS = {
    "operator": ("fuzz-operator", Actor("fuzz-operator", "operator")),
    "supervisor": ("fuzz-supervisor", Actor("fuzz-supervisor", "supervisor")),
    "auditor": ("fuzz-auditor", Actor("fuzz-auditor", "auditor")),
    "integration": ("fuzz-integration", Actor("fuzz-integration", "integration")),
}
# Those who may write get more examples: theirs reach the domain and the store.
EXAMPLES = {"operator": 25, "supervisor": 25, "auditor": 8, "integration": 4, "anonymous": 3}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


# Its cases run in a pytest run of their own (infra/test.sh): on pytest-xdist's workers one
# case of each test below ran, and the check at the end found nothing written.
pytestmark = pytest.mark.alone

# The app is built when the module is imported (Schemathesis reads its OpenAPI document to
# generate the tests); it connects to its database only at the first request, and the
# module's first fixture creates that database.
_DATABASE = f"t_{secrets.token_hex(6)}"
_container = Container(
    Settings(
        database_url=database_url(os.environ.get("DATABASE_URL", ""), _DATABASE),
        http_docs="public",
        http_rate_limit="100000/minute",
    )
)
_app = create_app(_container, {token: actor for token, actor in TOKENS.values()})


@pytest.fixture(scope="module", autouse=True)
def container(server_url: str) -> Iterator[Container]:
    """The service's composition root on a fresh database, without Kafka: the read models are
    rebuilt from the event store's log at the end."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.fail("run without pytest-xdist (-n): its scheduler drops most generated cases")
    create_database(server_url, _DATABASE)
    _container.projections.prepare()  # as `reintegration api` and `serve` do at start
    try:
        yield _container
    finally:
        _container.close()


def _schema(role: str) -> Any:
    config = schemathesis.Config.from_dict(
        {
            "seed": 2026,
            "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
            "generation": {"mode": "all", "max-examples": EXAMPLES[role], "database": "none"},
            "phases": {"coverage": {"enabled": role in ("operator", "supervisor")}},
        }
    )
    return schemathesis.openapi.from_asgi("/openapi.json", _app, config=config).exclude(
        path_regex="^/metrics$"  # Prometheus text, read by the scraper
    )


def _run(case: Any, role: str) -> None:
    # No projector runs here (the read models are rebuilt at the end), so a read told to wait
    # for a position answers 503 by design; min_position has its own tests
    # (tests/e2e/test_read_your_writes.py).
    if case.query:
        case.query.pop("min_position", None)
    if role == "anonymous":
        case.headers = {
            k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"
        }
        case.call_and_validate(checks=CHECKS)
    else:
        token = TOKENS[role][0]
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)


@_schema("operator").parametrize()
def test_operators_get_no_5xx_and_documented_answers(case: Any) -> None:
    _run(case, "operator")


@_schema("supervisor").parametrize()
def test_supervisors_get_no_5xx_and_documented_answers(case: Any) -> None:
    _run(case, "supervisor")


@_schema("auditor").parametrize()
def test_auditors_get_no_5xx_and_documented_answers(case: Any) -> None:
    _run(case, "auditor")


@_schema("integration").parametrize()
def test_integration_clients_get_no_5xx_and_documented_answers(case: Any) -> None:
    _run(case, "integration")


@_schema("anonymous").parametrize()
def test_callers_without_a_token_get_no_5xx_and_documented_answers(case: Any) -> None:
    _run(case, "anonymous")


def test_whatever_the_fuzzing_recorded_reached_every_read_model(container: Container) -> None:
    """Runs after the fuzzing above (pytest keeps the file's order)."""
    container.projections.catch_up()
    recorder: Any = container.application.recorder
    with recorder.datastore.get_connection() as conn:
        row = conn.execute("SELECT count(*) AS n FROM reintegration_events").fetchone()
    assert row["n"] > 0, "the fuzzing should have recorded events (registrations at least)"
    for name in PROJECTIONS:
        report = container.projections.cross_check(name, "schemathesis")
        assert report.ok, report.to_text()
        assert container.projections.status(name).dead_letters_pending == 0
