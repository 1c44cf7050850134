"""The HTTP boundary (api/boundary.py, api/problems.py) on a small app of its own: what every
error becomes, before and after a route runs."""

from __future__ import annotations

import psycopg
import structlog
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import BaseModel

from api.http import problems
from api.http.boundary import Boundary
from domain.base import Actor, EventTooLarge

TOKEN = "s3cret"


class Body(BaseModel):
    name: str


def app() -> FastAPI:
    built = FastAPI()
    problems.install(built)
    built.add_middleware(
        Boundary,
        authenticate=lambda token: Actor("aysel", "operator") if token == TOKEN else None,
        max_body_bytes=1000,
    )

    @built.get("/boom")
    def boom() -> None:
        raise RuntimeError("person 5ZK2M7P, Məmmədova")  # personal data in the text

    @built.get("/database")
    def database() -> None:
        raise psycopg.OperationalError("connection refused")

    @built.post("/lottery")
    def too_large(body: Body) -> None:
        raise EventTooLarge("AllocationRound.Announced", 20_000_000, 16_777_216, "entrants")

    @built.post("/echo")
    def echo(body: Body) -> dict[str, str]:
        return {"name": body.name}

    return built


def counted(route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "reintegration_http_requests_total", {"method": "GET", "route": route, "status": status}
    )
    return value or 0.0


client = TestClient(app(), raise_server_exceptions=False)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_an_unexpected_error_is_a_problem_with_an_error_id_logged_with_its_frames_not_its_text() -> (
    None
):
    before = counted("/boom", "500")
    with structlog.testing.capture_logs() as logs:
        response = client.get("/boom", headers=AUTH)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/internal-error") and problem["error_id"]
    (error,) = [line for line in logs if line["event"] == "unexpected error"]
    assert error["error_id"] == problem["error_id"] and error["error_class"] == "RuntimeError"
    assert any(
        "test_http_boundary.py" in frame and "in boom" in frame for frame in error["traceback"]
    )
    assert "5ZK2M7P" not in repr(logs) and "5ZK2M7P" not in response.text
    assert counted("/boom", "500") == before + 1


def test_a_database_that_does_not_answer_is_a_503_with_retry_after() -> None:
    response = client.get("/database", headers=AUTH)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["type"].endswith("/unavailable")


def test_an_event_larger_than_the_log_accepts_is_a_413_naming_the_field() -> None:
    response = client.post("/lottery", json={"name": "x"}, headers=AUTH)
    assert response.status_code == 413
    assert response.json()["field"] == "entrants"


def test_no_token_is_a_401_whatever_the_body() -> None:
    for body in (b"{not json", b"x" * 5000, b'{"name": "Aysel"}'):
        response = client.post("/echo", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


def test_a_body_over_the_limit_is_a_413_before_it_is_parsed() -> None:
    response = client.post(
        "/echo",
        content=b"{" + b" " * 2000 + b"}",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["field"] == "body"


def test_malformed_json_names_its_line_and_column() -> None:
    response = client.post(
        "/echo",
        content=b'{\n "name": "x",\n}',
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert (response.json()["line"], response.json()["column"]) == (3, 1)


def test_control_characters_in_the_query_are_a_400_naming_the_parameter() -> None:
    response = client.get("/boom?name=a%00b", headers=AUTH)
    assert response.status_code == 400
    assert response.json()["field"] == "name"
