"""Running the background workers of `serve` (and the checkpoint loop of `relay`): the relay,
every projection, and signed checkpoints, each in a daemon thread that waits out a lost
dependency and is started again after a crash (:func:`infra.resilience.supervised`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import structlog

from infra.kafka import kafka_probe
from infra.logging import safe_traceback
from infra.resilience import (
    KAFKA,
    POSTGRESQL,
    postgresql_probe,
    supervised,
    unavailable,
)

log = structlog.get_logger(__name__)


def probes(container: Any) -> dict[str, Callable[[], object]]:
    """How a worker of this process checks that a lost dependency is back."""
    found = {POSTGRESQL: postgresql_probe(container.database_url)}
    if container.settings.kafka_bootstrap_servers:
        found[KAFKA] = kafka_probe(container.settings.kafka_bootstrap_servers)
    return found


def checkpoints(write: Callable[[], Any], interval_s: int, stop: threading.Event) -> None:
    """Sign the chain's head every ``interval_s`` seconds until stopped."""
    while not stop.wait(interval_s):
        try:
            write()
        except Exception as exc:
            name = unavailable(exc)
            if name is None:
                log.error(
                    "checkpoint failed; trying again at the next interval",
                    error_class=type(exc).__name__,
                    traceback=safe_traceback(exc),
                )
            else:  # the worker that needs it says when it goes and comes back
                log.warning("checkpoint deferred to the next interval", dependency=name)


def start_background(
    container: Any,
    stop: threading.Event,
    *,
    relay: bool,
    projections: bool,
    checkpointing: bool = False,
) -> list[threading.Thread]:
    """Run the relay and/or every projection (and the checkpoint loop) in daemon threads."""
    from infra.projection_admin import PROJECTIONS

    threads = []
    checks = probes(container)
    if relay:
        threads.append(
            threading.Thread(
                target=supervised, args=("relay", container.relay, stop, checks), daemon=True
            )
        )
    if projections:
        admin = container.projections
        for name in PROJECTIONS:
            threads.append(
                threading.Thread(
                    target=supervised,
                    args=(f"projection:{name}", lambda n=name: admin.projector(n), stop, checks),
                    daemon=True,
                )
            )
    trail = container.audit_trail
    if checkpointing and trail.signing_key() is not None:
        interval = container.settings.audit_checkpoint_interval_s
        threads.append(
            threading.Thread(
                target=checkpoints, args=(trail.write_checkpoint, interval, stop), daemon=True
            )
        )
    elif checkpointing:
        log.warning("AUDIT_SIGNING_KEY is not set: signed checkpoints are not written")
    for thread in threads:
        thread.start()
    return threads
