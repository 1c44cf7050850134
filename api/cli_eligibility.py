"""`reintegration rule-sets ...`, `reintegration eligibility ...` and the eligibility audits."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import typer

from api.cli import (
    ByOption,
    _date_option,
    _show,
    audit_cli,
    cli,
    console,
    fail,
    running,
    table_console,
)
from domain.base import Actor
from infra.bootstrap import Container

rule_sets_cli = typer.Typer(
    no_args_is_help=True, help="Eligibility rule sets: draft, check, approve."
)
eligibility_cli = typer.Typer(
    no_args_is_help=True, help="Eligibility: determine, reassess, explain, override, appeal."
)
cli.add_typer(rule_sets_cli, name="rule-sets")
cli.add_typer(eligibility_cli, name="eligibility")
SupervisorOption = Annotated[
    str, typer.Option("--by", help="Supervisor acting (recorded on the event)", envvar="USER")
]
OperatorOption = Annotated[
    str, typer.Option("--by", help="Operator acting (recorded on the event)", envvar="USER")
]
RuleSetOption = Annotated[
    str | None, typer.Option("--rule-set", help="Rule set id (default ELIGIBILITY_RULE_SET)")
]


@contextmanager
def acting(by: str, role: str, what: str) -> Iterator[Container]:
    """Run one command as `by` in `role`; domain errors become one-line messages."""
    from domain.base import CommandContext, DomainError, ValidationFailed, acting_as

    with running() as (container, _stop):
        container.prepare_read_models()
        context = CommandContext(Actor(by, role), f"cli-{secrets.token_hex(4)}", f"cli:{what}")
        try:
            with acting_as(context):
                yield container
        except ValidationFailed as exc:
            raise fail(str(exc)) from None
        except DomainError as exc:
            raise fail(str(exc), 1) from None


def _document(file: Path | None) -> Any:
    from infra.eligibility import load_document_text, shipped_rule_set

    if file is None:
        return shipped_rule_set()
    try:
        return load_document_text(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise fail(f"{file}: {exc.strerror}") from None


def _uuid(text: str, name: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise fail(f"{name} {text!r} is not a UUID") from None


def _print_validation(rule_set: Any, failures: Any) -> None:
    console.print(
        f"{rule_set.code} version {rule_set.rule_set_version}: {rule_set.status}, "
        f"{rule_set.document_hash}",
        highlight=False,
    )
    for failure in failures:
        console.print(f"  [red]example fails:[/red] {failure}", highlight=False)


# --- rule sets ----------------------------------------------------------------------------

FileArgument = Annotated[
    Path | None, typer.Argument(help="Rule set YAML or JSON (default: the shipped rule set)")
]


@rule_sets_cli.command("check")
def rule_sets_check(file: FileArgument = None) -> None:
    """Validate a document without recording anything: expressions compile over known facts,
    and every example gives what it expects. Exits 1 when an example fails."""
    from domain.base import ValidationFailed

    with running() as (container, _stop):
        try:
            document, validation = container.eligibility.check(_document(file))
        except ValidationFailed as exc:
            raise fail(str(exc)) from None
        if validation.errors:
            raise fail("; ".join(f"{e.field}: {e.reason}" for e in validation.errors))
        for failure in validation.example_failures:
            console.print(f"[red]example fails:[/red] {failure}", highlight=False)
        if validation.example_failures:
            raise typer.Exit(1)
        console.print(
            f"{document.code} version {document.version}: {len(document.examples)} examples pass",
            highlight=False,
        )


@rule_sets_cli.command("draft")
def rule_sets_draft(file: FileArgument = None, by: OperatorOption = "operator") -> None:
    """Draft a rule set version from a file (default: the shipped great-return-housing v1)."""
    data = _document(file)
    with acting(by, "operator", "rule-sets draft") as container:
        rule_set, validation = container.eligibility.draft(data)
        _print_validation(rule_set, validation.example_failures)


@rule_sets_cli.command("revise")
def rule_sets_revise(
    file: Annotated[Path, typer.Argument(help="The revised document")],
    reason: Annotated[str, typer.Option(help="What the revision changes")],
    by: OperatorOption = "operator",
) -> None:
    """Revise a draft; an approved version never changes (draft a new version instead)."""
    data = _document(file)
    with acting(by, "operator", "rule-sets revise") as container:
        rule_set, validation = container.eligibility.revise(data, reason)
        _print_validation(rule_set, validation.example_failures)


@rule_sets_cli.command("approve")
def rule_sets_approve(
    rule_set: Annotated[str, typer.Argument(help="Rule set id")],
    version: int,
    act: Annotated[str, typer.Option(help="The act adopting it: issuer, number, date")],
    effective_from: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD; default: the document's effective_from")
    ] = None,
    by: SupervisorOption = "supervisor",
) -> None:
    """Approve a draft as a supervisor; the earlier version is superseded from its date."""
    effective = _date_option(effective_from, "--effective-from") if effective_from else None
    with acting(by, "supervisor", "rule-sets approve") as container:
        approved = container.eligibility.approve(rule_set, version, act, effective)
        console.print(
            f"{approved.code} version {approved.rule_set_version} approved, in force from "
            f"{approved.effective_from}",
            highlight=False,
        )


@rule_sets_cli.command("list")
def rule_sets_list(rule_set: Annotated[str | None, typer.Argument()] = None) -> None:
    """Rule set versions with their status, act and effective date."""
    from rich.table import Table

    from projections import eligibility as views

    with running() as (container, _stop):
        container.catch_up_read_models()
        with container.read_pool.connection() as conn, conn.cursor() as cur:
            rows = views.list_rule_sets(cur, rule_set)
    table = Table("id", "version", "status", "effective from", "act", "examples")
    for r in rows:
        table.add_row(
            r["code"],
            str(r["rule_set_version"]),
            r["status"],
            str(r["effective_from"] or "-"),
            r["act_reference"] or "-",
            "pass" if not r["example_failures"] else f"{len(r['example_failures'])} fail",
        )
    table_console().print(table)


@rule_sets_cli.command("show")
def rule_sets_show(rule_set: str, version: int) -> None:
    """One rule set version as recorded: the document and its lifecycle."""
    with running() as (container, _stop):
        found = container.application.rule_set_versions(rule_set)
        if not 1 <= version <= len(found):
            raise fail(f"rule set {rule_set} version {version} not found", 1)
        import json

        r = found[version - 1]
        _show(
            {
                "id": r.code,
                "version": r.rule_set_version,
                "status": r.status,
                "document_hash": r.document_hash,
                "act_reference": r.act_reference,
                "effective_from": r.effective_from,
                "superseded_by": r.superseded_by,
                "example_failures": r.example_failures,
                "document": json.loads(r.document),
            }
        )


@rule_sets_cli.command("facts")
def rule_sets_facts() -> None:
    """The facts an expression may read (the versioned facts schema)."""
    from domain.rules import FACT_SCHEMA, FACTS_SCHEMA_VERSION

    _show(
        {"facts_schema_version": FACTS_SCHEMA_VERSION, "facts": [f.__dict__ for f in FACT_SCHEMA]}
    )


# --- determinations -----------------------------------------------------------------------


def _progress(label: str, total: int) -> Any:
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


def _run_batch(container: Container, label: str, household_ids: list[UUID], **kwargs: Any) -> None:
    progress, task = _progress(label, len(household_ids))
    with progress:
        summary = container.eligibility.determine_many(
            household_ids, progress=lambda n: progress.advance(task, n), **kwargs
        )
    _show(summary.as_dict())
    if summary.failed:
        raise typer.Exit(1)


@eligibility_cli.command("determine")
def eligibility_determine(
    household_id: Annotated[str | None, typer.Argument(help="One household")] = None,
    settlement: Annotated[
        str | None, typer.Option(help="Every household originating from this settlement")
    ] = None,
    rule_set: RuleSetOption = None,
    by: OperatorOption = "operator",
) -> None:
    """Determine one household, or a settlement's, under the rule set in force today. A
    household whose current decision used the same version and facts is left unchanged."""
    if (household_id is None) == (settlement is None):
        raise fail("give a HOUSEHOLD_ID or --settlement, not both")
    with acting(by, "operator", "eligibility determine") as container:
        if settlement is None:
            from api.eligibility import decision_view

            outcome = container.eligibility.determine(
                _uuid(household_id or "", "household"), rule_set
            )
            decision = outcome.decision or container.application.current_decision(
                outcome.household_id
            )
            _show({"status": outcome.status, **(decision_view(decision) if decision else {})})
            return
        container.eligibility.in_force(rule_set)  # refuse before any work when none is
        container.catch_up_read_models()
        ids = container.eligibility.households_in(settlement)
        if not ids:
            raise fail(f"no household originates from {settlement}", 1)
        _run_batch(container, f"determining {settlement}", ids, rule_set_code=rule_set)


@eligibility_cli.command("reassess")
def eligibility_reassess(rule_set: RuleSetOption = None, by: OperatorOption = "operator") -> None:
    """Re-determine every case whose current decision used another version than the one in
    force: each new decision supersedes the old. Run it again after an interruption: cases
    already reassessed are skipped, none is decided twice."""
    with acting(by, "operator", "eligibility reassess") as container:
        container.catch_up_read_models()
        in_force, ids = container.eligibility.reassessment_candidates(rule_set)
        label = f"reassessing under {in_force.code} v{in_force.rule_set_version}"
        reason = (
            f"reassessment: {in_force.code} version {in_force.rule_set_version} in force from "
            f"{in_force.effective_from}"
        )
        _run_batch(container, label, ids, rule_set_code=rule_set, reason=reason, reassess=True)


@eligibility_cli.command("show")
def eligibility_show(
    household_id: str,
    lang: Annotated[str, typer.Option(help="az or en")] = "en",
) -> None:
    """The household's current decision, explained criterion by criterion."""
    from domain import rules
    from projections import eligibility as views

    with running() as (container, _stop):
        container.catch_up_read_models()
        with container.read_pool.connection() as conn, conn.cursor() as cur:
            row = views.current_decision(cur, _uuid(household_id, "household"))
            rule_set = row and views.get_rule_set(
                cur, row["rule_set_code"], row["rule_set_version"]
            )
        if row is None or rule_set is None:
            raise fail(f"household {household_id} has no eligibility decision", 1)
        print(f"decision {row['decision_id']} ({row['rule_set_code']} v{row['rule_set_version']})")
        for line in rules.explain(
            rules.parse_document(rule_set["document"]),
            [rules.CriterionOutcome(**o) for o in row["outcomes"]],
            row["effective_result"],
            row["effective_priority_group"],
            row["effective_rooms"],
            lang,
        ):
            print(f"  {line}")
        if row["override_justification"]:
            print(f"  overridden by {row['overridden_by']}: {row['override_justification']}")


@eligibility_cli.command("history")
def eligibility_history(household_id: str) -> None:
    """Every decision of a household, with overrides and appeals."""
    from projections import eligibility as views

    with running() as (container, _stop):
        container.catch_up_read_models()
        with container.read_pool.connection() as conn, conn.cursor() as cur:
            rows = views.decision_history(cur, _uuid(household_id, "household"))
        _show([{k: r[k] for k in r if k not in ("facts", "outcomes")} for r in rows])


@eligibility_cli.command("statistics")
def eligibility_statistics(settlement: str | None = None) -> None:
    """Households per settlement by current result and priority group."""
    from rich.table import Table

    from projections import eligibility as views

    with running() as (container, _stop):
        container.catch_up_read_models()
        with container.read_pool.connection() as conn, conn.cursor() as cur:
            rows = views.statistics(cur, settlement)
    table = Table("settlement", "result", "priority group", "households")
    for r in rows:
        table.add_row(
            r["settlement_code"], r["result"], r["priority_group"] or "-", str(r["households"])
        )
    table_console().print(table)


@eligibility_cli.command("override")
def eligibility_override(
    decision_id: str,
    result: Annotated[str, typer.Option(help="eligible, ineligible or needs_review")],
    justification: Annotated[str, typer.Option(help="Why, in at least a sentence")],
    priority_group: Annotated[str | None, typer.Option(help="Required when eligible")] = None,
    rooms: Annotated[int | None, typer.Option(help="Rooms entitled")] = None,
    by: SupervisorOption = "supervisor",
) -> None:
    """Override the current decision as a supervisor; the original stays in the history."""
    with acting(by, "supervisor", "eligibility override") as container:
        decision = container.application.override_decision(
            _uuid(decision_id, "decision"), result, priority_group, rooms, justification
        )
        console.print(
            f"decision {decision.id} now says {decision.effective_result}", highlight=False
        )


@eligibility_cli.command("appeal")
def eligibility_appeal(
    decision_id: str,
    grounds: Annotated[str, typer.Option(help="The household's grounds")],
    by: OperatorOption = "operator",
) -> None:
    """Lodge the household's appeal against its current decision; prints the appeal id."""
    with acting(by, "operator", "eligibility appeal") as container:
        appeal_id = container.application.lodge_appeal(_uuid(decision_id, "decision"), grounds)
        print(appeal_id)


@eligibility_cli.command("decide-appeal")
def eligibility_decide_appeal(
    decision_id: str,
    appeal_id: str,
    outcome: Annotated[str, typer.Option(help="upheld or rejected")],
    reasons: Annotated[str, typer.Option(help="Why, in at least a sentence")],
    result: Annotated[str | None, typer.Option(help="The result after an upheld appeal")] = None,
    priority_group: Annotated[str | None, typer.Option()] = None,
    by: SupervisorOption = "supervisor",
) -> None:
    """Decide an appeal, as a supervisor who did not make the decision under appeal."""
    with acting(by, "supervisor", "eligibility decide-appeal") as container:
        decision = container.application.decide_appeal(
            _uuid(decision_id, "decision"),
            _uuid(appeal_id, "appeal"),
            outcome,
            reasons,
            result,
            priority_group,
        )
        console.print(
            f"appeal {outcome}; the decision says {decision.effective_result}", highlight=False
        )


# --- audit --------------------------------------------------------------------------------


@audit_cli.command("decision")
def audit_decision(decision_id: str, by: ByOption = "auditor") -> None:
    """Re-run a recorded decision on its recorded facts and rule set version: exit 0 when it
    gives the identical result, 1 when anything differs (each difference is printed)."""
    from domain.base import NotFound

    with running() as (container, _stop):
        try:
            rerun = container.eligibility.rerun(_uuid(decision_id, "decision"))
        except NotFound as exc:
            raise fail(str(exc), 1) from None
        _show(rerun.as_dict())
        if not rerun.matches:
            raise typer.Exit(1)


@audit_cli.command("decisions")
def audit_decisions(
    settlement: Annotated[str | None, typer.Option(help="Decisions of this settlement")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every recorded decision")] = False,
    by: ByOption = "auditor",
) -> None:
    """Re-run many recorded decisions (current and superseded) and summarise matches and
    mismatches; exit 1 when any differs."""
    if (settlement is None) == (not all_):
        raise fail("give --settlement CODE or --all")
    with running() as (container, _stop):
        container.catch_up_read_models()
        ids = container.eligibility.decisions_to_rerun(settlement)
        progress, task = _progress("re-running decisions", len(ids))
        mismatches = []
        engines: dict[str, int] = {}
        with progress:
            for rerun in container.eligibility.rerun_many(ids, lambda n: progress.advance(task, n)):
                engines[rerun.recorded_engine] = engines.get(rerun.recorded_engine, 0) + 1
                if not rerun.matches:
                    mismatches.append(rerun.as_dict())
        _show(
            {
                "scope": settlement or "all",
                "decisions": len(ids),
                "matches": len(ids) - len(mismatches),
                "mismatches": len(mismatches),
                "recorded_engines": engines,
                "mismatched": mismatches[:100],
            }
        )
        if mismatches:
            raise typer.Exit(1)
