"""Running the service: `serve`, `api`, `relay`, `project`; the projections' status and
rebuilds, their dead letters, and the event contract."""

from __future__ import annotations

import secrets
import string
import threading
from functools import partial
from typing import Annotated, Any

import typer

from api.cli.common import console, fail, named, projection_names, running, table_console
from domain.base import Actor
from infra.bootstrap import PROJECTIONS, Container
from infra.config import ConfigurationError
from infra.resilience import supervised
from infra.supervision import probes, start_background

projections_cli = typer.Typer(
    no_args_is_help=True, help="Read-model projections: status and rebuilds."
)
dead_letters_cli = typer.Typer(no_args_is_help=True, help="Messages projections could not apply.")
contract_cli = typer.Typer(no_args_is_help=True, help="The event contract for downstream systems.")

HostOption = Annotated[str | None, typer.Option(help="Listen address (default HTTP_HOST)")]
PortOption = Annotated[int | None, typer.Option(help="Listen port (default HTTP_PORT)")]


def serve(host: HostOption = None, port: PortOption = None) -> None:
    """Run the API, the relay (when Kafka is configured) and every projection in one process."""
    with running() as (container, stop):
        _wait_for_dependencies(container, stop)
        kafka = container.settings.kafka_enabled
        if kafka:
            container.ensure_topics()
        container.projections.prepare()  # before the projections and the API start
        start_background(container, stop, relay=kafka, projections=True, checkpointing=True)
        _serve_http(container, stop, host, port)


def api(
    host: HostOption = None,
    port: PortOption = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, envvar="HTTP_WORKERS", help="Worker processes")
    ] = 1,
) -> None:
    """Run the HTTP API alone (with --workers N, as N processes on one port)."""
    with running() as (container, stop):
        _wait_for_dependencies(container, stop, kafka=False)
        container.projections.prepare()
        if workers == 1:
            _serve_http(container, stop, host, port)
            return
        if not container.settings.identities_configured:
            raise fail(
                "identities (OIDC_* or API_TOKEN_HASHES) are required with more than one API worker"
            )
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


def relay() -> None:
    """Publish the event store's log to Kafka, exactly once, until stopped."""
    with running() as (container, stop):
        if not container.settings.kafka_enabled:
            raise fail("the relay needs KAFKA_BOOTSTRAP_SERVERS")
        _serve_operations(container)
        _wait_for_dependencies(container, stop)
        container.ensure_topics()
        container.audit_trail.prepare()  # the checkpoints table
        start_background(container, stop, relay=False, projections=False, checkpointing=True)
        supervised("relay", container.relay, stop, probes(container))


def project(
    name: Annotated[str | None, typer.Argument(help="Projection to run (default: all)")] = None,
) -> None:
    """Run projections into their read models until stopped (from Kafka, or the event store without it)."""
    with running() as (container, stop):
        names = [name] if name else list(PROJECTIONS)
        unknown = [n for n in names if n not in PROJECTIONS]
        if unknown:
            raise fail(f"unknown projection {unknown[0]!r}; known: {', '.join(PROJECTIONS)}")
        _serve_operations(container)
        _wait_for_dependencies(container, stop)
        if container.settings.kafka_enabled:
            container.ensure_topics()
        if len(names) == 1:
            build = partial(container.projections.projector, names[0])
            supervised(f"projection:{names[0]}", build, stop, probes(container))
        else:
            for thread in start_background(container, stop, relay=False, projections=True):
                while thread.is_alive():
                    thread.join(0.5)


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
    app = create_app(container, dict(settings.api_tokens))  # invented in development
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
    console.print(
        f"Web console: {url}/console  (sign in with a development account)", highlight=False
    )
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


def _serve_operations(container: Container) -> None:
    """Expose /metrics, /healthz and /readyz on METRICS_PORT for processes without the API
    (relay, project)."""
    if container.settings.metrics_port:
        from infra.operations_http import serve_operations

        serve_operations(
            container.settings.http_host, container.settings.metrics_port, probes(container)
        )


def _wait_for_dependencies(
    container: Container, stop: threading.Event, *, kafka: bool = True
) -> None:
    """A process started while PostgreSQL or Kafka is down waits for it (one line each)."""
    from infra.resilience import KAFKA, dependency, unavailable, wait_for

    for name, probe in probes(container).items():
        if name == KAFKA and not kafka:
            continue
        try:
            probe()
        except Exception as exc:
            if unavailable(exc) is None:
                raise
            dependency(name).lost(exc)
            wait_for(name, probe, stop)


# --- projections and their dead letters ---------------------------------------------------


@projections_cli.command("status")
def projections_status() -> None:
    """Each projection's position and lag per partition, its pending dead letters and the
    events parked behind them."""
    from rich.table import Table

    with running() as (container, _stop):
        table = Table(
            "projection", "source", "partition", "position", "end", "lag", "dead letters", "parked"
        )
        for name in PROJECTIONS:
            state = container.projections.status(name)
            rebuilding = " (rebuild in progress)" if state.rebuild_in_progress else ""
            counts = [str(state.dead_letters_pending), str(state.parked)]
            if not state.partitions:
                table.add_row(name + rebuilding, "-", "-", "-", "-", "-", *counts)
            for i, part in enumerate(state.partitions):
                table.add_row(
                    name + rebuilding if i == 0 else "",
                    part.source,
                    str(part.partition),
                    str(part.position),
                    "-" if part.end is None else str(part.end),
                    "-" if part.lag is None else str(part.lag),
                    *(counts if i == 0 else ["", ""]),
                )
        table_console().print(table)


@projections_cli.command("rebuild")
def projections_rebuild(
    name: Annotated[str, typer.Argument(help="Projection to rebuild")],
) -> None:
    """Rebuild NAME from the start of its source into new tables while the old ones keep
    serving, then swap them in atomically. Run it again to resume an interrupted rebuild."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    projection_names(name)
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

            swapped = container.projections.rebuild(name, stop, on_progress)
        if not swapped:
            raise fail(f"rebuild of {name} interrupted before the swap; run it again to resume", 1)
        console.print(f"{name}: rebuilt and swapped in")


@dead_letters_cli.command("list")
def dead_letters_list(
    projection: Annotated[str | None, typer.Option(help="Only this projection")] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Include replayed and discarded ones")
    ] = False,
) -> None:
    """Messages a projection could not decode or apply, with the reason and how many later
    events of the same case are parked behind each."""
    from rich.table import Table

    from projections.admin import dead_letters

    with running() as (container, _stop):
        table = Table(
            "projection",
            "id",
            "source",
            "partition",
            "offset",
            "event type",
            "error",
            "parked",
            "resolved",
        )
        count = 0
        for name in projection_names(projection):
            for row in dead_letters(container.database_url, PROJECTIONS[name], all_):
                count += 1
                if row.replayed_at:
                    resolved = f"replayed {row.replayed_at:%Y-%m-%d %H:%M} by {row.replayed_by}"
                elif row.discarded_at:
                    resolved = (
                        f"discarded {row.discarded_at:%Y-%m-%d %H:%M} by {row.discarded_by}: "
                        f"{row.discard_reason}"
                    )
                else:
                    resolved = ""
                table.add_row(
                    name,
                    str(row.id),
                    row.source,
                    str(row.partition),
                    str(row.offset),
                    row.event_type or "?",
                    f"{row.error_class}: {row.error_message}",
                    str(row.parked),
                    resolved,
                )
        table_console().print(table if count else "no dead letters")


ByOption = Annotated[
    str | None,
    typer.Option("--by", help="Who does it, by name (development only; otherwise the token says)"),
]


@dead_letters_cli.command("replay")
def dead_letters_replay(
    by: ByOption = None,
    projection: Annotated[str | None, typer.Option(help="Only this projection")] = None,
    ids: Annotated[list[int] | None, typer.Option("--id", help="Only these dead letters")] = None,
) -> None:
    """Apply pending dead letters again after the cause was fixed, each followed by the events
    of its case parked behind it, in order. Exits 1 if any still fail."""
    from projections.admin import replay_dead_letters

    by = named(by, "operator", "replays")
    with running() as (container, _stop):
        failed = 0
        found: set[int] = set()
        for name in projection_names(projection):
            for outcome in replay_dead_letters(
                container.database_url,
                PROJECTIONS[name],
                by,
                ids or (),
                prepare_schema=container.settings.manages_schema,
            ):
                if outcome.outcome == "not found" and projection is None:
                    continue  # ids are per projection: it may be another one's
                found.add(outcome.id)
                failed += not outcome.resolved
                _print_resolution(name, outcome)
        missing = set(ids or ()) - found
        if missing and projection is None:
            raise fail(f"no dead letter {', '.join(f'#{i}' for i in sorted(missing))}", 1)
        if failed:
            raise typer.Exit(1)


@dead_letters_cli.command("discard")
def dead_letters_discard(
    projection: Annotated[str, typer.Option(help="The projection the dead letter belongs to")],
    id_: Annotated[int, typer.Option("--id", help="The dead letter")],
    reason: Annotated[str, typer.Option(help="Why it is given up (recorded)")],
    by: ByOption = None,
) -> None:
    """Give a dead letter up for good (recorded with who, when and why), then apply the events
    of its case parked behind it, in order."""
    from projections.admin import discard_dead_letter

    projection_names(projection)
    if not reason.strip():
        raise fail("--reason must say why")
    by = named(by, "operator", "discards")
    with running() as (container, _stop):
        outcome = discard_dead_letter(
            container.database_url,
            PROJECTIONS[projection],
            id_,
            by,
            reason,
            prepare_schema=container.settings.manages_schema,
        )
        _print_resolution(projection, outcome)
        if not outcome.resolved:
            raise typer.Exit(1)


def _print_resolution(name: str, outcome: Any) -> None:
    line = f"{name} #{outcome.id}: {outcome.outcome}"
    if outcome.reason:
        line += f" ({outcome.reason})"
    if outcome.released:
        line += f"; {outcome.released} parked events applied"
    if outcome.new_dead_letter is not None:
        line += (
            f"; a parked event failed and is now dead letter #{outcome.new_dead_letter}"
            f" with {outcome.still_parked} parked behind it"
        )
    elif outcome.still_parked:
        line += f"; {outcome.still_parked} parked events wait behind an older dead letter"
    console.print(line, highlight=False, soft_wrap=True)


# --- the contract -------------------------------------------------------------------------


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
