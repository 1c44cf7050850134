"""The console's printable documents: the offer letter (with the family's pseudonymous
lottery id), the consent form, the convoy manifest and the lottery result list. Each is an
HTML page and, at the same address with ``.pdf``, a PDF from the same template (WeasyPrint,
in a worker thread: rendering is CPU-bound). The data comes from the API as the signed-in
caller, so the read log records every read behind a document; a PDF is personal data, so it
is never cached and its file name names no one."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from uuid import UUID

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.console import i18n
from api.console.client import Answer
from api.console.web import STATIC, AnyRole, Page, PageProblem, SignInRequired, secure
from domain.geography import settlement
from domain.housing import pseudonym, seed_hash

RENDERING = asyncio.Semaphore(2)
"""PDFs rendered at once in this process: rendering is CPU-bound and shares the worker threads
with the API's routes, so a burst of downloads is refused rather than queued."""

router = APIRouter(include_in_schema=False)

STYLESHEET = STATIC / "documents.css"


def N_(message: str) -> str:
    """A message to translate where it is shown (extracted by the catalog's test)."""
    return message


STAGES = {
    "opened": N_("Awaiting an offer"),
    "offered": N_("Offered"),
    "allocated": N_("Offer accepted"),
    "consented": N_("Consent given"),
    "scheduled": N_("Scheduled into a convoy"),
    "departed": N_("Departed"),
    "arrived": N_("Arrived"),
    "keys_handed_over": N_("Keys handed over"),
    "residence_registered": N_("Residence registered"),
    "completed": N_("Relocation completed"),
}
RELATIONSHIPS = {
    "head": N_("Head of household"),
    "spouse": N_("Spouse"),
    "child": N_("Child"),
    "parent": N_("Parent"),
    "sibling": N_("Sibling"),
    "grandchild": N_("Grandchild"),
    "grandparent": N_("Grandparent"),
    "child_in_law": N_("Child-in-law"),
    "parent_in_law": N_("Parent-in-law"),
    "other_relative": N_("Other relative"),
}
PRIORITY_GROUPS = {
    "collective_centre": N_("Collective centre"),
    "others_flat": N_("Living in another's flat"),
    "martyr_or_war_participant": N_("Family of a martyr or a war participant"),
    "other": N_("Other"),
}
INFORMED_OF = (
    N_("Return is voluntary: the family decides freely whether to move."),
    N_("Consent can be withdrawn at any time before departure, without losing IDP status."),
    N_("The house offered, its address and number of rooms, and the date of departure."),
    N_("The settlement's security clearance (demining) and the services ready there."),
    N_("Allowances and protection measures continue for 3 years after return."),
    N_("Personal data is processed only to organise the return (Law No. 998-IIIQ)."),
)
"""What the family is told before it signs the consent form (the API's ``informed_of``)."""


@dataclass(frozen=True)
class Kind:
    """One kind of document: its address, title, reference prefix and template."""

    slug: str
    title: str
    prefix: str
    template: str


OFFER = Kind("offer-letter", N_("Housing offer letter"), "OL", "documents/offer_letter.html")
CONSENT = Kind("consent-form", N_("Consent to return"), "CF", "documents/consent_form.html")
MANIFEST = Kind("convoy-manifest", N_("Convoy manifest"), "CM", "documents/convoy_manifest.html")
RESULT = Kind("lottery-result", N_("Lottery result list"), "LR", "documents/lottery_result.html")


def reference(kind: Kind, settlement_code: str, *subject: object) -> str:
    """The document's reference number: its kind, the settlement and ten hex digits of the
    SHA-256 of what it is about. The same document always has the same number, and the
    number names no one (it may go into a file name and onto paper)."""
    key = ":".join([kind.slug, settlement_code, *(str(s) for s in subject)])
    short = hashlib.sha256(key.encode("utf-8")).hexdigest()[:10].upper()
    return f"{kind.prefix}-{settlement_code}-{short}"


def settlement_names(code: str, language: str) -> dict[str, str]:
    """The settlement and its district as the language writes them (the reference table)."""
    found = settlement(code)
    if found is None:
        return {"code": code, "name": code, "district": ""}
    if language == "az":
        return {"code": code, "name": found.name_az, "district": found.district_az}
    return {"code": code, "name": found.name_en, "district": found.district_en}


def full_name(person: dict[str, Any]) -> str:
    parts = (person.get("last_name"), person.get("first_name"), person.get("patronymic"))
    return " ".join(p for p in parts if p) or "—"


def find_entry(result: dict[str, Any], household_id: UUID) -> dict[str, Any] | None:
    """The household's place in a published round: its pseudonymous id (computed as the
    domain computes it, then looked up among the round's entrants, so only a real entrant
    gets one), its priority, and its assignment or reserve place."""
    announcement = result.get("announcement") or {}
    alias = pseudonym(UUID(str(announcement.get("round_id"))), household_id)
    entrants = {e["id"]: e for e in announcement.get("entrants") or []}
    if alias not in entrants:
        return None
    drawn = result.get("result") or {}
    assignment = next((a for a in drawn.get("assignments") or [] if a["id"] == alias), None)
    reserve = next((r for r in drawn.get("reserve") or [] if r["id"] == alias), None)
    return {
        "pseudonym": alias,
        "round_number": announcement.get("round_number"),
        "entrant": entrants[alias],
        "assignment": assignment,
        "reserve": reserve,
    }


def lottery_lists(result: dict[str, Any]) -> dict[str, Any]:
    """The result list's tables: entrants in priority order with their outcome, and the
    assignments and the reserve in the order drawn, room category by room category (a place
    counts within its category)."""
    announcement = result.get("announcement") or {}
    drawn = result.get("result") or {}
    assignments = sorted(drawn.get("assignments") or [], key=lambda a: (a["rooms"], a["position"]))
    reserve = sorted(drawn.get("reserve") or [], key=lambda r: (r["rooms"], r["position"]))
    placed = {a["id"]: ("assigned", a["rooms"], a["position"]) for a in assignments}
    placed |= {r["id"]: ("reserve", r["rooms"], r["position"]) for r in reserve}
    entrants = [
        {**e, "place": placed.get(e["id"], (None, None, None))}
        for e in sorted(
            announcement.get("entrants") or [],
            key=lambda e: (e["priority_rank"], -float(e["score"]), e["id"]),
        )
    ]
    seed = drawn.get("seed")
    return {
        "entrants": entrants,
        "assignments": assignments,
        "reserve": reserve,
        "seed": seed,
        "seed_digest": seed_hash(seed) if seed else None,
    }


# --- the API, as the caller --------------------------------------------------------------


def purpose_of(page: Page) -> str | None:
    return (page.request.query_params.get("reason") or "").strip()[:500] or None


def needs_purpose(page: Page) -> bool:
    """An auditor reads personal data only for a stated purpose (the API's ``reason``)."""
    return page.actor.role == "auditor" and purpose_of(page) is None


def checked(page: Page, answer: Answer) -> Any:
    if answer.ok:
        return answer.body
    if answer.status == 401:
        raise SignInRequired(page.request.url.path)
    if answer.status == 404:
        raise PageProblem(404, "Not found")
    if answer.status == 403:
        raise PageProblem(403, "Your role may not open this page")
    raise PageProblem(
        answer.status, "This document cannot be made now", answer.problem.get("title")
    )


async def read(page: Page, path: str, **params: Any) -> Any:
    reason = purpose_of(page)
    return checked(page, await page.api.get(path, params=params or None, reason=reason))


# --- rendering ----------------------------------------------------------------------------


def today() -> str:
    return datetime.now(i18n.BAKU).date().isoformat()


def document_context(page: Page, kind: Kind, number: str, pdf: bool) -> dict[str, Any]:
    query = page.request.url.query
    return {
        "kind": kind,
        "reference_number": number,
        "issued_on": today(),
        "pdf": pdf,
        "layout": "documents/pdf.html" if pdf else "base.html",
        "pdf_href": f"{page.request.url.path.removesuffix('.pdf')}.pdf"
        + (f"?{query}" if query else ""),
        "stages": STAGES,
        "relationships": RELATIONSHIPS,
        "priority_groups": PRIORITY_GROUPS,
    }


def pdf_bytes(html: str) -> bytes:
    """HTML to PDF with the documents' print stylesheet; nothing is fetched from elsewhere."""
    import weasyprint  # heavy (Pango): loaded with the first PDF

    def fetch_nothing(url: str, *args: Any, **kwargs: Any) -> Any:
        raise ValueError("a document fetches no resources")

    document = weasyprint.HTML(string=html, base_url=str(STATIC), url_fetcher=fetch_nothing)
    pdf: bytes = document.write_pdf(stylesheets=[stylesheet()])
    return pdf


@cache
def stylesheet() -> Any:
    import weasyprint

    return weasyprint.CSS(filename=str(STYLESHEET))


async def respond(page: Page, kind: Kind, number: str, pdf: bool, **context: Any) -> Response:
    values = document_context(page, kind, number, pdf) | context
    if not pdf:
        response: Response = page.render(kind.template, **values)
    else:
        html = bytes(page.render(kind.template, **values).body).decode("utf-8")
        if RENDERING.locked():
            raise PageProblem(
                503,
                N_("Documents are being prepared for others"),
                N_("Try again in a moment."),
            )
        async with RENDERING:
            body = await run_in_threadpool(pdf_bytes, html)
        filename = f"{kind.slug}-{number}.pdf"
        response = Response(
            body,
            media_type="application/pdf",
            headers={"content-disposition": f'attachment; filename="{filename}"'},
        )
        secure(response)
    response.headers["cache-control"] = "no-store"
    return response


def ask_purpose(page: Page, kind: Kind) -> Response:
    response = page.render("documents/purpose.html", kind=kind)
    response.headers["cache-control"] = "no-store"
    return response


# --- the documents ------------------------------------------------------------------------


@router.get("/console/documents/offer-letter/{household_id}.pdf")
async def offer_letter_pdf(household_id: UUID, page: AnyRole) -> Response:
    return await offer_letter(household_id, page, pdf=True)


@router.get("/console/documents/offer-letter/{household_id}")
async def offer_letter_page(household_id: UUID, page: AnyRole) -> Response:
    return await offer_letter(household_id, page, pdf=False)


async def offer_letter(household_id: UUID, page: Page, pdf: bool) -> Response:
    if needs_purpose(page):
        return ask_purpose(page, OFFER)
    relocation = await read(page, f"/api/v1/households/{household_id}/relocation")
    if not relocation.get("unit_id"):
        raise PageProblem(404, "Not found", "The household holds no housing offer.")
    household = await read(page, f"/api/v1/households/{household_id}")
    code = relocation["settlement_code"]
    rounds = await read(page, f"/api/v1/settlements/{code}/rounds")
    entry, drawn_round = None, None
    for candidate in sorted(rounds, key=lambda r: -r["round_number"]):
        if not candidate.get("drawn_at"):
            continue
        result = await read(
            page, f"/api/v1/settlements/{code}/rounds/{candidate['round_number']}/result"
        )
        entry = find_entry(result, household_id)
        if entry is not None:
            drawn_round = candidate
            break
    head = next((m for m in household["members"] if m["relationship"] == "head"), None)
    return await respond(
        page,
        OFFER,
        reference(OFFER, code, household_id),
        pdf,
        relocation=relocation,
        household=household,
        head_name=full_name(head or {}),
        settlement=settlement_names(code, page.language),
        entry=entry,
        drawn_round=drawn_round,
    )


@router.get("/console/documents/consent-form/{household_id}.pdf")
async def consent_form_pdf(household_id: UUID, page: AnyRole) -> Response:
    return await consent_form(household_id, page, pdf=True)


@router.get("/console/documents/consent-form/{household_id}")
async def consent_form_page(household_id: UUID, page: AnyRole) -> Response:
    return await consent_form(household_id, page, pdf=False)


async def consent_form(household_id: UUID, page: Page, pdf: bool) -> Response:
    if needs_purpose(page):
        return ask_purpose(page, CONSENT)
    relocation = await read(page, f"/api/v1/households/{household_id}/relocation")
    household = await read(page, f"/api/v1/households/{household_id}")
    code = relocation["settlement_code"]
    members = [
        {**m, "name": full_name(m)} for m in household["members"] if not m.get("date_of_death")
    ]
    head = next((m for m in members if m["relationship"] == "head"), None)
    return await respond(
        page,
        CONSENT,
        reference(CONSENT, code, household_id),
        pdf,
        relocation=relocation,
        household=household,
        members=members,
        head_name=full_name(head or {}),
        settlement=settlement_names(code, page.language),
        informed_of=INFORMED_OF,
    )


@router.get("/console/documents/convoys/{convoy_id}.pdf")
async def convoy_manifest_pdf(convoy_id: UUID, page: AnyRole) -> Response:
    return await convoy_manifest(convoy_id, page, pdf=True)


@router.get("/console/documents/convoys/{convoy_id}")
async def convoy_manifest_page(convoy_id: UUID, page: AnyRole) -> Response:
    return await convoy_manifest(convoy_id, page, pdf=False)


async def convoy_manifest(convoy_id: UUID, page: Page, pdf: bool) -> Response:
    if needs_purpose(page):
        return ask_purpose(page, MANIFEST)
    convoy = await read(page, f"/api/v1/convoys/{convoy_id}")
    code = convoy["settlement_code"]
    families = [{**f, "head_name": full_name(f)} for f in convoy["families"]]
    return await respond(
        page,
        MANIFEST,
        reference(MANIFEST, code, convoy_id),
        pdf,
        convoy=convoy,
        families=families,
        persons=sum(int(f["members"] or 0) for f in families),
        settlement=settlement_names(code, page.language),
    )


@router.get("/console/documents/rounds/{code}/{number}.pdf")
async def lottery_result_pdf(code: str, number: int, page: AnyRole) -> Response:
    return await lottery_result(code, number, page, pdf=True)


@router.get("/console/documents/rounds/{code}/{number}")
async def lottery_result_page(code: str, number: int, page: AnyRole) -> Response:
    return await lottery_result(code, number, page, pdf=False)


async def lottery_result(code: str, number: int, page: Page, pdf: bool) -> Response:
    """The published result (entrants by pseudonym only): no purpose asked, nothing personal."""
    if settlement(code) is None:
        raise PageProblem(404, "Not found")
    result = await read(page, f"/api/v1/settlements/{code}/rounds/{number}/result")
    rounds = await read(page, f"/api/v1/settlements/{code}/rounds")
    summary: dict[str, Any] = next((r for r in rounds if r["round_number"] == number), {})
    return await respond(
        page,
        RESULT,
        reference(RESULT, code, number),
        pdf,
        result=result,
        round=summary,
        round_number=number,
        lists=lottery_lists(result),
        settlement=settlement_names(code, page.language),
    )
