"""What every command shares: the process (settings, logging, the container, a stop event),
the one way a command acts (:func:`acting`), one error map, and the parsing and printing of
values. Each context's module imports this one, never another command module."""

from __future__ import annotations

import json
import secrets
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID

import click
import structlog
import typer
from rich.console import Console

from api.errors import meaning
from application.services import Services
from domain.base import Actor, CommandContext, DomainError, acting_as
from infra.bootstrap import PROJECTIONS, Container
from infra.config import ConfigurationError, Settings
from infra.database_roles import refused
from infra.logging import configure_logging, safe_traceback

T = TypeVar("T")

console = Console(stderr=True)
"""Messages and progress go to stderr; what a command prints for a script goes to stdout."""

# --- options shared by the contexts -------------------------------------------------------

OperatorOption = Annotated[
    str, typer.Option("--by", help="Operator acting (recorded on the event)", envvar="USER")
]
SupervisorOption = Annotated[
    str, typer.Option("--by", help="Supervisor acting (recorded on the event)", envvar="USER")
]
ByOption = Annotated[str, typer.Option("--by", help="Who runs the check (recorded)", envvar="USER")]
DateOption = Annotated[str, typer.Option("--on", help="YYYY-MM-DD")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the report as JSON")]


# --- the process --------------------------------------------------------------------------


def fail(message: str, code: int = 2) -> typer.Exit:
    """One line on stderr; raise what it returns (exit 2: bad input, 1: refused or failed)."""
    console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def running() -> Iterator[tuple[Container, threading.Event]]:
    """Settings, logging and the container; SIGTERM/SIGINT set the stop event. A domain error
    ends the command as one line, with the exit code api/errors.py gives it (2 for invalid
    input, 1 for any other refusal), and so does a privilege the database refused."""
    try:
        settings = Settings.from_env()
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    configure_logging(settings.log_format, settings.log_level)
    stop = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    container = Container(settings)
    try:
        yield container, stop
    except DomainError as exc:
        found = meaning(exc)
        raise fail(str(exc), found.exit_code if found else 1) from None
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    except (typer.Exit, typer.Abort, click.ClickException):
        raise
    except Exception as exc:
        privilege = refused(exc)
        if privilege is not None:  # the role this command runs as may not do that
            raise fail(privilege, 1) from None
        # A failure nothing expected: one log line with its traceback, in the process's log
        # format (JSON in production), not a rendering on the terminal; frames and classes
        # only, never the error's text (a database error quotes the row it failed on).
        structlog.get_logger("cli").error(
            "command failed", error_class=type(exc).__name__, traceback=safe_traceback(exc)
        )
        raise typer.Exit(1) from None
    finally:
        stop.set()
        container.close()


@contextmanager
def acting(by: str, role: str, command: str) -> Iterator[Services]:
    """Run one command of the write side as ``by`` in ``role``: every event it records carries
    that actor, a fresh correlation id and ``cli:<command>`` as its cause; domain errors end it
    as :func:`running` says."""
    context = CommandContext(Actor(by, role), f"cli-{secrets.token_hex(4)}", f"cli:{command}")
    with running() as (container, _stop), acting_as(context):
        yield container.services


def views(view: Callable[..., T], *args: Any) -> T:
    """One read-model query, on read models brought up to the end of the log first (without
    Kafka nothing else may be keeping them up to date)."""
    with running() as (container, _stop):
        container.projections.catch_up()
        result: T = container.query(view, *args)
        return result


# --- parsing ------------------------------------------------------------------------------


def parse_date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise fail(f"{option} {text!r} is not a date (YYYY-MM-DD)") from None


def parse_moment(text: str | None, option: str = "--as-of") -> datetime:
    """An ISO 8601 date-time (UTC when it names no zone); now when None."""
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise fail(
            f"{option} {text!r} is not an ISO 8601 date-time (for example 2026-05-01T12:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_id(text: str, what: str = "household") -> UUID:
    """A registry id: ``'x' is not a household id (a UUID)``."""
    try:
        return UUID(text)
    except ValueError:
        raise fail(f"{text!r} is not a {what} id (a UUID)") from None


def parse_uuid(text: str, name: str) -> UUID:
    """An id of the eligibility and housing commands: ``household 'x' is not a UUID``."""
    try:
        return UUID(text)
    except ValueError:
        raise fail(f"{name} {text!r} is not a UUID") from None


def projection_names(name: str | None) -> list[str]:
    """Every projection, or the one named (refused when there is none by that name)."""
    if name is None:
        return list(PROJECTIONS)
    if name not in PROJECTIONS:
        raise fail(f"unknown projection {name!r}; known: {', '.join(PROJECTIONS)}")
    return [name]


# --- printing -----------------------------------------------------------------------------


def show(data: Any) -> None:
    """Data for a script: JSON on stdout."""
    print(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def table_console() -> Console:
    """Tables go to stdout, wide enough not to truncate when piped."""
    out = Console()
    return out if out.is_terminal else Console(width=240)


def progress_bar(label: str, total: int) -> Any:
    """A progress bar on stderr and its task: ``with bar: ... bar.advance(task, n)``."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    return progress, progress.add_task(label, total=total)
