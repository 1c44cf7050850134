"""`reintegration persons ...` and `reintegration households ...`: the registry's commands
(acting as an operator) and its read-model queries; `reintegration import registry`: the legacy
registry loaded from a CSV export.

Kept whole: each command is a thin parse-call-print over the registry's use cases, and they
share the same option helpers and output. The next split, when it grows, is the legacy import
(its workers, progress and summary) into its own module."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.common import (
    ByOption,
    OperatorOption,
    acting,
    console,
    fail,
    identified,
    parse_date,
    parse_id,
    reading,
    running,
    show,
    table_console,
)
from domain.registry import NewMember, person_id_for

persons_cli = typer.Typer(no_args_is_help=True, help="Registry: persons.")
households_cli = typer.Typer(no_args_is_help=True, help="Registry: households (cases).")
DEFAULT_IMPORT_WORKERS = max(1, min(4, os.cpu_count() or 1))
"""Processes of `import registry` by default: one per core (the event store's table lock
orders the commits; each worker does the domain work of its batches)."""

import_cli = typer.Typer(no_args_is_help=True, help="Load existing data.")


# --- persons ------------------------------------------------------------------------------


@persons_cli.command("show")
def persons_show(fin: str) -> None:
    """A person from the read model."""
    from projections.queries import households

    with reading("persons show") as reads:
        found = reads.query(households.get_person, fin)
    if found is None:
        raise fail("no person with that FIN", 1)
    show(found)


@persons_cli.command("access-report")
def persons_access_report(fin: str) -> None:
    """Who read this person's file (or their household's), when, in which role and why: for
    an operator answering the person's request (search terms are left out: they name others)."""
    from infra import access_log
    from projections.queries import households

    with reading("persons access-report", "operator") as reads:
        found = reads.container.query(households.get_person, fin)
        if found is None:
            raise fail("no person with that FIN", 1)
        subjects = [found["person_id"], *([found["household_id"]] if found["household_id"] else [])]
        entries = access_log.report(reads.container.read_pool, subjects)
        reads.record(subjects)
    show({"person_id": found["person_id"], "entries": entries})


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

    from projections.queries import households

    with reading("persons search") as reads:
        found = reads.query(
            households.find_persons,
            name_prefix=name_prefix,
            origin_settlement=origin_settlement,
            origin_district=origin_district,
            idp_status=idp_status,
            limit=limit,
            offset=offset,
        )
    table = Table(
        "FIN", "last name", "first name", "patronymic", "born", "origin", "IDP status", "household"
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
    with acting(by, "operator", "persons correct") as services:
        person = services.registry.correct_person(fin, field, new_value or None, reason, document)
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
    on = parse_date(effective, "--effective")
    with acting(by, "operator", "persons grant-status") as services:
        person = services.registry.grant_idp_status(fin, basis, on, certificate)
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
    on = parse_date(effective, "--effective")
    with acting(by, "operator", "persons end-status") as services:
        person = services.registry.end_idp_status(fin, basis, on, reason)
    console.print(f"{person.fin}: IDP status {person.idp_status}")


@persons_cli.command("record-death")
def persons_record_death(
    fin: str,
    date_of_death: Annotated[str, typer.Option("--date", help="YYYY-MM-DD")],
    document: Annotated[str | None, typer.Option()] = None,
    by: OperatorOption = "operator",
) -> None:
    """Record a death."""
    died_on = parse_date(date_of_death, "--date")
    with acting(by, "operator", "persons record-death") as services:
        person = services.registry.record_death(fin, died_on, document)
    console.print(f"{person.fin}: death recorded")


@persons_cli.command("status-reference")
def persons_status_reference(fin: str, by: OperatorOption = "operator") -> None:
    """Issue an IDP status reference and print its verification code."""
    with acting(by, "operator", "persons status-reference") as services:
        person, code = services.registry.issue_status_reference(fin)
    show(
        {
            "verification_code": code,
            "fin": person.fin,
            "status": person.idp_status,
            "certificate_number": person.idp_certificate_number,
            "household_id": person.household_id,
        }
    )


# --- households ---------------------------------------------------------------------------


@households_cli.command("show")
def households_show(household_id: str) -> None:
    """A household's profile from the read model."""
    from projections.queries import households

    with reading("households show") as reads:
        found = reads.query(households.get_household, parse_id(household_id))
    if found is None:
        raise fail(f"no household {household_id}", 1)
    show(found)


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

    from projections.queries import households

    with reading("households search") as reads:
        found = reads.query(
            households.find_households,
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
    with acting(by, "operator", "households housing-condition") as services:
        services.registry.record_housing_condition(parse_id(household_id), condition, note)
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
    on = parse_date(verified_on, "--verified-on")
    with acting(by, "operator", "households verify-circumstances") as services:
        services.registry.verify_circumstances(
            parse_id(household_id),
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
    with acting(by, "operator", "households vulnerability") as services:
        services.registry.record_vulnerability(
            parse_id(household_id), vulnerability, person_id_for(person) if person else None, note
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
    with acting(by, "operator", "households remove-member") as services:
        services.registry.remove_member(parse_id(household_id), person_id_for(fin), reason, note)
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
    with acting(by, "operator", "households change-head") as services:
        services.registry.change_head(
            parse_id(household_id), person_id_for(fin), former_head_relationship, reason
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
    born = parse_date(birth_date, "--birth-date")
    member = NewMember(fin, first_name, last_name, patronymic, born, sex, relationship)
    with acting(by, "operator", "households add-member") as services:
        services.registry.add_member(parse_id(household_id), member, reason)
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
    with acting(by, "operator", "households split") as services:
        relationships = {}
        for item in member:
            fin, sep, relationship = item.partition("=")
            if not sep:
                raise fail(f"--member {item!r} is not FIN=relationship")
            relationships[person_id_for(fin)] = relationship  # a bad FIN is invalid input
        heads = [p for p, r in relationships.items() if r == "head"]
        if len(heads) != 1:
            raise fail("exactly one --member must be FIN=head")
        new_id = services.registry.split_household(
            parse_id(household_id), heads[0], relationships, address, reason
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
    with acting(by, "operator", "households clear-vulnerability") as services:
        services.registry.clear_vulnerability(
            parse_id(household_id), vulnerability, person_id_for(person) if person else None, reason
        )
    console.print(f"{household_id}: {vulnerability} cleared")


# --- the legacy registry ------------------------------------------------------------------


@import_cli.command("registry")
def import_registry(
    file: Annotated[
        Path, typer.Argument(help="CSV export of the registry (columns in the README)")
    ],
    report: Annotated[
        Path | None, typer.Option(help="Where to write rejected rows (default FILE.rejected.csv)")
    ] = None,
    batch: Annotated[int, typer.Option(min=1, max=5000, help="Households per batch")] = 200,
    workers: Annotated[
        int,
        typer.Option(
            min=1, max=64, help="Processes registering batches in parallel (1: this process only)"
        ),
    ] = DEFAULT_IMPORT_WORKERS,
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

    from application.legacy_import import WorkerFailed
    from infra.legacy_csv import EXIT_FILE_REFUSED, FileRefused, LegacyImport

    if not file.is_file():
        raise fail(f"{file}: no such file", EXIT_FILE_REFUSED)
    report = report or file.with_name(file.name + ".rejected.csv")
    if not report.parent.is_dir():
        raise fail(f"{report}: its folder does not exist")
    importer = identified("operator", by)
    with running() as (container, _stop):
        try:
            job = LegacyImport(
                container.store,
                importer,
                batch,
                encoding,
                workers,
                replace(container.settings, database_url=container.database_url),
            )
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
                result = job.run(file, on_progress, report)
            except FileRefused as exc:
                raise fail(f"{file}: {exc}; nothing was imported", EXIT_FILE_REFUSED) from None
            except Exception as exc:
                partial = job.result
                why = str(exc) if isinstance(exc, WorkerFailed) else type(exc).__name__
                raise fail(
                    f"the import stopped ({why}) after {partial.households_registered} "
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
