"""`reintegration rule-sets ...` and `reintegration eligibility ...`: rule sets through their
lifecycle, determinations one at a time or a settlement at a time, reassessment, the
explanation of a decision, overrides and appeals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import typer

from api.cli.common import (
    OperatorOption,
    SupervisorOption,
    acting,
    console,
    fail,
    parse_date,
    parse_uuid,
    progress_bar,
    running,
    show,
    table_console,
    views,
)
from api.presenters import decision_view
from application.eligibility import Eligibility
from application.shipped import load_document_text, shipped_rule_set

rule_sets_cli = typer.Typer(
    no_args_is_help=True, help="Eligibility rule sets: draft, check, approve."
)
eligibility_cli = typer.Typer(
    no_args_is_help=True, help="Eligibility: determine, reassess, explain, override, appeal."
)
RuleSetOption = Annotated[
    str | None, typer.Option("--rule-set", help="Rule set id (default ELIGIBILITY_RULE_SET)")
]
FileArgument = Annotated[
    Path | None, typer.Argument(help="Rule set YAML or JSON (default: the shipped rule set)")
]


def _document(file: Path | None) -> Any:
    if file is None:
        return shipped_rule_set()
    try:
        return load_document_text(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise fail(f"{file}: {exc.strerror}") from None


def _print_validation(rule_set: Any, failures: Any) -> None:
    console.print(
        f"{rule_set.code} version {rule_set.rule_set_version}: {rule_set.status}, "
        f"{rule_set.document_hash}",
        highlight=False,
    )
    for failure in failures:
        console.print(f"  [red]example fails:[/red] {failure}", highlight=False)


# --- rule sets ----------------------------------------------------------------------------


@rule_sets_cli.command("check")
def rule_sets_check(file: FileArgument = None) -> None:
    """Validate a document without recording anything: expressions compile over known facts,
    and every example gives what it expects. Exits 1 when an example fails."""
    with running() as (container, _stop):
        document, validation = container.services.eligibility.check(_document(file))
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
    with acting(by, "operator", "rule-sets draft") as services:
        rule_set, validation = services.eligibility.draft(data)
    _print_validation(rule_set, validation.example_failures)


@rule_sets_cli.command("revise")
def rule_sets_revise(
    file: Annotated[Path, typer.Argument(help="The revised document")],
    reason: Annotated[str, typer.Option(help="What the revision changes")],
    by: OperatorOption = "operator",
) -> None:
    """Revise a draft; an approved version never changes (draft a new version instead)."""
    data = _document(file)
    with acting(by, "operator", "rule-sets revise") as services:
        rule_set, validation = services.eligibility.revise(data, reason)
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
    effective = parse_date(effective_from, "--effective-from") if effective_from else None
    with acting(by, "supervisor", "rule-sets approve") as services:
        approved = services.eligibility.approve(rule_set, version, act, effective)
    console.print(
        f"{approved.code} version {approved.rule_set_version} approved, in force from "
        f"{approved.effective_from}",
        highlight=False,
    )


@rule_sets_cli.command("list")
def rule_sets_list(rule_set: Annotated[str | None, typer.Argument()] = None) -> None:
    """Rule set versions with their status, act and effective date."""
    from rich.table import Table

    from projections.queries import eligibility as read_model

    rows = views(read_model.list_rule_sets, rule_set)
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
        found = container.services.eligibility.versions(rule_set)
    if not 1 <= version <= len(found):
        raise fail(f"rule set {rule_set} version {version} not found", 1)
    r = found[version - 1]
    show(
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

    show({"facts_schema_version": FACTS_SCHEMA_VERSION, "facts": [f.__dict__ for f in FACT_SCHEMA]})


# --- determinations -----------------------------------------------------------------------


WorkersOption = Annotated[
    int,
    typer.Option(
        min=1,
        help="Processes deciding at once, each on its own households (a chunk of 1,000 at a time)",
    ),
]


def _run_batch(
    eligibility: Eligibility, label: str, household_ids: list[UUID], workers: int, **kwargs: Any
) -> None:
    progress, task = progress_bar(label, len(household_ids))
    with progress:
        if workers > 1:
            from infra.config import Settings
            from infra.eligibility_workers import determine_in_workers

            summary = determine_in_workers(
                Settings.from_env(),
                household_ids,
                workers,
                progress=lambda n: progress.advance(task, n),
                **kwargs,
            )
        else:
            summary = eligibility.determine_many(
                household_ids, progress=lambda n: progress.advance(task, n), **kwargs
            )
    show(summary.as_dict())
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
    workers: WorkersOption = 1,
) -> None:
    """Determine one household, or a settlement's, under the rule set in force today. A
    household whose current decision used the same version and facts is left unchanged."""
    if (household_id is None) == (settlement is None):
        raise fail("give a HOUSEHOLD_ID or --settlement, not both")
    with acting(by, "operator", "eligibility determine") as services:
        eligibility = services.eligibility
        if settlement is None:
            outcome = eligibility.determine(parse_uuid(household_id or "", "household"), rule_set)
            decision = outcome.decision or eligibility.current_decision(outcome.household_id)
            show({"status": outcome.status, **(decision_view(decision) if decision else {})})
            return
        eligibility.in_force(rule_set)  # refuse before any work when none is
        ids = eligibility.households_in(settlement)
        if not ids:
            raise fail(f"no household originates from {settlement}", 1)
        _run_batch(eligibility, f"determining {settlement}", ids, workers, rule_set_code=rule_set)


@eligibility_cli.command("reassess")
def eligibility_reassess(
    rule_set: RuleSetOption = None, by: OperatorOption = "operator", workers: WorkersOption = 1
) -> None:
    """Re-determine every case whose current decision used another version than the one in
    force: each new decision supersedes the old. Run it again after an interruption: cases
    already reassessed are skipped, none is decided twice."""
    with acting(by, "operator", "eligibility reassess") as services:
        in_force, ids = services.eligibility.reassessment_candidates(rule_set)
        label = f"reassessing under {in_force.code} v{in_force.rule_set_version}"
        reason = (
            f"reassessment: {in_force.code} version {in_force.rule_set_version} in force from "
            f"{in_force.effective_from}"
        )
        _run_batch(
            services.eligibility,
            label,
            ids,
            workers,
            rule_set_code=rule_set,
            reason=reason,
            reassess=True,
        )


@eligibility_cli.command("show")
def eligibility_show(
    household_id: str,
    lang: Annotated[str, typer.Option(help="az or en")] = "en",
) -> None:
    """The household's current decision, explained criterion by criterion."""
    from domain.engine import CriterionOutcome
    from domain.explanation import explain
    from domain.rules import parse_document
    from projections.queries import eligibility as read_model

    def decision_and_rule_set(cur: Any, case_id: UUID) -> tuple[Any, Any]:
        row = read_model.current_decision(cur, case_id)
        found = row and read_model.get_rule_set(cur, row["rule_set_code"], row["rule_set_version"])
        return row, found

    row, rule_set = views(decision_and_rule_set, parse_uuid(household_id, "household"))
    if row is None or rule_set is None:
        raise fail(f"household {household_id} has no eligibility decision", 1)
    print(f"decision {row['decision_id']} ({row['rule_set_code']} v{row['rule_set_version']})")
    for line in explain(
        parse_document(rule_set["document"]),
        [CriterionOutcome(**o) for o in row["outcomes"]],
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
    from projections.queries import eligibility as read_model

    rows = views(read_model.decision_history, parse_uuid(household_id, "household"))
    show([{k: r[k] for k in r if k not in ("facts", "outcomes")} for r in rows])


@eligibility_cli.command("statistics")
def eligibility_statistics(settlement: str | None = None) -> None:
    """Households per settlement by current result and priority group."""
    from rich.table import Table

    from projections.queries import eligibility as read_model

    rows = views(read_model.statistics, settlement)
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
    with acting(by, "supervisor", "eligibility override") as services:
        decision = services.eligibility.override(
            parse_uuid(decision_id, "decision"), result, priority_group, rooms, justification
        )
    console.print(f"decision {decision.id} now says {decision.effective_result}", highlight=False)


@eligibility_cli.command("appeal")
def eligibility_appeal(
    decision_id: str,
    grounds: Annotated[str, typer.Option(help="The household's grounds")],
    by: OperatorOption = "operator",
) -> None:
    """Lodge the household's appeal against its current decision; prints the appeal id."""
    with acting(by, "operator", "eligibility appeal") as services:
        appeal_id = services.eligibility.lodge_appeal(parse_uuid(decision_id, "decision"), grounds)
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
    with acting(by, "supervisor", "eligibility decide-appeal") as services:
        decision = services.eligibility.decide_appeal(
            parse_uuid(decision_id, "decision"),
            parse_uuid(appeal_id, "appeal"),
            outcome,
            reasons,
            result,
            priority_group,
        )
    console.print(
        f"appeal {outcome}; the decision says {decision.effective_result}", highlight=False
    )
