"""`reintegration settlements ...` and `reintegration lottery ...`: settlements of return (cleared,
ready, opened) and their housing units, and the public lottery (announce the seed's hash, draw
with the seed revealed, offer each drawn unit)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.common import (
    ByOption,
    DateOption,
    OperatorOption,
    SupervisorOption,
    acting,
    console,
    fail,
    parse_date,
    parse_moment,
    show,
    views,
)

settlements_cli = typer.Typer(
    no_args_is_help=True, help="Settlements of return and their housing units."
)
lottery_cli = typer.Typer(
    no_args_is_help=True,
    help="Public housing lotteries: commit, announce, draw with every reveal, or void.",
)


# --- settlements --------------------------------------------------------------------------


@settlements_cli.command("register")
def settlements_register(code: str, by: OperatorOption = "operator") -> None:
    """Add a settlement of the reference data to the return programme."""
    with acting(by, "operator", "settlements register") as services:
        services.housing.register_settlement(code)
    console.print(f"{code} registered")


@settlements_cli.command("clearance")
def settlements_clearance(
    code: str,
    agency: Annotated[str, typer.Option(help="The certifying agency")],
    reference: Annotated[str, typer.Option(help="The certificate's reference")],
    on: DateOption,
    by: OperatorOption = "operator",
) -> None:
    """Record the certified security clearance (demining)."""
    certified_on = parse_date(on, "--on")
    with acting(by, "operator", "settlements clearance") as services:
        services.housing.certify_clearance(code, agency, certified_on, reference)
    console.print(f"{code}: clearance certified")


@settlements_cli.command("readiness")
def settlements_readiness(
    code: str,
    items: Annotated[
        str,
        typer.Option(help="Comma-separated: electricity,gas,water,roads,school,clinic,internet"),
    ],
    reference: Annotated[str, typer.Option()],
    on: DateOption,
    by: OperatorOption = "operator",
) -> None:
    """Record certified infrastructure readiness."""
    certified_on = parse_date(on, "--on")
    with acting(by, "operator", "settlements readiness") as services:
        services.housing.certify_readiness(
            code, [i.strip() for i in items.split(",")], certified_on, reference
        )
    console.print(f"{code}: readiness certified")


@settlements_cli.command("open")
def settlements_open(code: str, on: DateOption, by: SupervisorOption = "supervisor") -> None:
    """Open the settlement for return (supervisor; only after clearance)."""
    opened_on = parse_date(on, "--on")
    with acting(by, "supervisor", "settlements open") as services:
        services.housing.open_for_return(code, opened_on)
    console.print(f"{code}: open for return from {opened_on}")


@settlements_cli.command("units")
def settlements_units(
    code: str,
    file: Annotated[Path, typer.Argument(help="CSV with reference,address,rooms,kind,floor")],
    by: OperatorOption = "operator",
) -> None:
    """Register housing units from a CSV file; every row is checked before any is recorded."""
    try:
        with file.open(encoding="utf-8", newline="") as handle:
            rows = [{**r, "floor": r.get("floor") or None} for r in csv.DictReader(handle)]
    except OSError as exc:
        raise fail(f"{file}: {exc.strerror}") from None
    with acting(by, "operator", "settlements units") as services:
        ids = services.housing.register_units(code, rows)
    console.print(f"{code}: {len(ids)} units registered")


@settlements_cli.command("show")
def settlements_show(code: str) -> None:
    """The settlement, its units by status and room count, and its lottery rounds."""
    from projections.queries import housing as read_model

    def settlement(cur: Any) -> dict[str, Any]:
        return {
            "settlement": read_model.get_settlement(cur, code),
            "units": read_model.units_by_status(cur, code),
            "rounds": read_model.rounds(cur, code),
        }

    found = views(settlement)
    if found["settlement"] is None:
        raise fail(f"settlement {code} is not in the programme", 1)
    show(found)


# --- lottery ------------------------------------------------------------------------------


@lottery_cli.command("commit")
def lottery_commit() -> None:
    """For a participant of a draw, on their own machine: a fresh secret contribution (keep it
    until the draw) and its commitment (hand it in for the announcement)."""
    import secrets

    from domain.housing import seed_hash

    secret = secrets.token_hex(32)
    typer.echo(f"secret (reveal it at the draw, not before): {secret}")
    typer.echo(f"commitment (for the announcement): {seed_hash(secret)}")


def _pairs(given: list[str], option: str) -> list[tuple[str, str]]:
    """NAME=VALUE options; VALUE ``@FILE`` reads the file (a secret kept off the command
    line)."""
    pairs = []
    for item in given:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value:
            raise fail(f"{option} takes NAME=VALUE")  # the value may be a secret: not echoed
        if value.startswith("@"):
            try:
                value = Path(value[1:]).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise fail(f"{option}: cannot read {value[1:]}: {exc.strerror}") from None
        pairs.append((name.strip(), value))
    return pairs


@lottery_cli.command("announce")
def lottery_announce(
    code: str,
    participant: Annotated[
        list[str],
        typer.Option(help="NAME=sha256:<hex>, once per participant of the draw (two or more)"),
    ],
    public_source: Annotated[
        str | None, typer.Option(help="Public randomness: its source (e.g. drand-quicknet)")
    ] = None,
    public_reference: Annotated[
        str | None, typer.Option(help="Which value: a drand round, a draw's date")
    ] = None,
    public_published_at: Annotated[
        str | None, typer.Option(help="When it is published (ISO 8601, after the reveals)")
    ] = None,
    by: SupervisorOption = "supervisor",
) -> None:
    """Announce a round: every participant's commitment, the public randomness to come, the
    entrants in order and the units."""
    from domain.housing import Commitment, PublicRandomness

    public = None
    given = (public_source, public_reference, public_published_at)
    if any(given):
        if not all(given):
            raise fail(
                "public randomness needs --public-source, --public-reference and "
                "--public-published-at"
            )
        public = PublicRandomness(
            public_source or "",
            public_reference or "",
            parse_moment(public_published_at or "", "--public-published-at"),
        )
    commitments = [Commitment(n, v) for n, v in _pairs(participant, "--participant")]
    with acting(by, "supervisor", "lottery announce") as services:
        r = services.housing.announce_round(code, commitments, public)
    show(
        {
            "round": r.round_number,
            "round_id": r.id,
            "participants": [c.participant for c in r.commitments],
            "entrants": len(r.entrants),
            "units": len(r.units),
            "announcement_digest": r.announcement_digest,
        }
    )


@lottery_cli.command("reveal")
def lottery_reveal(
    code: str,
    number: int,
    participant: Annotated[str, typer.Option(help="Who reveals")],
    secret: Annotated[str, typer.Option(help="The secret, or @FILE holding it")],
    by: SupervisorOption = "supervisor",
) -> None:
    """Record one participant's secret, checked against its commitment."""
    ((_, contribution),) = _pairs([f"participant={secret}"], "--secret")
    with acting(by, "supervisor", "lottery reveal") as services:
        r = services.housing.reveal(code, number, participant, contribution)
    missing = [m.participant for m in r.commitments if m.participant not in r.revealed]
    show({"revealed": list(r.revealed), "waiting_for": missing})


@lottery_cli.command("draw")
def lottery_draw(
    code: str,
    number: int,
    witnesses: Annotated[str, typer.Option(help="Who witnessed the draw")],
    public_value: Annotated[
        str, typer.Option(help="The announced public randomness value, as published")
    ] = "",
    by: SupervisorOption = "supervisor",
) -> None:
    """Draw once every participant has revealed (with the public value), and offer every
    drawn unit to its household."""
    with acting(by, "supervisor", "lottery draw") as services:
        r = services.housing.draw_round(code, number, public_value, witnesses)
    show(
        {
            "assigned": len(r.assignments),
            "reserve": len(r.reserve),
            "seed": r.seed,
            "result_digest": r.result_digest,
        }
    )


@lottery_cli.command("void")
def lottery_void(
    code: str,
    number: int,
    reason: Annotated[str, typer.Option(help="Why the round is voided")],
    withheld_by: Annotated[
        list[str] | None, typer.Option(help="A participant who did not reveal (repeat)")
    ] = None,
    by: SupervisorOption = "supervisor",
) -> None:
    """Void a round a participant withheld its reveal for; announce the next one afresh."""
    with acting(by, "supervisor", "lottery void") as services:
        r = services.housing.void_round(code, number, withheld_by or [], reason)
    show({"round_id": r.id, "voided": r.voided})


@lottery_cli.command("result")
def lottery_result(
    code: str,
    number: int,
    output: Annotated[Path | None, typer.Option(help="Write the JSON here")] = None,
    by: ByOption = "auditor",
) -> None:
    """The round as published (JSON): commitments, reveals, public value, entrants by
    pseudonym, units, assignment and reserve lists; re-run it with tools/rerun_lottery.py."""
    with acting(by, "auditor", "lottery result") as services:
        document = services.housing.published_round(code, number)
    text = json.dumps(document, indent=2, ensure_ascii=False)
    if output is None:
        print(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        console.print(f"wrote {output}")


@lottery_cli.command("offer")
def lottery_offer(code: str, number: int, by: OperatorOption = "operator") -> None:
    """Offer the drawn units not offered yet (after an interrupted draw); safe to repeat."""
    with acting(by, "operator", "lottery offer") as services:
        made = services.housing.offer_drawn(code, number)
    console.print(f"{made} offers made")
