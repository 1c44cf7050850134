"""Searching persons and households: name prefix (Azerbaijani letters folded as the language
folds them), FIN, settlement and status filters; paginated with the total count; exportable as
CSV. Every search is the API's own (``GET /api/v1/persons``, ``GET /api/v1/households``), so
it is scoped to the caller's districts and recorded in the read log with its terms."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from api.console.client import Answer
from api.console.web import AnyRole, Page, PageProblem, SignInRequired, secure
from domain import registry
from domain.geography import settlements

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
EXPORT_PAGE = 500
EXPORT_LIMIT = 20_000
"""An export holds at most this many rows: narrow the filters for more (a national list is a
bulk extract, which goes through the committee's data-sharing procedure, not a button)."""

N_ = str  # marks a message for extraction without translating it here

LABELS = {
    "none": N_("no status"),
    "active": N_("active IDP status"),
    "ended": N_("IDP status ended"),
    "started": N_("survey started"),
    "completed": N_("survey completed"),
    "dormitory": N_("dormitory"),
    "sanatorium": N_("sanatorium"),
    "unfinished_building": N_("unfinished building"),
    "administrative_building": N_("administrative building"),
    "others_flat": N_("someone else's flat"),
    "own_or_rented": N_("own or rented home"),
    "no_survey": N_("no survey"),
}


@dataclass(frozen=True)
class Query:
    """What the search form asks, as the API takes it."""

    kind: str = "households"
    name: str = ""
    fin: str = ""
    settlement: str = ""
    idp_status: str = ""
    survey_status: str = ""
    housing_condition: str = ""
    reason: str = ""

    @classmethod
    def of(cls, request: Request) -> Query:
        given = request.query_params
        kind = "persons" if given.get("kind") == "persons" else "households"
        return cls(
            kind=kind,
            **{
                name: (given.get(name) or "").strip()
                for name in (
                    "name",
                    "fin",
                    "settlement",
                    "idp_status",
                    "survey_status",
                    "housing_condition",
                    "reason",
                )
            },
        )

    @property
    def asked(self) -> bool:
        return (
            any(
                (
                    self.name,
                    self.fin,
                    self.settlement,
                    self.idp_status,
                    self.survey_status,
                    self.housing_condition,
                )
            )
            or self.kind == "persons"
        )

    def api_path(self) -> str:
        return "/api/v1/persons" if self.kind == "persons" else "/api/v1/households"

    def api_params(self) -> dict[str, Any]:
        common = {"name_prefix": self.name, "origin_settlement": self.settlement}
        if self.kind == "persons":
            return {**common, "idp_status": self.idp_status}
        return {
            **common,
            "fin": self.fin.upper(),
            "survey_status": self.survey_status,
            "housing_condition": self.housing_condition,
        }

    def link(self, **changes: Any) -> str:
        from urllib.parse import urlencode

        values = {**self.__dict__, **changes}
        return "?" + urlencode({k: v for k, v in values.items() if v not in ("", None)})


def _problem(answer: Answer, page: Page) -> None:
    if answer.status == 401:
        raise SignInRequired(str(page.request.url.path))
    if answer.status == 403:
        raise PageProblem(403, N_("Your role may not open this page"))


FORM_FIELDS = {
    "name_prefix": "name",
    "fin": "fin",
    "origin_settlement": "settlement",
    "idp_status": "idp_status",
    "survey_status": "survey_status",
    "housing_condition": "housing_condition",
    "reason": "reason",
}
"""The API's query parameters by the search form's fields (a 422 names the former)."""


@router.get("/console/search")
async def search(page: AnyRole) -> Response:
    query = Query.of(page.request)
    given = page.request.query_params.get("page") or "1"
    number = min(int(given), 10**6) if given.isdigit() and int(given) > 0 else 1
    errors: dict[str, list[str]] = {}
    result: dict[str, Any] | None = None
    needs_reason = page.actor.role == "auditor" and not query.reason
    if query.asked and not needs_reason:
        answer = await page.api.get(
            query.api_path(),
            params={
                **query.api_params(),
                "limit": PAGE_SIZE,
                "offset": (number - 1) * PAGE_SIZE,
                "total": "true",
            },
            reason=query.reason or None,
        )
        _problem(answer, page)
        if answer.status == 422:
            errors = {
                FORM_FIELDS.get(field.split(".")[-1], "name"): reasons
                for field, reasons in answer.field_errors().items()
            }
        elif not answer.ok:
            raise PageProblem(answer.status, N_("The search failed"))
        else:
            result = dict(answer.body)
    elif query.asked:
        errors = {"reason": [page.t("An auditor says why they search (the read log keeps it).")]}
    total = int(result["total"]) if result else 0
    pages = max(1, math.ceil(total / PAGE_SIZE))
    template = (
        "search/results.html" if page.request.headers.get("hx-request") else "search/page.html"
    )
    return page.render(
        template,
        query=query,
        result=result,
        total=total,
        number=number,
        pages=pages,
        errors=errors,
        labels=LABELS,
        idp_statuses=registry.IDP_STATUSES,
        housing_conditions=registry.HOUSING_CONDITIONS,
        settlements=sorted(settlements().values(), key=lambda s: (s.district_code, s.code)),
    )


PERSON_COLUMNS = (
    ("fin", N_("FIN")),
    ("last_name", N_("Last name")),
    ("first_name", N_("First name")),
    ("patronymic", N_("Patronymic")),
    ("birth_date", N_("Birth date")),
    ("sex", N_("Sex")),
    ("idp_status", N_("IDP status")),
    ("origin_settlement_code", N_("Origin settlement")),
    ("household_id", N_("Household")),
)
HOUSEHOLD_COLUMNS = (
    ("household_id", N_("Household")),
    ("head_fin", N_("Head's FIN")),
    ("head_last_name", N_("Head's last name")),
    ("head_first_name", N_("Head's first name")),
    ("origin_settlement_code", N_("Origin settlement")),
    ("housing_condition", N_("Housing condition")),
    ("vulnerabilities", N_("Vulnerabilities")),
    ("member_count", N_("Members")),
    ("registered_at", N_("Registered on")),
)


FORMULA = re.compile(r"(^|[;,\t\r\n]\s*)([=+\-@\t\r])")


def csv_cell(value: Any) -> str:
    """A value as a CSV cell a spreadsheet shows and never runs: text that starts like a
    formula (=, +, -, @, tab, carriage return) is prefixed with an apostrophe (OWASP)."""
    if value is None:
        return ""
    if isinstance(value, list):
        value = "; ".join(str(v) for v in value)
    text = str(value)
    # Also after a separator: a spreadsheet reading the file with ";" as its separator (the
    # Azerbaijani and most European settings) splits a cell there.
    return FORMULA.sub(r"\1'\2", text)


@router.get("/console/search.csv")
async def export(page: AnyRole) -> Response:
    query = Query.of(page.request)
    if page.actor.role == "auditor" and not query.reason:
        return secure(RedirectResponse("/console/search" + query.link(), 303))
    columns = PERSON_COLUMNS if query.kind == "persons" else HOUSEHOLD_COLUMNS
    first = await page.api.get(
        query.api_path(),
        params={**query.api_params(), "limit": EXPORT_PAGE, "offset": 0, "total": "true"},
        reason=query.reason or None,
    )
    _problem(first, page)
    if not first.ok:
        raise PageProblem(first.status, N_("The search failed"))
    total = int(first.body["total"])
    if total > EXPORT_LIMIT:
        raise PageProblem(
            413,
            N_("Too many rows to export"),
            N_("Narrow the search to at most 20,000 rows."),
        )

    async def rows() -> AsyncIterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([page.t(label) for _, label in columns])
        yield "\ufeff" + out.getvalue()  # the BOM: spreadsheets then read UTF-8 (ə, ş, ı)
        answer: Answer = first
        offset = 0
        while True:
            out = io.StringIO()
            writer = csv.writer(out)
            for item in answer.body["items"]:
                writer.writerow([csv_cell(item.get(key)) for key, _ in columns])
            yield out.getvalue()
            offset += EXPORT_PAGE
            if answer.body.get("next_offset") is None or offset >= total:
                return
            answer = await page.api.get(
                query.api_path(),
                params={**query.api_params(), "limit": EXPORT_PAGE, "offset": offset},
                reason=query.reason or None,
            )
            if not answer.ok:
                return

    response = StreamingResponse(rows(), media_type="text/csv; charset=utf-8")
    response.headers["content-disposition"] = f'attachment; filename="{query.kind}.csv"'
    response.headers["cache-control"] = "no-store"
    return secure(response)
