"""Running the background workers of `serve` (and the checkpoint loop of `relay`): the relay,
every projection, and signed checkpoints, each in a daemon thread that is started again after
a crash."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)


def supervised(what: str, build: Callable[[], Any], stop: threading.Event) -> None:
    """Run a worker; after a crash, log it and start it again after a pause."""
    while not stop.is_set():
        try:
            build().run(stop)
        except Exception:
            log.exception("worker crashed; restarting in 2 s", worker=what)
            stop.wait(2)


def checkpoints(write: Callable[[], Any], interval_s: int, stop: threading.Event) -> None:
    """Sign the chain's head every ``interval_s`` seconds until stopped."""
    while not stop.wait(interval_s):
        try:
            write()
        except Exception:
            log.exception("checkpoint failed; trying again at the next interval")


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
    if relay:
        threads.append(
            threading.Thread(target=supervised, args=("relay", container.relay, stop), daemon=True)
        )
    if projections:
        admin = container.projections
        for name in PROJECTIONS:
            threads.append(
                threading.Thread(
                    target=supervised,
                    args=(f"projection:{name}", lambda n=name: admin.projector(n), stop),
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
