"""The `reintegration` command line."""

from __future__ import annotations

import secrets
import signal
import string
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from domain.base import Actor
from infra.bootstrap import PROJECTIONS, Container
from infra.config import ConfigurationError, Settings
from infra.logging import configure_logging

cli = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Return and Reintegration backend."
)
console = Console(stderr=True)


def table_console() -> Console:
    """Tables go to stdout, wide enough not to truncate when piped."""
    out = Console()
    return out if out.is_terminal else Console(width=240)


def fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def running() -> Iterator[tuple[Container, threading.Event]]:
    """Settings, logging and the container; SIGTERM/SIGINT set the stop event."""
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
    finally:
        stop.set()
        container.close()


def _serve_http(
    container: Container, stop: threading.Event, host: str | None, port: int | None
) -> None:
    import uvicorn

    from api.http import create_app

    try:
        settings, invented = container.settings.with_tokens_for_api()
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    host = host or settings.http_host
    port = port or settings.http_port
    app = create_app(container, dict(settings.api_tokens))
    if invented:
        _print_development_banner(host, port, invented)
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
    )

    def exit_when_stopped() -> None:
        stop.wait()
        server.should_exit = True

    watcher = threading.Thread(target=exit_when_stopped, daemon=True)
    watcher.start()
    server.run()


def _print_development_banner(host: str, port: int, tokens: dict[str, Actor]) -> None:
    url = f"http://{host}:{port}"
    fin = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(7))
    operator = next(t for t, a in tokens.items() if a.role == "operator")
    console.print(f"\n[bold]Return and Reintegration API[/bold] on {url}  (OpenAPI: {url}/docs)")
    console.print("Development tokens (this run only):")
    for token, actor in tokens.items():
        console.print(f"  {actor.role:<12} {token}", highlight=False)
    body = (
        '{"origin_settlement_code":"ZAN-002","current_address":"Baku, Khatai district, dormitory 4",'
        '"members":[{"fin":"' + fin + '","first_name":"Aysel","last_name":"Mammadova",'
        '"birth_date":"1984-03-12","sex":"female","relationship":"head"}]}'
    )
    console.print("\nTry it:", highlight=False)
    console.print(
        f"  curl -s -X POST {url}/api/v1/households -H 'Authorization: Bearer {operator}' "
        f"-H 'Content-Type: application/json' -d '{body}'",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"  curl -s {url}/api/v1/households/HOUSEHOLD_ID -H 'Authorization: Bearer {operator}'\n",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        "The Great Return in Aghali, end to end (clearance, public lottery, offers, convoys,\n"
        "arrivals), in another terminal:\n"
        "  REINTEGRATION_ENV=development .venv/bin/reintegration demo great-return\n"
        f"  curl -s '{url}/api/v1/relocation/pipeline?settlement_code=ZAN-002' "
        f"-H 'Authorization: Bearer {operator}'\n",
        highlight=False,
        soft_wrap=True,
    )


def _serve_metrics(container: Container) -> None:
    """Expose /metrics on METRICS_PORT for processes without the API (relay, project)."""
    if container.settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(container.settings.metrics_port, addr=container.settings.http_host)


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (default HTTP_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default HTTP_PORT)")] = None,
) -> None:
    """Run the API, the relay (when Kafka is configured) and every projection in one process."""
    with running() as (container, stop):
        kafka = container.settings.kafka_enabled
        if kafka:
            container.ensure_topics()
        container.prepare_read_models()  # before the projections and the API start
        container.start_background(stop, relay=kafka, projections=True, checkpoints=True)
        _serve_http(container, stop, host, port)


@cli.command()
def api(
    host: Annotated[str | None, typer.Option(help="Listen address (default HTTP_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default HTTP_PORT)")] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, envvar="HTTP_WORKERS", help="Worker processes")
    ] = 1,
) -> None:
    """Run the HTTP API alone (with --workers N, as N processes on one port)."""
    with running() as (container, stop):
        container.prepare_read_models()
        if workers == 1:
            _serve_http(container, stop, host, port)
            return
        if not container.settings.api_tokens:
            raise fail("API_TOKENS is required with more than one API worker")
    import uvicorn

    uvicorn.run(
        "api.http:app_from_env",
        factory=True,
        host=host or container.settings.http_host,
        port=port or container.settings.http_port,
        workers=workers,
        log_config=None,
        access_log=False,
    )


@cli.command()
def relay() -> None:
    """Publish the event store's log to Kafka, exactly once, until stopped."""
    with running() as (container, stop):
        if not container.settings.kafka_enabled:
            raise fail("the relay needs KAFKA_BOOTSTRAP_SERVERS")
        container.ensure_topics()
        _serve_metrics(container)
        from infra import tamper_evidence

        tamper_evidence.prepare(container.database_url)  # the checkpoints table
        container.start_background(stop, relay=False, projections=False, checkpoints=True)
        container.relay().run(stop)


@cli.command()
def project(
    name: Annotated[str | None, typer.Argument(help="Projection to run (default: all)")] = None,
) -> None:
    """Run projections into their read models until stopped (from Kafka, or the event store without it)."""
    with running() as (container, stop):
        names = [name] if name else list(PROJECTIONS)
        unknown = [n for n in names if n not in PROJECTIONS]
        if unknown:
            raise fail(f"unknown projection {unknown[0]!r}; known: {', '.join(PROJECTIONS)}")
        if container.settings.kafka_enabled:
            container.ensure_topics()
        _serve_metrics(container)
        if len(names) == 1:
            container.projector(names[0]).run(stop)
        else:
            for thread in container.start_background(stop, relay=False, projections=True):
                while thread.is_alive():
                    thread.join(0.5)


projections_cli = typer.Typer(
    no_args_is_help=True, help="Read-model projections: status and rebuilds."
)
dead_letters_cli = typer.Typer(no_args_is_help=True, help="Messages projections could not apply.")
cli.add_typer(projections_cli, name="projections")
cli.add_typer(dead_letters_cli, name="dead-letters")


def _projection_names(name: str | None) -> list[str]:
    if name is None:
        return list(PROJECTIONS)
    if name not in PROJECTIONS:
        raise fail(f"unknown projection {name!r}; known: {', '.join(PROJECTIONS)}")
    return [name]


@projections_cli.command("status")
def projections_status() -> None:
    """Each projection's position and lag per partition, and its pending dead letters."""
    from rich.table import Table

    with running() as (container, _stop):
        table = Table("projection", "source", "partition", "position", "end", "lag", "dead letters")
        for name in PROJECTIONS:
            state = container.projection_status(name)
            rebuilding = " (rebuild in progress)" if state.rebuild_in_progress else ""
            if not state.partitions:
                table.add_row(
                    name + rebuilding, "-", "-", "-", "-", "-", str(state.dead_letters_pending)
                )
            for i, part in enumerate(state.partitions):
                table.add_row(
                    name + rebuilding if i == 0 else "",
                    part.source,
                    str(part.partition),
                    str(part.position),
                    "-" if part.end is None else str(part.end),
                    "-" if part.lag is None else str(part.lag),
                    str(state.dead_letters_pending) if i == 0 else "",
                )
        table_console().print(table)


@projections_cli.command("rebuild")
def projections_rebuild(
    name: Annotated[str, typer.Argument(help="Projection to rebuild")],
) -> None:
    """Rebuild NAME from the start of its source into new tables while the old ones keep
    serving, then swap them in atomically. Run it again to resume an interrupted rebuild."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    _projection_names(name)
    with running() as (container, stop):
        if container.settings.kafka_enabled:
            container.ensure_topics()
        with Progress(
            TextColumn(f"rebuilding {name}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(name, total=None)

            def on_progress(state: Any) -> None:
                done = sum(p.position for p in state.partitions)
                total = sum(p.end or 0 for p in state.partitions)
                progress.update(task, completed=done, total=max(total, done))

            swapped = container.rebuild(name, stop, on_progress)
        if not swapped:
            raise fail(f"rebuild of {name} interrupted before the swap; run it again to resume", 1)
        console.print(f"{name}: rebuilt and swapped in")


@dead_letters_cli.command("list")
def dead_letters_list(
    projection: Annotated[str | None, typer.Option(help="Only this projection")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include replayed ones")] = False,
) -> None:
    """Messages a projection could not decode or apply, with the reason."""
    from rich.table import Table

    from projections.admin import dead_letters

    with running() as (container, _stop):
        table = Table(
            "projection", "id", "source", "partition", "offset", "event type", "error", "replayed"
        )
        count = 0
        for name in _projection_names(projection):
            for row in dead_letters(container.database_url, PROJECTIONS[name], all_):
                count += 1
                table.add_row(
                    name,
                    str(row.id),
                    row.source,
                    str(row.partition),
                    str(row.offset),
                    row.event_type or "?",
                    f"{row.error_class}: {row.error_message}",
                    f"{row.replayed_at:%Y-%m-%d %H:%M} by {row.replayed_by}"
                    if row.replayed_at
                    else "",
                )
        table_console().print(table if count else "no dead letters")


@dead_letters_cli.command("replay")
def dead_letters_replay(
    projection: Annotated[str | None, typer.Option(help="Only this projection")] = None,
    ids: Annotated[list[int] | None, typer.Option("--id", help="Only these dead letters")] = None,
    by: Annotated[str, typer.Option(help="Who replays (recorded)", envvar="USER")] = "operator",
) -> None:
    """Apply pending dead letters again, after the cause was fixed. Exits 1 if any still fail."""
    from projections.admin import replay_dead_letters

    with running() as (container, _stop):
        failed = 0
        for name in _projection_names(projection):
            for outcome in replay_dead_letters(
                container.database_url, PROJECTIONS[name], by, ids or ()
            ):
                if outcome.replayed:
                    console.print(f"{name} #{outcome.id}: replayed")
                else:
                    failed += 1
                    console.print(
                        f"{name} #{outcome.id}: still failing: {outcome.error}", highlight=False
                    )
        if failed:
            raise typer.Exit(1)


contract_cli = typer.Typer(no_args_is_help=True, help="The event contract for downstream systems.")
cli.add_typer(contract_cli, name="contract")


@contract_cli.command("asyncapi")
def contract_asyncapi(
    check: Annotated[
        bool, typer.Option(help="Only check that the committed file is current")
    ] = False,
) -> None:
    """Regenerate schemas/asyncapi.yaml from the schemas and the topic configuration."""
    from infra import asyncapi

    fresh = asyncapi.render(asyncapi.generate())
    if check:
        if asyncapi.DOCUMENT.read_text(encoding="utf-8") != fresh:
            raise fail(
                "schemas/asyncapi.yaml is out of date: run `reintegration contract asyncapi`", 1
            )
        console.print("schemas/asyncapi.yaml is up to date")
        return
    asyncapi.DOCUMENT.write_text(fresh, encoding="utf-8")
    console.print(f"wrote {asyncapi.DOCUMENT}")


audit_cli = typer.Typer(
    no_args_is_help=True, help="For auditors: history, as-of state, tamper evidence."
)
cli.add_typer(audit_cli, name="audit")

ByOption = Annotated[str, typer.Option("--by", help="Who runs the check (recorded)", envvar="USER")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the report as JSON")]


def _print_report(report: Any, as_json: bool) -> None:
    if as_json:
        print(report.to_json())
    else:
        style = "green" if report.ok else "red"
        console.print(report.to_text(), style=style, highlight=False)
    if not report.ok:
        raise typer.Exit(1)


def _moment(text: str | None) -> Any:
    from datetime import UTC, datetime

    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise fail(
            f"--as-of {text!r} is not an ISO 8601 date-time (for example 2026-05-01T12:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@audit_cli.command("case")
def audit_case(
    household_id: Annotated[str, typer.Argument(help="Household (case) id")],
    output: Annotated[
        Path | None, typer.Option(help="Write the report here (.html or .json)")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(help="Show the case's state as of this ISO 8601 time")
    ] = None,
    by: ByOption = "auditor",
) -> None:
    """The complete history of a case from the event store, as an HTML report (or JSON), with the
    hash chain checked; with --as-of, the case's state at that moment."""
    import json
    from uuid import UUID

    from domain.base import NotFound
    from infra import access_log
    from infra.case_history import render_html

    try:
        case_id = UUID(household_id)
    except ValueError:
        raise fail(f"{household_id!r} is not a household id (a UUID)") from None
    with running() as (container, _stop):
        container.prepare_read_models()
        try:
            if as_of is not None:
                state = container.case_as_of(case_id, _moment(as_of))
                subjects = [case_id]
                text = json.dumps(state, indent=2, ensure_ascii=False)
            else:
                history = container.case_history(case_id)
                subjects = [case_id, *{UUID(e["aggregate_id"]) for e in history["events"]}]
                chain = container.verify_log(by)
                if output is not None and output.suffix == ".html":
                    text = render_html(history, chain, by)
                else:
                    text = json.dumps(history, indent=2, ensure_ascii=False)
        except NotFound as exc:
            raise fail(str(exc), 1) from None
        access_log.record(
            container.read_pool,
            Actor(by, "cli"),
            "audit case (cli)",
            f"cli:audit case {case_id}",
            subjects,
            None,
            None,
        )
        if output is None:
            print(text)
        else:
            output.write_text(text, encoding="utf-8")
            console.print(f"wrote {output}")


@audit_cli.command("verify")
def audit_verify(
    public_key: Annotated[
        str | None,
        typer.Option(help="Published Ed25519 public key (base64) to check checkpoints with"),
    ] = None,
    as_json: JsonOption = False,
    by: ByOption = "auditor",
) -> None:
    """Recompute the hash chain from the event store and compare it with the stored links, the
    signed checkpoints and the links carried in Kafka; report the first broken position."""
    import base64

    with running() as (container, _stop):
        key = base64.b64decode(public_key) if public_key else None
        _print_report(container.verify_log(by, key), as_json)


@audit_cli.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the chain's head now (the service also does it every AUDIT_CHECKPOINT_INTERVAL_S)."""
    with running() as (container, _stop):
        if container.settings.kafka_enabled:
            container.ensure_topics()
        try:
            checkpoint = container.write_checkpoint()
        except RuntimeError as exc:
            raise fail(str(exc)) from None
        if checkpoint is None:
            console.print("no new events since the last checkpoint")
        else:
            console.print(
                f"checkpoint at position {checkpoint.position}: {checkpoint.chain_hash.hex()}"
            )


@audit_cli.command("projections")
def audit_projections(
    name: Annotated[str | None, typer.Argument(help="Projection (default: all)")] = None,
    as_json: JsonOption = False,
    by: ByOption = "auditor",
) -> None:
    """Rebuild the read models into scratch tables from the start of the log and compare them with
    the live ones, reporting any difference."""
    with running() as (container, _stop):
        failed = False
        for projection in _projection_names(name):
            report = container.cross_check_projection(projection, by)
            try:
                _print_report(report, as_json)
            except typer.Exit:
                failed = True
        if failed:
            raise typer.Exit(1)


@audit_cli.command("access-log")
def audit_access_log(
    actor: Annotated[str | None, typer.Option(help="Only reads by this user id")] = None,
    subject: Annotated[
        str | None, typer.Option(help="Only reads of this person or household id")
    ] = None,
    since: Annotated[str | None, typer.Option(help="ISO 8601 time")] = None,
    limit: int = 100,
) -> None:
    """Who read whose personal data, when and why."""
    from uuid import UUID

    from rich.table import Table

    from infra import access_log

    with running() as (container, _stop):
        container.prepare_read_models()
        entries = access_log.query(
            container.read_pool,
            actor_id=actor,
            subject_id=UUID(subject) if subject else None,
            since=_moment(since) if since else None,
            limit=limit,
        )
        table = Table("id", "at", "who", "role", "what", "resource", "why")
        for e in entries:
            table.add_row(
                str(e["id"]),
                f"{e['at']:%Y-%m-%d %H:%M:%S}",
                e["actor_id"],
                e["actor_role"],
                e["action"],
                e["resource"],
                e["reason"] or "",
            )
        table_console().print(table if entries else "no reads recorded")


import_cli = typer.Typer(no_args_is_help=True, help="Load existing data.")
cli.add_typer(import_cli, name="import")


@import_cli.command("registry")
def import_registry(
    file: Annotated[
        Path, typer.Argument(help="CSV export of the registry (columns in the README)")
    ],
    report: Annotated[
        Path | None, typer.Option(help="Where to write rejected rows (default FILE.rejected.csv)")
    ] = None,
    batch: Annotated[int, typer.Option(min=1, max=5000, help="Households per transaction")] = 200,
    encoding: Annotated[
        str,
        typer.Option(
            help="The file's encoding: utf-8 (with or without BOM), windows-1251 or windows-1254"
        ),
    ] = "utf-8",
    by: ByOption = "importer",
) -> None:
    """Load the existing IDP registry. Every row is registered, skipped (already registered,
    identical) or rejected into the report; the figures are counted from the event store. Exit
    code 0: every row registered or skipped; 3: rows were rejected; 4: the file was refused
    (nothing written); 1: the import stopped (run it again: registered households are
    skipped)."""
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    from infra.legacy_import import EXIT_FILE_REFUSED, FileRefused, LegacyImport

    if not file.is_file():
        raise fail(f"{file}: no such file", EXIT_FILE_REFUSED)
    report = report or file.with_name(file.name + ".rejected.csv")
    if not report.parent.is_dir():
        raise fail(f"{report}: its folder does not exist")
    with running() as (container, _stop):
        try:
            importer = LegacyImport(container.application, Actor(by, "operator"), batch, encoding)
        except FileRefused as exc:
            raise fail(str(exc), EXIT_FILE_REFUSED) from None
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            tasks: dict[str, Any] = {}

            def on_progress(phase: str, done: int, total: int) -> None:
                if phase not in tasks:
                    tasks[phase] = progress.add_task(f"{phase} {file.name}", total=total)
                progress.update(tasks[phase], completed=done, total=total)

            try:
                result = importer.run(file, on_progress, report)
            except FileRefused as exc:
                raise fail(f"{file}: {exc}; nothing was imported", EXIT_FILE_REFUSED) from None
            except Exception as exc:
                partial = importer.result
                raise fail(
                    f"the import stopped ({type(exc).__name__}) after {partial.households_registered} "
                    f"households ({partial.persons_registered} persons) were registered; run it "
                    "again to finish (households already registered are skipped)",
                    1,
                ) from None
    console.print(
        f"{result.households_registered} households ({result.persons_registered} persons) registered; "
        f"{result.households_already_registered} households ({result.rows_skipped} rows) were "
        "already registered and were skipped; "
        f"{result.rows_rejected} rows rejected"
        + (f" (reasons in {report})" if result.rows_rejected else "")
        + f"; {result.rows_read} rows read",
        soft_wrap=True,
        highlight=False,
    )
    if not result.accounted_for:
        raise fail(
            f"{result.rows_read} rows were read but {result.rows_registered} registered, "
            f"{result.rows_skipped} skipped and {result.rows_rejected} rejected: report this",
            1,
        )
    raise typer.Exit(result.exit_code)


persons_cli = typer.Typer(no_args_is_help=True, help="Registry: persons.")
households_cli = typer.Typer(no_args_is_help=True, help="Registry: households (cases).")
cli.add_typer(persons_cli, name="persons")
cli.add_typer(households_cli, name="households")
OperatorOption = Annotated[
    str, typer.Option("--by", help="Operator acting (recorded on the event)", envvar="USER")
]


@contextmanager
def _command(by: str) -> Iterator[Container]:
    """Run one registry command as an operator; domain errors become one-line messages."""
    from domain.base import CommandContext, DomainError, NotFound, ValidationFailed, acting_as
    from domain.registry import InvalidState, PersonAlreadyRegistered
    from infra.application import ConcurrentUpdate

    with running() as (container, _stop):
        context = CommandContext(Actor(by, "operator"), f"cli-{secrets.token_hex(4)}", "cli")
        try:
            with acting_as(context):
                yield container
        except ValidationFailed as exc:
            raise fail(str(exc)) from None
        except (NotFound, InvalidState, ConcurrentUpdate, PersonAlreadyRegistered) as exc:
            raise fail(str(exc), 1) from None
        except DomainError as exc:
            raise fail(str(exc), 1) from None


def _date_option(text: str, name: str) -> Any:
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise fail(f"{name} {text!r} is not a date (YYYY-MM-DD)") from None


def _show(data: Any) -> None:
    import json

    print(json.dumps(data, indent=2, default=str, ensure_ascii=False))


@persons_cli.command("show")
def persons_show(fin: str) -> None:
    """A person from the read model."""
    from projections import households

    with running() as (container, _stop):
        container.prepare_read_models()
        with container.read_pool.connection() as conn, conn.cursor() as cur:
            found = households.get_person(cur, fin)
        if found is None:
            raise fail(f"no person with FIN {fin}", 1)
        _show(found)


@persons_cli.command("search")
def persons_search(
    name_prefix: Annotated[
        str | None, typer.Option(help="Last name first; Azerbaijani-aware")
    ] = None,
    origin_settlement: str | None = None,
    origin_district: str | None = None,
    idp_status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> None:
    """Search persons in the read model."""
    from rich.table import Table

    from projections import households

    with running() as (container, _stop):
        container.prepare_read_models()
        with container.read_pool.connection() as conn, conn.cursor() as cur:
            found = households.find_persons(
                cur,
                name_prefix=name_prefix,
                origin_settlement=origin_settlement,
                origin_district=origin_district,
                idp_status=idp_status,
                limit=limit,
                offset=offset,
            )
        table = Table(
            "FIN",
            "last name",
            "first name",
            "patronymic",
            "born",
            "origin",
            "IDP status",
            "household",
        )
        for p in found:
            table.add_row(
                p["fin"],
                p["last_name"],
                p["first_name"],
                p["patronymic"] or "",
                str(p["birth_date"]),
                p["origin_settlement_code"] or "",
                p["idp_status"],
                str(p["household_id"]),
            )
        table_console().print(table if found else "nobody found")


@persons_cli.command("correct")
def persons_correct(
    fin: str,
    field: str,
    new_value: str,
    reason: Annotated[str, typer.Option(help="Why (required)")],
    document: Annotated[str | None, typer.Option(help="Supporting document reference")] = None,
    by: OperatorOption = "operator",
) -> None:
    """Correct one detail of a person; the old value stays in the history."""
    with _command(by) as container:
        person = container.application.correct_person(
            fin, field, new_value or None, reason, document
        )
    console.print(f"{person.fin}: {field} corrected (version {person.version})")


@persons_cli.command("grant-status")
def persons_grant_status(
    fin: str,
    basis: Annotated[str, typer.Option(help="Legal or administrative basis")],
    effective: Annotated[str, typer.Option(help="Effective date, YYYY-MM-DD")],
    certificate: Annotated[str | None, typer.Option(help="IDP certificate number")] = None,
    by: OperatorOption = "operator",
) -> None:
    """Grant IDP status."""
    with _command(by) as container:
        person = container.application.grant_idp_status(
            fin, basis, _date_option(effective, "--effective"), certificate
        )
    console.print(f"{person.fin}: IDP status {person.idp_status}")


@persons_cli.command("end-status")
def persons_end_status(
    fin: str,
    basis: Annotated[str, typer.Option()],
    effective: Annotated[str, typer.Option(help="YYYY-MM-DD")],
    reason: Annotated[str, typer.Option()],
    by: OperatorOption = "operator",
) -> None:
    """End IDP status."""
    with _command(by) as container:
        person = container.application.end_idp_status(
            fin, basis, _date_option(effective, "--effective"), reason
        )
    console.print(f"{person.fin}: IDP status {person.idp_status}")


@persons_cli.command("record-death")
def persons_record_death(
    fin: str,
    date_of_death: Annotated[str, typer.Option("--date", help="YYYY-MM-DD")],
    document: Annotated[str | None, typer.Option()] = None,
    by: OperatorOption = "operator",
) -> None:
    """Record a death."""
    with _command(by) as container:
        person = container.application.record_death(
            fin, _date_option(date_of_death, "--date"), document
        )
    console.print(f"{person.fin}: death recorded")


@persons_cli.command("status-reference")
def persons_status_reference(fin: str, by: OperatorOption = "operator") -> None:
    """Issue an IDP status reference and print its verification code."""
    with _command(by) as container:
        person, code = container.application.issue_status_reference(fin)
    _show(
        {
            "verification_code": code,
            "fin": person.fin,
            "status": person.idp_status,
            "certificate_number": person.idp_certificate_number,
            "household_id": person.household_id,
        }
    )


def _household_id(text: str, what: str = "household") -> Any:
    from uuid import UUID

    try:
        return UUID(text)
    except ValueError:
        raise fail(f"{text!r} is not a {what} id (a UUID)") from None


@households_cli.command("show")
def households_show(household_id: str) -> None:
    """A household's profile from the read model."""
    from projections import households

    with running() as (container, _stop):
        container.prepare_read_models()
        with container.read_pool.connection() as conn, conn.cursor() as cur:
            found = households.get_household(cur, _household_id(household_id))
        if found is None:
            raise fail(f"no household {household_id}", 1)
        _show(found)


@households_cli.command("search")
def households_search(
    fin: str | None = None,
    name_prefix: str | None = None,
    origin_settlement: str | None = None,
    origin_district: str | None = None,
    housing_condition: str | None = None,
    vulnerability: str | None = None,
    survey_status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> None:
    """Search households in the read model."""
    from rich.table import Table

    from projections import households

    with running() as (container, _stop):
        container.prepare_read_models()
        with container.read_pool.connection() as conn, conn.cursor() as cur:
            found = households.find_households(
                cur,
                fin=fin,
                name_prefix=name_prefix,
                origin_settlement=origin_settlement,
                origin_district=origin_district,
                housing_condition=housing_condition,
                vulnerability=vulnerability,
                survey_status=survey_status,
                limit=limit,
                offset=offset,
            )
        table = Table("household", "head", "origin", "members", "housing", "vulnerabilities")
        for h in found:
            table.add_row(
                str(h["household_id"]),
                f"{h['head_last_name'] or ''} {h['head_first_name'] or ''} ({h['head_fin']})",
                h["origin_settlement_code"],
                str(h["member_count"]),
                h["housing_condition"] or "",
                ", ".join(h["vulnerabilities"]),
            )
        table_console().print(table if found else "no households found")


@households_cli.command("housing-condition")
def households_housing(
    household_id: str, condition: str, note: str | None = None, by: OperatorOption = "operator"
) -> None:
    """Record the household's housing condition."""
    with _command(by) as container:
        container.application.record_housing_condition(_household_id(household_id), condition, note)
    console.print(f"{household_id}: housing condition {condition}")


@households_cli.command("verify-circumstances")
def households_verify(
    household_id: str,
    document: Annotated[str, typer.Option(help="Reference of the verification act")],
    verified_on: Annotated[str, typer.Option(help="YYYY-MM-DD")],
    living_at_registered_address: Annotated[
        bool, typer.Option("--living-at-address/--not-living-at-address")
    ] = True,
    private_housing: Annotated[
        bool, typer.Option("--private-housing/--no-private-housing")
    ] = False,
    sham_marriage_or_divorce: Annotated[
        bool, typer.Option("--sham-marriage-or-divorce/--no-sham-marriage-or-divorce")
    ] = False,
    note: str | None = None,
    by: OperatorOption = "operator",
) -> None:
    """Record what a verification found (the facts Resolution 65's exclusions depend on)."""
    on = _date_option(verified_on, "--verified-on")
    with _command(by) as container:
        container.application.verify_circumstances(
            _household_id(household_id),
            living_at_registered_address,
            private_housing,
            sham_marriage_or_divorce,
            on,
            document,
            note,
        )
    console.print(f"{household_id}: circumstances verified")


@households_cli.command("vulnerability")
def households_vulnerability(
    household_id: str,
    vulnerability: str,
    person: Annotated[str | None, typer.Option(help="FIN of the member concerned")] = None,
    note: str | None = None,
    by: OperatorOption = "operator",
) -> None:
    """Record a vulnerability of the household or of one member."""
    from domain.registry import person_id_for

    with _command(by) as container:
        container.application.record_vulnerability(
            _household_id(household_id),
            vulnerability,
            person_id_for(person) if person else None,
            note,
        )
    console.print(f"{household_id}: {vulnerability} recorded")


@households_cli.command("remove-member")
def households_remove_member(
    household_id: str,
    fin: str,
    reason: str,
    note: str | None = None,
    by: OperatorOption = "operator",
) -> None:
    """A member leaves the household (death, marriage_out, moved_out, other)."""
    from domain.registry import person_id_for

    with _command(by) as container:
        container.application.remove_member(
            _household_id(household_id), person_id_for(fin), reason, note
        )
    console.print(f"{household_id}: {fin} removed")


@households_cli.command("change-head")
def households_change_head(
    household_id: str,
    fin: Annotated[str, typer.Argument(help="FIN of the new head")],
    former_head_relationship: Annotated[
        str, typer.Option(help="The former head's new relationship")
    ],
    reason: Annotated[str, typer.Option()],
    by: OperatorOption = "operator",
) -> None:
    """Make another member the head."""
    from domain.registry import person_id_for

    with _command(by) as container:
        container.application.change_head(
            _household_id(household_id), person_id_for(fin), former_head_relationship, reason
        )
    console.print(f"{household_id}: {fin} is the head")


@households_cli.command("add-member")
def households_add_member(
    household_id: str,
    fin: str,
    first_name: Annotated[str, typer.Option()],
    last_name: Annotated[str, typer.Option()],
    birth_date: Annotated[str, typer.Option(help="YYYY-MM-DD")],
    sex: Annotated[str, typer.Option(help="female or male")],
    relationship: Annotated[str, typer.Option(help="Relationship to the head")],
    reason: Annotated[str, typer.Option(help="birth, marriage, adoption or other")],
    patronymic: str | None = None,
    by: OperatorOption = "operator",
) -> None:
    """A person joins the household (a registered person who belongs to no household may too)."""
    from domain.registry import NewMember

    member = NewMember(
        fin,
        first_name,
        last_name,
        patronymic,
        _date_option(birth_date, "--birth-date"),
        sex,
        relationship,
    )
    with _command(by) as container:
        container.application.add_member(_household_id(household_id), member, reason)
    console.print(f"{household_id}: {fin} joined")


@households_cli.command("split")
def households_split(
    household_id: str,
    member: Annotated[
        list[str], typer.Option(help="FIN=relationship for each member leaving (one is head)")
    ],
    address: Annotated[str, typer.Option(help="Address of the new household")],
    reason: Annotated[str, typer.Option()],
    by: OperatorOption = "operator",
) -> None:
    """Members leave to form a new household; prints its id."""
    from domain.registry import person_id_for

    relationships = {}
    for item in member:
        fin, sep, relationship = item.partition("=")
        if not sep:
            raise fail(f"--member {item!r} is not FIN=relationship")
        relationships[person_id_for(fin)] = relationship
    heads = [p for p, r in relationships.items() if r == "head"]
    if len(heads) != 1:
        raise fail("exactly one --member must be FIN=head")
    with _command(by) as container:
        new_id = container.application.split_household(
            _household_id(household_id), heads[0], relationships, address, reason
        )
    print(new_id)


@households_cli.command("clear-vulnerability")
def households_clear_vulnerability(
    household_id: str,
    vulnerability: str,
    reason: Annotated[str, typer.Option()],
    person: Annotated[str | None, typer.Option(help="FIN of the member concerned")] = None,
    by: OperatorOption = "operator",
) -> None:
    """A recorded vulnerability no longer applies."""
    from domain.registry import person_id_for

    with _command(by) as container:
        container.application.clear_vulnerability(
            _household_id(household_id),
            vulnerability,
            person_id_for(person) if person else None,
            reason,
        )
    console.print(f"{household_id}: {vulnerability} cleared")


surveys_cli = typer.Typer(no_args_is_help=True, help="Questionnaires and survey statistics.")
cli.add_typer(surveys_cli, name="surveys")


@surveys_cli.command("publish")
def surveys_publish(
    file: Annotated[
        Path | None,
        typer.Argument(help="Questionnaire JSON (default: the shipped pre-return survey)"),
    ] = None,
    by: ByOption = "supervisor",
) -> None:
    """Publish a questionnaire version, acting as a supervisor."""
    import json

    from domain.base import CommandContext, ValidationFailed, acting_as
    from domain.registry import InvalidState
    from domain.surveys import shipped_pre_return_questionnaire

    try:
        data = (
            json.loads(file.read_text(encoding="utf-8"))
            if file
            else shipped_pre_return_questionnaire()
        )
    except (OSError, ValueError) as exc:
        raise fail(f"{file}: {exc}") from None
    with running() as (container, _stop):
        context = CommandContext(
            Actor(by, "supervisor"), f"cli-{secrets.token_hex(4)}", "cli:surveys publish"
        )
        try:
            with acting_as(context):
                questionnaire = container.application.publish_questionnaire(data)
        except ValidationFailed as exc:
            raise fail(str(exc)) from None
        except InvalidState as exc:
            raise fail(str(exc), 1) from None
        console.print(
            f"published {questionnaire.code} version {questionnaire.questionnaire_version}"
        )


def _answer_value(text: str) -> Any:
    """An answer typed on the command line: JSON when it parses (2, true, ["a","b"]), else text."""
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text


@surveys_cli.command("start")
def surveys_start(
    household_id: str,
    questionnaire: str = "pre-return",
    version: int = 1,
    by: OperatorOption = "operator",
) -> None:
    """Start a household's survey; prints the response id."""
    with _command(by) as container:
        print(
            container.application.start_survey(_household_id(household_id), questionnaire, version)
        )


@surveys_cli.command("answer")
def surveys_answer(
    response_id: str,
    question_id: str,
    value: Annotated[
        str, typer.Argument(help='JSON or text: yes, 2, \'["housing","jobs"]\', 2026-05-01')
    ],
    by: OperatorOption = "operator",
) -> None:
    """Answer one question."""
    with _command(by) as container:
        response = container.application.answer_survey(
            _household_id(response_id, "survey response"), question_id, _answer_value(value)
        )
    console.print(f"{question_id}: {response.answers[question_id]}")


@surveys_cli.command("correct")
def surveys_correct(
    response_id: str,
    question_id: str,
    value: str,
    reason: Annotated[str, typer.Option()],
    by: OperatorOption = "operator",
) -> None:
    """Correct an answer, with a reason."""
    with _command(by) as container:
        response = container.application.correct_survey_answer(
            _household_id(response_id, "survey response"), question_id, _answer_value(value), reason
        )
    console.print(f"{question_id}: {response.answers[question_id]}")


@surveys_cli.command("complete")
def surveys_complete(response_id: str, by: OperatorOption = "operator") -> None:
    """Complete the survey (refused while a required question that is shown is unanswered)."""
    with _command(by) as container:
        container.application.complete_survey(_household_id(response_id, "survey response"))
    console.print("completed")


@surveys_cli.command("statistics")
def surveys_statistics(
    questionnaire: str = "pre-return",
    by: Annotated[str, typer.Option(help="settlement or district")] = "settlement",
) -> None:
    """Intention to return, top obstacles and employment needs per origin."""
    from rich.table import Table

    from projections import households

    if by not in ("settlement", "district"):
        raise fail("--by is settlement or district")
    with running() as (container, _stop):
        with container.read_pool.connection() as conn, conn.cursor() as cur:
            rows = households.survey_statistics(cur, questionnaire, by)
        table = Table(
            by, "households", "intention", "top obstacles", "households needing jobs", "persons"
        )
        for r in rows:
            table.add_row(
                r["origin"],
                str(r["households"]),
                ", ".join(f"{k} {v}" for k, v in (r["intention"] or {}).items()),
                ", ".join(f"{o['obstacle']} {o['households']}" for o in (r["top_obstacles"] or [])),
                str(r["households_needing_jobs"]),
                str(r["persons_needing_jobs"]),
            )
        table_console().print(table if rows else "no completed surveys")


demo_cli = typer.Typer(no_args_is_help=True, help="Demonstration data.")
cli.add_typer(demo_cli, name="demo")


@demo_cli.command("seed")
def demo_seed(
    households: Annotated[int, typer.Option(min=1, max=10_000, help="How many households")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same families)")] = 2026,
    documented: Annotated[
        bool,
        typer.Option(
            help="Also record IDP status, housing, a verification and a pre-return survey"
        ),
    ] = True,
) -> None:
    """Register demonstration households (reproducible from the seed), acting as demo-operator."""
    from infra.demo import seed_households

    with running() as (container, _stop):
        ids = seed_households(container.application, households, seed, documented)
        console.print(
            f"registered {len(ids)} demo households; the first is {ids[0] if ids else '-'}"
        )
        for household_id in ids[:3]:
            print(household_id)


from api import cli_eligibility, cli_housing  # noqa: E402, F401  (they register their commands)


def main() -> None:
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
