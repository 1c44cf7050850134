"""What every command shares: the process (settings, logging, the container, a stop event),
who runs it (:func:`identified`), the one way a command acts (:func:`acting`) and reads
personal data (:func:`reading`), one error map, and the parsing and printing of values. Each
context's module imports this one, never another command module.

A command acts with an identity checked exactly as the API checks a bearer token: the token
given with ``reintegration --token`` or ``REINTEGRATION_TOKEN`` (an identity provider's access
token or a minted static token). Only in development (``REINTEGRATION_ENV=development``) may a
command run without one, under the self-asserted ``--by`` name.
"""

from __future__ import annotations

import json
import os
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
from api.roles import ALLOWED
from application.services import Services
from domain.base import Actor, CommandContext, DomainError, acting_as
from infra import access_log
from infra.bootstrap import PROJECTIONS, Container
from infra.config import ConfigurationError, Settings
from infra.database_roles import refused
from infra.logging import configure_logging, safe_traceback

T = TypeVar("T")

console = Console(stderr=True)
"""Messages and progress go to stderr; what a command prints for a script goes to stdout."""

# --- options shared by the contexts -------------------------------------------------------

DEVELOPMENT_ONLY = " (development only; otherwise the token says who)"
OperatorOption = Annotated[
    str,
    typer.Option("--by", help="Operator acting" + DEVELOPMENT_ONLY, envvar="USER"),
]
SupervisorOption = Annotated[
    str,
    typer.Option("--by", help="Supervisor acting" + DEVELOPMENT_ONLY, envvar="USER"),
]
ByOption = Annotated[
    str, typer.Option("--by", help="Who runs the check" + DEVELOPMENT_ONLY, envvar="USER")
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="REINTEGRATION_TOKEN",
        help="Bearer token of who runs the command (an access token or a minted token)",
        show_envvar=True,
    ),
]
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


_token: list[str | None] = [None]
_purpose: list[str | None] = [None]


def use_identity(token: str | None, purpose: str | None) -> None:
    """The token and purpose given to ``reintegration --token T --purpose P`` (the root
    command's options)."""
    _token[0] = token
    _purpose[0] = purpose


def purpose() -> str | None:
    from domain import text

    given = _purpose[0] or os.environ.get("REINTEGRATION_PURPOSE") or None
    try:
        return text.optional_text("purpose", given, text.LINE)
    except DomainError as exc:
        raise fail(str(exc)) from None


def identified(role: str, by: str | None = None) -> Actor:
    """Who runs the command, when they may: the caller the token stands for, checked as the API
    checks it (signature, issuer, audience, expiry; hash and expiry of a static token), whose
    role must be one of those :data:`api.roles.ALLOWED` gives ``role``. Without a token, only
    development mode runs the command, as the ``--by`` name in ``role``. A district-scoped
    identity is refused: the command line reads and acts nationally (district offices use the
    API, which filters by district)."""
    try:
        settings = Settings.from_env()
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    token = _token[0] or os.environ.get("REINTEGRATION_TOKEN") or None
    allowed = ALLOWED[role]
    if token is None:
        if not settings.development:
            raise fail(
                "this command needs an identity: give --token or REINTEGRATION_TOKEN "
                "(a self-asserted --by name is accepted in development only)",
                1,
            )
        return Actor(by or os.environ.get("USER") or "developer", allowed[0])
    actor = settings.authenticator()(token)
    if actor is None:
        raise fail("the token is not valid (unknown, expired or not for this service)", 1)
    if actor.role not in allowed:
        raise fail(f"role {actor.role!r} may not do this; allowed: {', '.join(allowed)}", 1)
    if not actor.national:
        raise fail(
            "a district-scoped identity may not use the command line; use the API, which "
            "limits reads and changes to its districts",
            1,
        )
    return actor


def named(by: str | None, role: str, what: str) -> str:
    """Who does an operations task (dead letters): the token's holder; in development, the
    ``--by`` name, which must then be given."""
    if not (_token[0] or os.environ.get("REINTEGRATION_TOKEN")) and not (by or "").strip():
        raise fail(f"--by must name who {what} (or give --token)")
    return identified(role, by).user_id


@contextmanager
def acting(by: str, role: str, command: str) -> Iterator[Services]:
    """Run one command of the write side as the identified caller (:func:`identified`), who
    must hold ``role`` or a wider one: every event it records carries that actor, a fresh
    correlation id and ``cli:<command>`` as its cause; domain errors end it as :func:`running`
    says."""
    actor = identified(role, by)
    context = CommandContext(actor, f"cli-{secrets.token_hex(4)}", f"cli:{command}")
    with running() as (container, _stop), acting_as(context):
        yield container.services


def _require_purpose(actor: Actor) -> None:
    """An auditor (identified by a token: not a development session) says why they read."""
    token = _token[0] or os.environ.get("REINTEGRATION_TOKEN")
    if token and actor.role == "auditor" and purpose() is None:
        raise fail("an auditor's read needs a purpose: --purpose or REINTEGRATION_PURPOSE", 1)


class Reads:
    """A command's reads of personal data, each recorded in the access log (who, what, whose,
    the purpose given with ``--purpose`` or ``REINTEGRATION_PURPOSE``, a search's terms)."""

    def __init__(self, container: Container, actor: Actor, command: str) -> None:
        self.container = container
        self.actor = actor
        self.command = command
        self.correlation_id = f"cli-{secrets.token_hex(4)}"

    def query(self, view: Callable[..., T], *args: Any, **terms: Any) -> T:
        """A read-model query whose result's people and households are recorded as read."""
        found: T = self.container.query(view, *args, **terms)
        self.record(access_log.subjects_in(found), terms)
        return found

    def record(self, subjects: list[Any], terms: dict[str, Any] | None = None) -> None:
        if not subjects and not terms:
            return
        access_log.record(
            self.container.read_pool,
            access_log.Access(
                self.actor,
                self.command,
                f"cli:{self.command}",
                subjects,
                purpose(),
                self.correlation_id,
                client_address="cli",
                user_agent="reintegration-cli",
                search_terms={
                    k: v for k, v in (terms or {}).items() if k not in ("limit", "offset")
                },
            ),
        )


@contextmanager
def reading(command: str, role: str = "reader", by: str | None = None) -> Iterator[Reads]:
    """Run a command that reads personal data as the identified caller; its reads are logged."""
    actor = identified(role, by)
    _require_purpose(actor)
    with running() as (container, _stop):
        container.projections.catch_up()
        yield Reads(container, actor, command)


def views(view: Callable[..., T], *args: Any) -> T:
    """One read-model query by the identified caller, on read models brought up to the end of
    the log first (without Kafka nothing else may be keeping them up to date); the people and
    households in its result are recorded as read."""
    actor = identified("reader")
    _require_purpose(actor)
    with running() as (container, _stop):
        container.projections.catch_up()
        reads = Reads(container, actor, view.__name__.replace("_", " "))
        return reads.query(view, *args)


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
