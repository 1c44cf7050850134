"""The pure parts of staying up: which dependency an error names, backoff, one line per change,
and a Kafka client that repeats itself is cut short."""

from __future__ import annotations

import logging

import psycopg
import pytest
from confluent_kafka import KafkaError, KafkaException
from eventsourcing import persistence
from structlog.testing import capture_logs

from infra.resilience import (
    KAFKA,
    POSTGRESQL,
    Backoff,
    Dependency,
    KafkaUnavailable,
    RateLimited,
    unavailable,
)


def test_errors_name_the_dependency_that_went_and_others_name_none() -> None:
    assert unavailable(psycopg.OperationalError("gone")) == POSTGRESQL
    assert unavailable(persistence.OperationalError("gone")) == POSTGRESQL
    assert unavailable(KafkaException(KafkaError(KafkaError._TRANSPORT))) == KAFKA
    assert unavailable(KafkaUnavailable("no answer")) == KAFKA
    try:
        try:
            raise psycopg.OperationalError("gone")
        except psycopg.OperationalError as cause:
            raise RuntimeError("while reading") from cause
    except RuntimeError as wrapped:
        assert unavailable(wrapped) == POSTGRESQL
    assert unavailable(ValueError("a bug")) is None


def test_backoff_grows_to_its_ceiling_with_jitter_and_starts_again_after_reset() -> None:
    backoff = Backoff(first=0.25, most=5.0)
    delays = [backoff.next() for _ in range(10)]
    assert 0.125 <= delays[0] <= 0.25
    assert all(d <= 5.0 for d in delays) and max(delays) >= 2.5
    backoff.reset()
    assert backoff.next() <= 0.25


def test_a_dependency_says_once_that_it_went_and_once_that_it_is_back() -> None:
    database = Dependency("test-database")
    with capture_logs() as logs:
        for _ in range(3):
            database.lost(psycopg.OperationalError("gone"))
        assert not database.state()["up"]
        for _ in range(3):
            database.back()
    assert [entry["event"] for entry in logs] == [
        "dependency unavailable",
        "dependency available again",
    ]
    assert logs[0]["error_class"] == "OperationalError"  # the class, never the text


def test_a_kafka_client_repeating_itself_is_cut_short_and_says_how_much_was_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [0.0]
    monkeypatch.setattr("infra.resilience.time.monotonic", lambda: clock[0])
    limit = RateLimited(burst=5, per_s=60)

    def record(port: int) -> logging.LogRecord:
        message = f"FAIL Connect to 127.0.0.1:{port} failed: Connection refused"
        return logging.LogRecord("kafka.client", logging.ERROR, "", 0, message, None, None)

    passed = [limit.filter(record(9000 + i)) for i in range(20)]
    assert passed.count(True) == 5
    clock[0] = 61.0
    late = record(9100)
    assert limit.filter(late)
    assert "(15 similar lines dropped)" in late.getMessage()
    other = logging.LogRecord("kafka.client", logging.INFO, "", 0, "another line", None, None)
    assert limit.filter(other)


def test_the_pools_get_their_timeouts_back_whoever_saw_the_database_return_first() -> None:
    from types import SimpleNamespace

    from infra.resilience import DatabaseMonitor, dependency

    pool = SimpleNamespace(timeout=5.0)
    monitor = DatabaseMonitor(lambda: "unused", lambda: [pool])
    monitor.start = lambda: None  # type: ignore[method-assign]  (no thread: driven by hand)
    monitor.watched = []
    monitor._down(psycopg.OperationalError("gone"))
    assert pool.timeout == DatabaseMonitor.FAIL_FAST_S
    dependency(POSTGRESQL).back()  # /readyz or a worker saw it first
    monitor._up()
    assert pool.timeout == 5.0
