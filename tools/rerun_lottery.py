#!/usr/bin/env python3
"""Re-run a housing lottery round from its published result, with nothing of the project.

One file, the Python standard library only. Give it the round's published JSON (`reintegration
lottery result CODE N`, or GET /api/v1/settlements/CODE/rounds/N/result) and it checks, step by
step, that:

1. the announcement is the one whose digest the committee recorded (``announcement_digest``);
2. every participant's revealed contribution matches the commitment it published before the
   draw, and nobody is missing;
3. the seed is SHA-256 of the canonical JSON of the algorithm, the round's id, every
   contribution in the announced order and the public randomness value;
4. the draw re-run from the seed, the entrants and the units gives the published assignment
   and reserve lists;
5. the result is the one whose digest the committee recorded (``result_digest``).

    python rerun_lottery.py round.json                 # exit 0: it matches; 1: it does not
    python rerun_lottery.py round.json --entrant ID    # and show this family's line

The draw (algorithm reintegration-lottery/2): units are grouped by rooms; a family draws in the
smallest category that covers its entitlement (the largest when none does). In each category,
families are ordered by priority rank, then score (higher first), then lot; units by lot. A lot
is the hex SHA-256 of "<seed>:<id>". The n-th family gets the n-th unit; the others form the
category's reserve list, in order. The public value is not checked against its source here:
compare it with what the source published (a drand round, the state lottery's numbers).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

FORMAT = "reintegration-lottery-round/1"
ALGORITHM = "reintegration-lottery/2"
PUBLIC_SPELLINGS = {
    "drand-quicknet": re.compile(r"[0-9a-f]{64}"),
    "drand-mainnet": re.compile(r"[0-9a-f]{64}"),
    "state-lottery": re.compile(r"(0|[1-9][0-9]{0,2})( (0|[1-9][0-9]{0,2}))*"),
}


class Unreadable(ValueError):
    """A document that is not plain JSON: a key twice, or a number JSON does not have."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise Unreadable(f"the key {key!r} appears twice in one object")
        found[key] = value
    return found


def _no_constant(name: str) -> Any:
    raise Unreadable(f"{name} is not a JSON number")


def load(text: str) -> dict[str, Any]:
    """The published JSON, refusing what two readers could read differently."""
    document = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    if not isinstance(document, dict):
        raise Unreadable("not a JSON object")
    return document


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(value: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical(value)).hexdigest()


def commitment(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode("utf-8")).hexdigest()


def lot(seed: str, item: str) -> str:
    return hashlib.sha256(f"{seed}:{item}".encode()).hexdigest()


def derive_seed(round_id: str, contributions: list[dict[str, str]], public_value: str) -> str:
    return hashlib.sha256(
        canonical(
            {
                "algorithm": ALGORITHM,
                "round_id": round_id,
                "contributions": [[c["participant"], c["contribution"]] for c in contributions],
                "public_value": public_value,
            }
        )
    ).hexdigest()


def draw(
    seed: str, entrants: list[dict[str, Any]], units: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    categories = sorted({u["rooms"] for u in units})
    assignments: list[dict[str, Any]] = []
    reserve: list[dict[str, Any]] = []
    if not categories:
        return assignments, reserve

    def category(entitled: int) -> int:
        fitting = [c for c in categories if c >= entitled]
        return fitting[0] if fitting else max(categories)

    for rooms in categories:
        pool = sorted(
            (e for e in entrants if category(e["rooms_entitled"]) == rooms),
            key=lambda e: (e["priority_rank"], -e["score"], lot(seed, e["id"])),
        )
        houses = sorted(
            (u for u in units if u["rooms"] == rooms), key=lambda u: lot(seed, u["unit_id"])
        )
        for i, entrant in enumerate(pool):
            if i < len(houses):
                assignments.append(
                    {
                        "id": entrant["id"],
                        "unit_id": houses[i]["unit_id"],
                        "rooms": rooms,
                        "position": i + 1,
                    }
                )
            else:
                reserve.append(
                    {"id": entrant["id"], "rooms": rooms, "position": i - len(houses) + 1}
                )
    return assignments, reserve


def check(document: dict[str, Any]) -> list[str]:
    """What does not match, in words; empty when everything does."""
    problems: list[str] = []
    if document.get("format") != FORMAT:
        return [f"not a published lottery round (format {document.get('format')!r})"]
    announcement = document["announcement"]
    if announcement.get("algorithm_version") != ALGORITHM:
        return [f"algorithm {announcement.get('algorithm_version')!r} is not {ALGORITHM}"]
    if digest(announcement) != document.get("announcement_digest"):
        problems.append(
            "the announcement differs from the one recorded (its digest does not match)"
        )
    result = document.get("result")
    if result is None:
        if document.get("voided"):
            problems.append("the round was voided, not drawn: " + json.dumps(document["voided"]))
        else:
            problems.append("the round is not drawn yet")
        return problems
    commitments = announcement["commitments"]
    revealed = result["contributions"]
    if [c["participant"] for c in revealed] != [c["participant"] for c in commitments]:
        problems.append("the reveals are not every participant's, in the announced order")
    for c, r in zip(commitments, revealed, strict=False):
        if commitment(r["contribution"]) != c["commitment"]:
            problems.append(f"the reveal of {r['participant']} does not match its commitment")
    public = announcement.get("public_randomness")
    if public and not result.get("public_value"):
        problems.append(f"the public value of {public['source']} is missing")
    spelling = PUBLIC_SPELLINGS.get(public["source"]) if public else None
    if public and result.get("public_value") and spelling is None:
        problems.append(f"{public['source']!r} is not a known source of public randomness")
    elif spelling is not None and not spelling.fullmatch(result.get("public_value", "")):
        problems.append(f"the public value is not spelt as {public['source']} publishes it")
    if not public and result.get("public_value"):
        problems.append("a public value was used but none was announced")
    seed = derive_seed(announcement["round_id"], revealed, result.get("public_value", ""))
    if seed != result["seed"]:
        problems.append("the seed is not the one derived from the reveals and the public value")
    assignments, reserve = draw(seed, announcement["entrants"], announcement["units"])
    if assignments != result["assignments"]:
        problems.append("the assignment differs from a re-run of the draw")
    if reserve != result["reserve"]:
        problems.append("the reserve lists differ from a re-run of the draw")
    recorded = {"announcement_digest": document.get("announcement_digest"), **result}
    if digest(recorded) != document.get("result_digest"):
        problems.append("the result differs from the one recorded (its digest does not match)")
    return problems


def entrant_line(document: dict[str, Any], entrant: str) -> str:
    announcement, result = document["announcement"], document.get("result") or {}
    found = next((e for e in announcement["entrants"] if e["id"] == entrant), None)
    if found is None:
        return f"{entrant}: not an entrant of this round"
    line = (
        f"{entrant}: priority group {found['priority_group']} (rank {found['priority_rank']}), "
        f"score {found['score']}, rooms entitled {found['rooms_entitled']}"
    )
    if result.get("seed"):
        line += f", lot {lot(result['seed'], entrant)}"
    unit = next((a for a in result.get("assignments", []) if a["id"] == entrant), None)
    place = next((p for p in result.get("reserve", []) if p["id"] == entrant), None)
    if unit:
        line += f": drawn unit {unit['unit_id']} ({unit['rooms']} rooms, #{unit['position']})"
    elif place:
        line += f": reserve list of {place['rooms']} rooms, place {place['position']}"
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("result", type=Path, help="the round's published JSON")
    parser.add_argument("--entrant", help="a family's pseudonymous id (on its offer letter)")
    args = parser.parse_args(argv)
    try:
        document = load(args.result.read_text(encoding="utf-8"))
        problems = check(document)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"NOT checked: {args.result} is not a readable round result ({exc})", file=sys.stderr)
        return 1
    announcement = document["announcement"]
    name = f"round {announcement['round_number']} of {announcement['settlement_code']}"
    if args.entrant:
        print(entrant_line(document, args.entrant))
    if problems:
        for problem in problems:
            print(f"MISMATCH: {problem}", file=sys.stderr)
        print(f"{name}: does NOT match", file=sys.stderr)
        return 1
    public = announcement.get("public_randomness")
    print(
        f"{name}: matches. {len(announcement['commitments'])} reveals match their commitments; "
        f"{len(document['result']['assignments'])} units assigned, "
        f"{len(document['result']['reserve'])} on reserve lists"
        + (
            f"; check the public value against {public['source']} {public['reference']}: "
            f"{document['result']['public_value']!r}"
            if public
            else ""
        )
    )
    print(
        f"announcement digest (compare with the one published): {document['announcement_digest']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
