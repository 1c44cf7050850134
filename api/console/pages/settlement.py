"""The console's settlement pages: the settlements in the programme, and one settlement's
clearance and readiness, its units by status, the relocation pipeline in the order of the
process, its convoys, its returnees with the durable-solution criteria they do not meet yet,
and its lottery rounds. Every number comes from the API; charts are drawn by Chart.js from a
JSON block, and the same numbers are in a table beside each chart for screen readers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from api.console.client import Answer
from api.console.pager import Pager
from api.console.web import AnyRole, Page, PageProblem, SignInRequired
from domain import geography
from domain.housing import READINESS_ITEMS
from domain.relocation import STAGES

router = APIRouter(include_in_schema=False)

CONVOYS_PAGE = 50
RETURNEES_PAGE = 50
"""Rows a page of the convoys and of the returnees holds: a settlement in return has some
sixty convoys and thousands of returnee families."""


N_ = str  # marks a message for extraction without translating it here


UNIT_STATUSES = {
    "available": N_("Available"),
    "offered": N_("Offered"),
    "allocated": N_("Allocated"),
    "occupied": N_("Occupied"),
}
"""A housing unit's statuses, in the order a unit goes through them."""

STAGE_LABELS = {
    "opened": N_("Opened, waiting for an offer"),
    "offered": N_("Offered a home"),
    "allocated": N_("Offer accepted"),
    "consented": N_("Consent recorded"),
    "scheduled": N_("In a convoy"),
    "departed": N_("Departed"),
    "arrived": N_("Arrived"),
    "keys_handed_over": N_("Keys handed over"),
    "residence_registered": N_("Residence registered"),
    "completed": N_("Relocation completed"),
}
PROCESS = ("opened", *STAGES)
"""The relocation stages in the order of the process (``domain.relocation``): a case opens,
is offered a unit, accepts, consents, joins a convoy, departs, arrives, receives its keys,
registers its residence and is completed."""

CRITERIA = {
    "safety_and_security": N_("Safety and security"),
    "adequate_standard_of_living": N_("Adequate standard of living"),
    "livelihoods_and_employment": N_("Livelihoods and employment"),
    "housing_land_and_property": N_("Housing, land and property"),
    "documentation": N_("Documentation"),
    "family_reunification": N_("Family reunification"),
    "participation_in_public_affairs": N_("Participation in public affairs"),
    "access_to_remedies": N_("Access to remedies"),
}
"""The IASC Framework's eight criteria of a durable solution."""

READINESS = {
    "electricity": N_("Electricity"),
    "gas": N_("Gas"),
    "water": N_("Water"),
    "roads": N_("Roads"),
    "school": N_("School"),
    "clinic": N_("Clinic"),
    "internet": N_("Internet"),
}

COLOURS = ("#0b5394", "#1e6b35", "#7a4d00", "#6a1b9a", "#a4161a", "#00695c", "#4a5560")
"""Bar colours (each distinct from the page's white by 4.5:1); the tables carry the numbers."""


def label(labels: Mapping[str, str], value: str) -> str:
    """The message of a known value; an unknown one in words, never in snake_case."""
    return labels.get(value) or value.replace("_", " ")


def in_order(known: Iterable[str], found: Iterable[str]) -> list[str]:
    """``known`` in its order, then whatever else ``found`` holds, sorted."""
    order = list(known)
    return order + sorted(set(found) - set(order))


def pipeline_in_order(rows: Iterable[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """Households per stage in the order of the process, every stage shown (0 where none)."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["stage"]] = counts.get(row["stage"], 0) + int(row["households"])
    return [(stage, counts.get(stage, 0)) for stage in in_order(PROCESS, counts)]


def units_table(units: Mapping[str, Any]) -> tuple[list[int], list[dict[str, Any]]]:
    """The settlement's units as rows of status, then counts by rooms, then the total."""
    by_rooms = units.get("by_rooms") or []
    rooms = sorted({int(r["rooms"]) for r in by_rooms})
    totals = units.get("totals") or {}
    rows = []
    for status in in_order(UNIT_STATUSES, totals):
        counts = {int(r["rooms"]): int(r["units"]) for r in by_rooms if r["status"] == status}
        rows.append(
            {
                "status": status,
                "by_rooms": [counts.get(n, 0) for n in rooms],
                "total": int(totals.get(status, 0)),
            }
        )
    return rooms, rows


def units_chart(units: Mapping[str, Any], t: Callable[..., str]) -> dict[str, Any]:
    """Units by status, stacked by rooms, for ``static/console.js``."""
    rooms, rows = units_table(units)
    return {
        "type": "bar",
        "stacked": True,
        "labels": [t(label(UNIT_STATUSES, r["status"])) for r in rows],
        "datasets": [
            {
                "label": t("%(num)s rooms", num=n),
                "data": [r["by_rooms"][i] for r in rows],
                "backgroundColor": COLOURS[i % len(COLOURS)],
            }
            for i, n in enumerate(rooms)
        ],
    }


def pipeline_chart(stages: list[tuple[str, int]], t: Callable[..., str]) -> dict[str, Any]:
    return {
        "type": "bar",
        "indexAxis": "y",
        "labels": [t(label(STAGE_LABELS, stage)) for stage, _ in stages],
        "datasets": [
            {
                "label": t("Households"),
                "data": [count for _, count in stages],
                "backgroundColor": COLOURS[0],
            }
        ],
    }


def round_state(row: Mapping[str, Any]) -> str:
    if row.get("voided_at"):
        return N_("Voided")
    if row.get("drawn_at"):
        return N_("Drawn")
    return N_("Announced, waiting for the reveals")


def names(code: str, language: str, fallback: str | None = None) -> tuple[str, str]:
    """The settlement's and its district's names in ``language`` (the reference data)."""
    found = geography.settlement(code)
    if found is None:
        return fallback or code, ""
    if language == "az":
        return found.name_az, found.district_az
    return found.name_en, found.district_en


def checked(answer: Answer, path: str) -> Any:
    """The body of a successful answer; the API's refusal as the console's own page."""
    if answer.ok:
        return answer.body
    if answer.status == 401:
        raise SignInRequired(path)
    if answer.status == 403:
        raise PageProblem(403, "Your role may not open this page")
    if answer.status == 404:
        raise PageProblem(404, "Not found")
    raise PageProblem(answer.status, N_("The page could not be shown"), answer.problem.get("title"))


def purpose_missing(answer: Answer) -> bool:
    """The API refused an auditor's read for want of a purpose."""
    return answer.status == 422 and "X-Access-Reason" in answer.field_errors()


@router.get("/console/settlements")
async def settlements(page: AnyRole) -> Response:
    path = page.request.url.path
    found = checked(await page.api.get("/api/v1/settlements"), path)
    rows = []
    for s in found:
        name, district = names(s["settlement_code"], page.language, s.get("name"))
        rows.append({**s, "display_name": name, "district": district})
    return page.render(
        "settlement/list.html", settlements=rows, readiness_items=len(READINESS_ITEMS)
    )


async def _listed(
    page: Page, path: str, where: dict[str, str], pager: Pager, reason: str | None
) -> Answer:
    """One page of a list the API pages (``limit``, ``offset``), with its total."""
    params = {**where, "limit": pager.size, "offset": pager.offset, "total": "true"}
    return await page.api.get(path, params=params, reason=reason)


def total_of(answer: Answer) -> int:
    return int(answer.headers.get("x-total-count") or 0)


async def _page_of(
    page: Page, path: str, where: dict[str, str], pager: Pager, reason: str | None
) -> tuple[list[dict[str, Any]] | None, Pager]:
    """The rows of the page asked for, or of the last page when the address asks for one
    past it (the list grew shorter since); None when the API asks an auditor's purpose."""
    answer = await _listed(page, path, where, pager, reason)
    if purpose_missing(answer):
        return None, pager
    rows = checked(answer, page.request.url.path)
    found = pager.of(total_of(answer))
    if found.number != pager.number:
        rows = checked(await _listed(page, path, where, found, reason), page.request.url.path)
    return rows, found


@router.get("/console/settlements/{code}")
async def settlement(page: AnyRole, code: str, reason: str | None = None) -> Response:
    """The settlement's figures, its convoys (a page of them, each with its family count and
    a link to its manifest) and its returnees a page at a time; the API's reads are made
    together. An auditor first gives the purpose of reading the convoys and returnees."""
    path = page.request.url.path
    if geography.settlement(code) is None:
        raise PageProblem(404, "Not found")
    reason = (reason or "").strip() or None
    query = page.request.query_params
    convoy_pager = Pager.asked(path, query, "convoys", CONVOYS_PAGE)
    returnee_pager = Pager.asked(path, query, "returnees", RETURNEES_PAGE)
    where = {"settlement_code": code}
    needs_purpose = page.actor.role == "auditor" and reason is None
    api = page.api
    figures = asyncio.gather(
        api.get(f"/api/v1/settlements/{code}"),
        api.get("/api/v1/relocation/pipeline", params=where),
        api.get(f"/api/v1/settlements/{code}/rounds"),
    )
    convoys: list[dict[str, Any]] | None = None
    returnees: list[dict[str, Any]] | None = None
    if needs_purpose:
        answers = await figures
    else:
        answers, (convoys, convoy_pager), (returnees, returnee_pager) = await asyncio.gather(
            figures,
            _page_of(page, "/api/v1/convoys", where, convoy_pager, reason),
            _page_of(page, "/api/v1/reintegration/returnees", where, returnee_pager, reason),
        )
        if convoys is None or returnees is None:
            needs_purpose, convoys, returnees = True, None, None
    found, pipeline, rounds = (checked(answer, path) for answer in answers)
    stages = pipeline_in_order(pipeline)
    rooms, units = units_table(found["units"])
    name, district = names(code, page.language, found.get("name"))
    return page.render(
        "settlement/page.html",
        code=code,
        settlement=found,
        name=name,
        district=district,
        readiness=[(item, item in (found.get("readiness") or [])) for item in READINESS_ITEMS],
        rooms=rooms,
        units=units,
        units_total=sum(u["total"] for u in units),
        units_chart=units_chart(found["units"], page.t),
        stages=stages,
        households_in_pipeline=sum(count for _, count in stages),
        pipeline_chart=pipeline_chart(stages, page.t),
        convoys=convoys,
        convoy_pager=convoy_pager,
        returnees=returnees,
        returnee_pager=returnee_pager,
        rounds=rounds,
        reason=reason or "",
        needs_purpose=needs_purpose,
        purpose_refused=needs_purpose and reason is not None,
        label=label,
        UNIT_STATUSES=UNIT_STATUSES,
        STAGE_LABELS=STAGE_LABELS,
        CRITERIA=CRITERIA,
        READINESS=READINESS,
        round_state=round_state,
    )
