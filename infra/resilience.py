"""Staying up when PostgreSQL or Kafka goes away, and saying so.

Every long-running process (``serve``, ``api``, ``relay``, ``project``) keeps one
:class:`Dependency` per thing it needs. When one goes, its state flips once: one log line
(``dependency unavailable``), the ``reintegration_dependency_up`` gauge to 0, ``/readyz``
answers 503. Workers wait for it with :func:`wait_for` (backoff with jitter, probing it) and
carry on by themselves; when it answers again, one line (``dependency available again``, with
how long it was gone) and the gauge back to 1. A worker's other failures are logged with their
traceback and the worker is started again after a backoff (:func:`supervised`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog
from prometheus_client import Gauge

from infra.logging import safe_traceback

log = structlog.get_logger(__name__)

POSTGRESQL = "postgresql"
KAFKA = "kafka"

DEPENDENCY_UP = Gauge(
    "reintegration_dependency_up",
    "1 while the process reaches the dependency, 0 while it does not.",
    ["dependency"],
)


class Dependency:
    """Whether this process reaches one dependency; logs each change once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.up = True
        self.changed_at = time.monotonic()
        self.reason: str | None = None
        self.when_back: list[Callable[[], object]] = []
        self._lock = threading.Lock()
        DEPENDENCY_UP.labels(name).set(1)

    def lost(self, error: BaseException | str) -> None:
        reason = error if isinstance(error, str) else type(error).__name__
        with self._lock:
            if not self.up:
                return
            self.up, self.changed_at, self.reason = False, time.monotonic(), reason
        DEPENDENCY_UP.labels(self.name).set(0)
        log.warning("dependency unavailable", dependency=self.name, error_class=reason)

    def back(self) -> None:
        with self._lock:
            if self.up:
                return
            gone_s = time.monotonic() - self.changed_at
            self.up, self.changed_at, self.reason = True, time.monotonic(), None
        for callback in list(self.when_back):  # e.g. drop the pools' broken connections
            try:
                callback()
            except Exception:
                log.warning("could not refresh after reconnecting", dependency=self.name)
        DEPENDENCY_UP.labels(self.name).set(1)
        log.info("dependency available again", dependency=self.name, unavailable_s=round(gone_s, 1))

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "up": self.up,
            "for_s": round(time.monotonic() - self.changed_at, 1),
        }
        if self.reason:
            out["error_class"] = self.reason
        return out


_registry: dict[str, Dependency] = {}
_registry_lock = threading.Lock()


def dependency(name: str) -> Dependency:
    """This process's one record of a dependency."""
    with _registry_lock:
        if name not in _registry:
            _registry[name] = Dependency(name)
        return _registry[name]


def readiness(names: list[str]) -> tuple[bool, dict[str, Any]]:
    """Whether every named dependency is up, and each one's state (for ``/readyz``)."""
    states = {name: dependency(name).state() for name in names}
    return all(s["up"] for s in states.values()), states


class Readiness:
    """``/readyz``: asks each dependency now (at most once a second), so that readiness is
    true even before a worker has noticed a loss (a relay waiting on Kafka, an idle
    projector); what it finds updates the shared state (and its one log line)."""

    def __init__(self, probes: dict[str, Callable[[], object]], every_s: float = 1.0) -> None:
        self.probes = probes
        self.every_s = every_s
        self._lock = threading.Lock()
        self._last = -every_s
        self._found: tuple[bool, dict[str, Any]] = (False, {})

    def __call__(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            if time.monotonic() - self._last >= self.every_s:
                for name, probe in self.probes.items():
                    try:
                        probe()
                    except Exception as exc:
                        dependency(name).lost(exc)
                    else:
                        dependency(name).back()
                self._found = readiness(list(self.probes))
                self._last = time.monotonic()
            return self._found


def unavailable(exc: BaseException) -> str | None:
    """The dependency an exception says is gone, or None when it says something else."""
    import psycopg
    from confluent_kafka import KafkaException
    from eventsourcing import persistence

    seen: BaseException | None = exc
    for _ in range(10):  # the exception and what caused it
        if seen is None:
            return None
        if isinstance(
            seen,
            psycopg.OperationalError
            | psycopg.InterfaceError
            | persistence.OperationalError
            | persistence.InterfaceError,
        ):
            return POSTGRESQL
        if isinstance(seen, KafkaException | KafkaUnavailable):
            return KAFKA
        seen = seen.__cause__ or seen.__context__
    return None


class KafkaUnavailable(Exception):
    """Kafka did not answer in time."""


class Backoff:
    """Exponential backoff with full jitter, from ``first`` up to ``most`` seconds."""

    def __init__(self, first: float = 0.25, most: float = 5.0) -> None:
        self.first, self.most, self.attempt = first, most, 0

    def next(self) -> float:
        ceiling = min(self.most, self.first * 2**self.attempt)
        self.attempt += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0


def wait_for(name: str, probe: Callable[[], object], stop: threading.Event) -> bool:
    """Probe a lost dependency with backoff until it answers (True) or ``stop`` is set."""
    backoff = Backoff()
    while not stop.wait(backoff.next()):
        try:
            probe()
        except Exception:
            continue
        dependency(name).back()
        return True
    return False


def supervised(
    what: str,
    build: Callable[[], Any],
    stop: threading.Event,
    probes: dict[str, Callable[[], object]],
) -> None:
    """Run a worker (``build().run(stop)``) until ``stop``. When it fails because a dependency
    went, wait for that dependency and start it again; after any other failure, log it with its
    traceback and start it again after a backoff."""
    backoff = Backoff(first=1.0, most=30.0)
    while not stop.is_set():
        try:
            build().run(stop)
            backoff.reset()
        except Exception as exc:
            name = unavailable(exc)
            if name is not None and name in probes:
                dependency(name).lost(exc)
                if wait_for(name, probes[name], stop):
                    log.info("worker resuming", worker=what, dependency=name)
                continue
            delay = backoff.next()
            log.error(
                "worker failed; starting it again",
                worker=what,
                in_s=round(delay, 1),
                error_class=type(exc).__name__,
                traceback=safe_traceback(exc),  # frames only: an error's text may quote data
            )
            stop.wait(delay)


def postgresql_probe(database_url: str) -> Callable[[], object]:
    def probe() -> object:
        import psycopg

        with psycopg.connect(database_url, connect_timeout=2, autocommit=True) as conn:
            return conn.execute("SELECT 1").fetchone()

    return probe


class KafkaWatch:
    """Follows a Kafka client's view of the cluster: its ``error_cb`` marks Kafka lost when all
    brokers are down; :meth:`check`, called from a worker's idle loop, asks the client for
    metadata now and then while Kafka is lost and marks it back when that answers."""

    def __init__(self, every_s: float = 1.0) -> None:
        self.kafka = dependency(KAFKA)
        self.every_s = every_s
        self._last = 0.0

    def error_cb(self, error: Any) -> None:
        from confluent_kafka import KafkaError

        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self.kafka.lost("all brokers down")
        elif error.fatal():
            self.kafka.lost(f"fatal: {error.name()}")

    def check(self, client: Any) -> None:
        if self.kafka.up or time.monotonic() - self._last < self.every_s:
            return
        self._last = time.monotonic()
        try:
            client.list_topics(timeout=1)
        except Exception:
            return
        self.kafka.back()


class RateLimited(logging.Filter):
    """Lets through at most ``burst`` records per ``per_s`` seconds for each kind of line (its
    text with digits removed), and says how many were dropped when the next one passes."""

    def __init__(self, burst: int = 5, per_s: float = 60.0) -> None:
        super().__init__()
        self.burst, self.per_s = burst, per_s
        self._seen: dict[str, tuple[float, int, int]] = {}  # kind -> window start, passed, dropped
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        kind = "".join(c for c in message if not c.isdigit())[:120]
        now = time.monotonic()
        with self._lock:
            start, passed, dropped = self._seen.get(kind, (now, 0, 0))
            if now - start > self.per_s:
                start, passed = now, 0
            if passed >= self.burst:
                self._seen[kind] = (start, passed, dropped + 1)
                return False
            self._seen[kind] = (start, passed + 1, 0)
            if len(self._seen) > 1000:  # many kinds: forget the oldest windows
                for old in sorted(self._seen, key=lambda k: self._seen[k][0])[:500]:
                    del self._seen[old]
        if dropped:
            record.msg, record.args = f"{message} ({dropped} similar lines dropped)", None
        return True


def kafka_client_logger() -> logging.Logger:
    """The logger the Kafka clients write to: through structlog's JSON like every other line,
    rate-limited (an unreachable broker makes the client repeat itself many times a second)."""
    logger = logging.getLogger("kafka.client")
    if not any(isinstance(f, RateLimited) for f in logger.filters):
        logger.addFilter(RateLimited())
    return logger


class DatabaseMonitor:
    """The API's watch on PostgreSQL: one query a second on a connection of its own. When it
    fails, PostgreSQL is marked lost (the API then answers 503 at once instead of letting each
    request wait out the pools' timeouts and the event store's retries) and the pools given
    are told to give up on a connection at once; when it answers again, both are undone."""

    FAIL_FAST_S = 0.05

    def __init__(
        self,
        database_url: Callable[[], str],
        pools: Callable[[], list[Any]],
        every_s: float = 1.0,
    ) -> None:
        """``database_url`` and ``pools`` are asked for when the monitor starts (building
        them connects)."""
        self.database_url = database_url
        self.pools = pools
        self.every_s = every_s
        self.postgresql = dependency(POSTGRESQL)
        self.stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.watched: list[tuple[Any, float]] = []  # pools given up on at once, their timeout
        self._thread = threading.Thread(target=self._run, name="database-monitor", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.stop.set()

    def _run(self) -> None:
        import psycopg

        conn: psycopg.Connection[Any] | None = None
        seen = False
        while not self.stop.is_set():
            try:
                if conn is None or conn.closed:
                    url = self.database_url()
                    conn = psycopg.connect(url, connect_timeout=2, autocommit=True)
                    conn.execute("SET statement_timeout = 2000")
                conn.execute("SELECT 1")
                self._up()
                seen = True
            except Exception as exc:
                if conn is not None:
                    conn.close()
                conn = None
                if seen:  # the processes wait for the database before they start serving
                    self._down(exc)
            self.stop.wait(self.every_s if self.postgresql.up else self.every_s / 2)
        if conn is not None:
            conn.close()

    def _down(self, exc: BaseException) -> None:
        self.postgresql.lost(exc)
        if not self.watched:
            try:  # built by the first request; not built here while the database is away
                self.watched = [(pool, pool.timeout) for pool in self.pools()]
            except Exception:
                return
            for pool, _timeout in self.watched:
                pool.timeout = self.FAIL_FAST_S

    def _up(self) -> None:
        # The pools' timeouts come back whoever saw PostgreSQL return first (/readyz, a worker).
        for pool, timeout in self.watched:
            pool.timeout = timeout
        self.watched = []
        self.postgresql.back()
