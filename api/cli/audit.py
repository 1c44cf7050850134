"""`reintegration audit ...`: for auditors, from the event log: a case's history and its state
at any moment, the tamper evidence of the log, the read models checked against the log, who
read whose data, and the re-runs of recorded decisions and lottery draws."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import typer

from api.cli.common import (
    ByOption,
    JsonOption,
    console,
    fail,
    identified,
    parse_id,
    parse_moment,
    parse_uuid,
    progress_bar,
    projection_names,
    reading,
    running,
    table_console,
)
from infra import access_log

audit_cli = typer.Typer(
    no_args_is_help=True, help="For auditors: history, as-of state, tamper evidence."
)


def _print_report(report: Any, as_json: bool) -> None:
    if as_json:
        print(report.to_json())
    else:
        style = "green" if report.ok else "red"
        table_console().print(report.to_text(), style=style, highlight=False, markup=False)
    if not report.ok:
        raise typer.Exit(1)


@audit_cli.command("case")
def audit_case(
    household_id: Annotated[str, typer.Argument(help="Household (case) id")],
    output: Annotated[
        Path | None, typer.Option(help="Also write the document here (.html or .json)")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(help="Show the case's state as of this ISO 8601 time")
    ] = None,
    lang: Annotated[str, typer.Option(help="Language of the HTML report: en or az")] = "en",
    as_json: JsonOption = False,
    by: ByOption = "auditor",
) -> None:
    """The complete history of a case from the event store, with the hash chain checked (or,
    with --as-of, the case's state at that moment), in the audit envelope; --output writes it
    as a readable HTML report (or JSON)."""
    from application.audit import case_report
    from infra.case_report import render_html

    if lang not in ("en", "az"):
        raise fail("--lang is en or az")
    case_id = parse_id(household_id)
    with reading("audit case", "auditor", by) as reads:
        container, by = reads.container, reads.actor.user_id
        audit = container.services.audit
        chain = container.audit_trail.verify(by, require_keys=False, snapshots=False)
        if as_of is not None:
            document = audit.as_of(case_id, parse_moment(as_of))
            subjects = [case_id]
        else:
            document = audit.history(case_id)
            subjects = [case_id, *{UUID(e["aggregate_id"]) for e in document["events"]}]
        report = case_report(case_id, document, chain, by)
        reads.record(subjects)
    if output is not None:
        if output.suffix == ".html":
            text = render_html(document, chain, by, lang)
        else:
            text = json.dumps(document, indent=2, ensure_ascii=False)
        output.write_text(text, encoding="utf-8")
    if not as_json:
        report.details = None  # the text shows the envelope; the document is in --output
        if as_of is None:
            for e in document["events"]:
                report.summary[f"#{e['position']}"] = (
                    f"{e['occurred_at'][:19].replace('T', ' ')} "
                    f"{e['event_type'].rsplit('.', 1)[-1]} by {e['actor_id']} "
                    f"({e['actor_role']})" + (f": {e['reason']}" if e.get("reason") else "")
                )
        if output is not None:
            report.summary["written to"] = str(output)
    _print_report(report, as_json)


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
    signed checkpoints and the links carried in Kafka; report the first broken position. Every
    snapshot is recomputed from its events too: one that differs is reported."""
    import base64

    by = identified("auditor", by).user_id
    with running() as (container, _stop):
        key = base64.b64decode(public_key) if public_key else None
        report = container.audit_trail.verify(by, key)
        _print_report(report, as_json)


@audit_cli.command("keygen")
def audit_keygen() -> None:
    """A new checkpoint signing key: the private seed (AUDIT_SIGNING_KEY; keep it secret, away
    from the database) and the public key to publish (AUDIT_PUBLIC_KEYS)."""
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    from infra.config import Settings
    from infra.signed_note import ED25519, VerifierKey
    from infra.tamper_evidence import key_id, public_key_bytes

    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = public_key_bytes(key)
    origin = Settings.from_env().audit_log_origin
    typer.echo(f"AUDIT_SIGNING_KEY={base64.b64encode(seed).decode()}")
    typer.echo(f"public key (publish it): {base64.b64encode(public).decode()}")
    typer.echo(f"key id: {key_id(public)}")
    typer.echo(f"verifier key (witnesses, verifiers): {VerifierKey(origin, ED25519, public)}")


@audit_cli.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the chain's head now (the service also does it every AUDIT_CHECKPOINT_INTERVAL_S)."""
    with running() as (container, _stop):
        if container.settings.kafka_enabled:
            container.ensure_topics()
        try:
            checkpoint = container.audit_trail.write_checkpoint()
        except RuntimeError as exc:
            raise fail(str(exc)) from None
        if checkpoint is None:
            console.print("no new events since the last checkpoint")
        else:
            console.print(
                f"checkpoint of {checkpoint.tree_size} events (up to position "
                f"{checkpoint.position}), signed:",
                highlight=False,
            )
            typer.echo(checkpoint.note, nl=False)  # as it is, unwrapped: it is signed text


@audit_cli.command("rebuild-tree")
def audit_rebuild_tree() -> None:
    """Grow the Merkle tree (the transparency log's tiles) again from the hash chain, after a
    restore or when `audit verify` finds the stored tree differs. The checkpoints are kept."""
    import psycopg

    with running() as (container, _stop):
        try:
            size = container.audit_trail.rebuild_tree()
        except psycopg.errors.InsufficientPrivilege:
            raise fail(
                "rebuilding the tree needs the owner role: run it with the owner's DATABASE_URL"
            ) from None
        console.print(f"Merkle tree rebuilt: {size} leaves", highlight=False)


@audit_cli.command("projections")
def audit_projections(
    name: Annotated[str | None, typer.Argument(help="Projection (default: all)")] = None,
    as_json: JsonOption = False,
    by: ByOption = "auditor",
) -> None:
    """Rebuild the read models into scratch tables from the start of the log and compare them with
    the live ones, reporting any difference (one envelope for all the projections checked)."""
    from application.reports import combined

    by = identified("auditor", by).user_id
    with running() as (container, _stop):
        reports = [
            container.projections.cross_check(projection, by)
            for projection in projection_names(name)
        ]
    report = combined("projection cross-check", "every read model", by, reports)
    _print_report(report, as_json)


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
    from rich.table import Table

    subject_id = parse_id(subject, "person or household") if subject else None
    moment = parse_moment(since, "--since") if since else None
    with reading("audit access-log", "auditor") as reads:
        entries = access_log.query(
            reads.container.read_pool,
            actor_id=actor,
            subject_id=subject_id,
            since=moment,
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


# --- re-runs of what was decided ----------------------------------------------------------


@audit_cli.command("decision")
def audit_decision(decision_id: str, as_json: JsonOption = False, by: ByOption = "auditor") -> None:
    """Re-run a recorded decision on its recorded facts and rule set version: exit 0 when it
    gives the identical result, 1 when anything differs (each difference is a finding)."""
    from application.audit import decision_report

    with reading("audit decision", "auditor", by) as reads:
        rerun = reads.container.services.audit.rerun_decision(parse_uuid(decision_id, "decision"))
        reads.record([rerun.household_id])
    _print_report(decision_report(rerun, reads.actor.user_id), as_json)


@audit_cli.command("decisions")
def audit_decisions(
    settlement: Annotated[str | None, typer.Option(help="Decisions of this settlement")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every recorded decision")] = False,
    as_json: JsonOption = False,
    by: ByOption = "auditor",
) -> None:
    """Re-run many recorded decisions (current and superseded) and summarise matches and
    mismatches; exit 1 when any differs."""
    from application.audit import decisions_report

    if (settlement is None) == (not all_):
        raise fail("give --settlement CODE or --all")
    by = identified("auditor", by).user_id
    with running() as (container, _stop):
        audit = container.services.audit
        ids = audit.decisions(settlement)
        progress, task = progress_bar("re-running decisions", len(ids))
        reruns = []
        engines: dict[str, int] = {}
        with progress:
            for rerun in audit.rerun_decisions(ids, lambda n: progress.advance(task, n)):
                engines[rerun.recorded_engine] = engines.get(rerun.recorded_engine, 0) + 1
                reruns.append(rerun)
    scope = f"decisions of {settlement}" if settlement else "every decision"
    _print_report(decisions_report(scope, reruns, engines, by), as_json)


@audit_cli.command("lottery")
def audit_lottery(
    code: str, number: int, as_json: JsonOption = False, by: ByOption = "auditor"
) -> None:
    """Re-run a drawn round from what it recorded (every reveal against its commitment, the
    seed, the draw, the digests): exit 1 on a difference."""
    from application.audit import lottery_report

    with reading("audit lottery", "auditor", by) as reads:
        services = reads.container.services
        check = services.audit.rerun_lottery(code, number)
        reads.record([e.household_id for e in services.housing.get_round(code, number).entrants])
    _print_report(lottery_report(check, reads.actor.user_id), as_json)
