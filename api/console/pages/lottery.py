"""The console's lottery round page: the round as the API publishes it (commitments and
reveals, the public randomness, the entrants by pseudonym with their lots, the assignment and
reserve lists, the digests) and, for auditors and supervisors, the API's re-run of the draw
from what the round recorded. The re-run is a GET form (a link with a purpose): without
JavaScript it opens the page with the re-run's answer, with htmx it replaces its own section.

A round has thousands of entrants: the entrants and the assignment and reserve lists are shown
a page at a time (the printable result list has them whole), and a family finds its line by
the lottery id of its offer letter."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from api.console.client import Answer
from api.console.pager import Pager
from api.console.pages.settlement import N_, checked, label, names, round_state
from api.console.web import AnyRole, Page, PageProblem
from domain import geography

router = APIRouter(include_in_schema=False)

AUDIT_ROLES = ("auditor", "supervisor")
ENTRANTS_PAGE = 100
LIST_PAGE = 100
"""Rows a page of the entrants, and of the assignment and the reserve lists, holds."""
MAX_LOTTERY_ID = 64

GROUPS = {
    "collective_centre": N_("Collective centre"),
    "others_flat": N_("Someone else's flat"),
    "martyr_or_war_participant": N_("Martyr's or war participant's family"),
    "other": N_("Other eligible family"),
}
"""The priority groups of the Great Return's housing rules (their ids in the rule set)."""

CHECKS = (
    ("seed_matches_commitment", N_("The seed follows from the reveals and their commitments")),
    ("digests_match", N_("The announcement and result digests match")),
    ("assignments_match", N_("The assignment list is the same")),
    ("reserve_matches", N_("The reserve list is the same")),
    ("commitments_signed", N_("Every commitment carries its participant's signature")),
)
"""What the API's re-run compares, in the order a reader follows the draw."""


def lot(seed: str, entrant: str) -> str:
    """An entrant's lot: SHA-256 of the seed, a colon and its pseudonym (the draw orders the
    entrants of a category by priority rank, then score, then lot)."""
    return hashlib.sha256(f"{seed}:{entrant}".encode()).hexdigest()


def entrant_lots(
    document: Mapping[str, Any], entrants: Iterable[Mapping[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Each entrant of the published round (or of ``entrants``, some of them) with its lot
    and what the draw gave it: a unit (its place in the assignment list) or a place on the
    reserve list; in the announced order."""
    announcement = document.get("announcement") or {}
    result = document.get("result") or {}
    seed = result.get("seed")
    assigned = {a["id"]: a for a in result.get("assignments") or []}
    reserve = {p["id"]: p for p in result.get("reserve") or []}
    if entrants is None:
        entrants = announcement.get("entrants") or []
    rows = []
    for entrant in entrants:
        pseudonym = entrant["id"]
        if pseudonym in assigned:
            outcome, place = "assigned", assigned[pseudonym]
        elif pseudonym in reserve:
            outcome, place = "reserve", reserve[pseudonym]
        else:
            outcome, place = ("not_placed" if seed else "waiting"), {}
        rows.append(
            {
                **entrant,
                "lot": lot(seed, pseudonym) if seed else None,
                "outcome": outcome,
                "position": place.get("position"),
                "category": place.get("rooms"),
                "unit_id": place.get("unit_id"),
            }
        )
    return rows


def lookup(document: Mapping[str, Any], lottery_id: str) -> dict[str, Any] | None:
    """The line of the entrant whose lottery id is ``lottery_id`` (as its offer letter gives
    it, in any case and spacing), or None when the round has no such entrant."""
    wanted = lottery_id.strip().lower()
    entrants = (document.get("announcement") or {}).get("entrants") or []
    found = [e for e in entrants if str(e["id"]).lower() == wanted]
    return entrant_lots(document, found)[0] if found else None


OUTCOMES = {
    "assigned": N_("Unit assigned"),
    "reserve": N_("Reserve list"),
    "not_placed": N_("No unit of its size"),
    "waiting": N_("Not drawn yet"),
}


def commitments(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each participant's commitment with its signature (present or not) and its reveal."""
    announcement = document.get("announcement") or {}
    result = document.get("result") or {}
    revealed = {c["participant"]: c["contribution"] for c in result.get("contributions") or []}
    return [
        {
            "participant": c["participant"],
            "commitment": c["commitment"],
            "signed": bool(c.get("signature")),
            "contribution": revealed.get(c["participant"]),
        }
        for c in announcement.get("commitments") or []
    ]


NOT_ASKED: dict[str, Any] = {"asked": False, "reason": "", "problem": None, "result": None}


def may_rerun(page: Page) -> bool:
    return page.actor.role in AUDIT_ROLES


def _round_path(code: str, number: int) -> str:
    return f"/console/settlements/{code}/rounds/{number}"


async def _rerun(page: Page, code: str, number: int, reason: str | None) -> dict[str, Any]:
    """The API's re-run, as the re-run section shows it: the checks, or why there are none."""
    found = {**NOT_ASKED, "reason": reason or "", "asked": True}
    if page.actor.role == "auditor" and not reason:
        return {**found, "problem": "reason"}
    answer: Answer = await page.api.get(
        f"/api/v1/audit/settlements/{code}/rounds/{number}/rerun", reason=reason
    )
    if answer.status == 422 and "X-Access-Reason" in answer.field_errors():
        return {**found, "problem": "reason"}
    if answer.status == 409:
        return {**found, "problem": "not_drawn"}
    body = checked(answer, page.request.url.path)
    return {**found, "result": body}


async def _published(page: Page, code: str, number: int) -> dict[str, Any] | None:
    """The round as published; None for a round announced with one party's seed (version 1),
    which is not published in this form."""
    if geography.settlement(code) is None:
        raise PageProblem(404, "Not found")
    answer = await page.api.get(f"/api/v1/settlements/{code}/rounds/{number}/result")
    return None if answer.status == 409 else checked(answer, page.request.url.path)


async def _round(page: Page, code: str, number: int) -> dict[str, Any]:
    path = page.request.url.path
    if geography.settlement(code) is None:
        raise PageProblem(404, "Not found")
    listed, document = await asyncio.gather(
        page.api.get(f"/api/v1/settlements/{code}/rounds"), _published(page, code, number)
    )
    summary = next((r for r in checked(listed, path) if r["round_number"] == number), None)
    if summary is None:
        raise PageProblem(404, "Not found")
    name, _ = names(code, page.language)
    published = document or {}
    entrants = (published.get("announcement") or {}).get("entrants") or []
    result = published.get("result") or {}
    round_path = _round_path(code, number)
    query = page.request.query_params
    entrant_pager = Pager.asked(round_path, query, "entrants", ENTRANTS_PAGE).of(len(entrants))
    assigned_pager = Pager.asked(round_path, query, "assigned", LIST_PAGE, "assignments")
    assigned_pager = assigned_pager.of(len(result.get("assignments") or []))
    reserve_pager = Pager.asked(round_path, query, "reserve", LIST_PAGE)
    reserve_pager = reserve_pager.of(len(result.get("reserve") or []))
    lottery_id = (query.get("id") or "").strip()[:MAX_LOTTERY_ID]
    return {
        "code": code,
        "number": number,
        "name": name,
        "summary": summary,
        "state": round_state(summary),
        "document": document,
        "commitments": commitments(published),
        "entrants": entrant_lots(published, entrant_pager.rows(entrants)),
        "entrant_pager": entrant_pager,
        "assignments": assigned_pager.rows(result.get("assignments") or []),
        "assigned_pager": assigned_pager,
        "reserve": reserve_pager.rows(result.get("reserve") or []),
        "reserve_pager": reserve_pager,
        "lottery_id": lottery_id,
        "found": lookup(published, lottery_id) if lottery_id else None,
        "may_rerun": may_rerun(page),
        "label": label,
        "GROUPS": GROUPS,
        "OUTCOMES": OUTCOMES,
        "CHECKS": CHECKS,
    }


@router.get("/console/settlements/{code}/rounds/{number}")
async def allocation_round(page: AnyRole, code: str, number: int) -> Response:
    context = await _round(page, code, number)
    return page.render("lottery/round.html", rerun=NOT_ASKED, **context)


@router.get("/console/settlements/{code}/rounds/{number}/rerun")
async def rerun(page: AnyRole, code: str, number: int, reason: str | None = None) -> Response:
    """The re-run: its section alone for htmx, the whole page with it otherwise."""
    if not may_rerun(page):
        raise PageProblem(403, "Your role may not open this page")
    reason = (reason or "").strip() or None
    if page.request.headers.get("hx-request"):
        return page.render(
            "lottery/rerun.html",
            code=code,
            number=number,
            document=await _published(page, code, number),
            CHECKS=CHECKS,
            rerun=await _rerun(page, code, number, reason),
        )
    context = await _round(page, code, number)
    return page.render(
        "lottery/round.html", rerun=await _rerun(page, code, number, reason), **context
    )
