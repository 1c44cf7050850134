"""Eligibility over HTTP: rule sets, determinations, overrides, appeals, explanations, counts,
and the auditor's re-run of a decision."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, Field

from api.http.boundary import Utf8JsonRoute
from api.http.dependencies import Reader, Reads, Supervisor, Use, Views, Writer
from api.http.models import (
    RULE_SET_PATTERN,
    Line,
    Paragraph,
    RuleSetPath,
    SettlementCode,
    SettlementQuery,
    Strict,
    VersionPath,
)
from api.http.scopes import query_districts
from api.presenters import decision_view, rule_set_view
from domain import eligibility as el
from domain import rules
from domain.base import FieldError, NotFound, ValidationFailed
from domain.engine import CriterionOutcome
from domain.explanation import explain
from projections.queries import eligibility as queries

router = APIRouter(tags=["eligibility"], route_class=Utf8JsonRoute)
Language = Annotated[str, Query(pattern="^(az|en)$")]

DOCUMENT_EXAMPLE = {"id": "great-return-housing", "version": 2, "...": "see the shipped rule set"}
RuleSetId = Annotated[str, Field(pattern=RULE_SET_PATTERN, description="Rule set id")]
Result = Literal[rules.RESULTS]  # type: ignore[valid-type]
PriorityGroup = Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class ReviseIn(BaseModel):
    model_config = Strict
    document: dict[str, Any] = Field(description="The whole revised rule set document")
    reason: Line = Field(description="What the revision changes")


class ApproveIn(BaseModel):
    model_config = Strict
    act_reference: Line = Field(
        description="The act adopting the rule set: issuer, number, date",
        examples=["Committee decision No. 14, 2026-01-15"],
    )
    effective_from: date | None = Field(
        default=None, description="First day in force; default: the document's effective_from"
    )


class DetermineIn(BaseModel):
    model_config = Strict
    rule_set: RuleSetId | None = Field(default=None, description="Default: the configured one")


class BatchIn(BaseModel):
    model_config = Strict
    settlement_code: SettlementCode = Field(
        description="Every household originating from this settlement"
    )
    rule_set: RuleSetId | None = None


class OverrideIn(BaseModel):
    model_config = Strict
    result: Result
    priority_group: PriorityGroup | None = Field(default=None, description="Required when eligible")
    rooms_entitled: int | None = Field(default=None, ge=1, le=el.MAX_ROOMS_ENTITLED)
    justification: Paragraph = Field(description="Why, in at least a sentence")


class AppealIn(BaseModel):
    model_config = Strict
    grounds: Paragraph = Field(description="The household's grounds, in at least a sentence")


class AppealDecisionIn(BaseModel):
    model_config = Strict
    outcome: Literal[el.APPEAL_OUTCOMES]  # type: ignore[valid-type]
    reasons: Paragraph = Field(description="Why, in at least a sentence")
    result: Result | None = Field(default=None, description="The result after an upheld appeal")
    priority_group: PriorityGroup | None = None


def with_explanation(views: Views, row: dict[str, Any], lang: str) -> dict[str, Any]:
    rule_set = views(queries.get_rule_set, row["rule_set_code"], row["rule_set_version"])
    document = rules.parse_document(rule_set["document"]) if rule_set else None
    outcomes = [CriterionOutcome(**o) for o in row["outcomes"]]
    lines = (
        explain(
            document,
            outcomes,
            row["effective_result"],
            row["effective_priority_group"],
            row["effective_rooms"],
            lang,
        )
        if document
        else []
    )
    return {**row, "explanation": lines}


# --- rule sets ---------------------------------------------------------------------------


@router.post("/api/v1/rule-sets", status_code=201)
def draft_rule_set(
    document: Annotated[dict[str, Any], Body(examples=[DOCUMENT_EXAMPLE])], _: Writer, use: Use
) -> dict[str, Any]:
    """Draft a rule set version from its document (JSON; the CLI also reads YAML). Its
    expressions must compile over known facts; failing examples are reported and block
    approval."""
    rule_set, validation = use.eligibility.draft(document)
    return rule_set_view(rule_set, validation)


@router.put("/api/v1/rule-sets/{code}/versions/{version}")
def revise_rule_set(
    code: RuleSetPath, version: VersionPath, body: ReviseIn, _: Writer, use: Use
) -> dict[str, Any]:
    """Revise a draft (an approved version never changes: draft a new version)."""
    if body.document.get("id") != code or body.document.get("version") != version:
        raise ValidationFailed([FieldError("document.id", "must match the path's id and version")])
    rule_set, validation = use.eligibility.revise(body.document, body.reason)
    return rule_set_view(rule_set, validation)


@router.post("/api/v1/rule-sets/{code}/versions/{version}/approval")
def approve_rule_set(
    code: RuleSetPath, version: VersionPath, body: ApproveIn, _: Supervisor, use: Use
) -> dict[str, Any]:
    """A supervisor approves a draft whose examples pass, with the act adopting it."""
    rule_set = use.eligibility.approve(code, version, body.act_reference, body.effective_from)
    return rule_set_view(rule_set)


@router.get("/api/v1/rule-sets")
def list_rule_sets(
    _: Reader, views: Views, id: Annotated[str | None, Query(pattern=RULE_SET_PATTERN)] = None
) -> list[dict[str, Any]]:
    return views(queries.list_rule_sets, id)


@router.get("/api/v1/rule-sets/{code}/versions/{version}")
def get_rule_set(
    code: RuleSetPath, version: VersionPath, _: Reader, views: Views
) -> dict[str, Any]:
    row = views(queries.get_rule_set, code, version)
    if row is None:
        raise NotFound("rule set", f"{code} version {version}")
    return row


@router.get("/api/v1/eligibility/facts-schema")
def facts_schema(_: Reader) -> dict[str, Any]:
    """The facts an expression may read (version 1), with descriptions and the sample."""
    return {
        "facts_schema_version": rules.FACTS_SCHEMA_VERSION,
        "facts": [f.__dict__ for f in rules.FACT_SCHEMA],
    }


# --- determinations ----------------------------------------------------------------------


@router.post("/api/v1/households/{household_id}/eligibility")
def determine(
    household_id: UUID, _: Writer, use: Use, body: DetermineIn | None = None
) -> dict[str, Any]:
    """Determine under the rule set in force today. If the current decision already used
    that version and the same facts, nothing new is recorded (status "unchanged")."""
    outcome = use.eligibility.determine(household_id, body.rule_set if body else None)
    decision = outcome.decision or use.eligibility.current_decision(household_id)
    return {"status": outcome.status, **(decision_view(decision) if decision else {})}


@router.post("/api/v1/eligibility/determinations")
def determine_settlement(body: BatchIn, _: Writer, use: Use) -> dict[str, Any]:
    """Determine every household originating from a settlement (large batches: the CLI's
    `eligibility determine --settlement` shows progress)."""
    eligibility = use.eligibility
    households = eligibility.households_in(body.settlement_code)
    return eligibility.determine_many(households, body.rule_set).as_dict()


@router.get("/api/v1/households/{household_id}/eligibility")
def current(
    household_id: UUID, _: Reader, views: Views, reads: Reads, lang: Language = "en"
) -> dict[str, Any]:
    """The current decision with reasons: each criterion, the fact values it read, and
    whether it passed, in plain words (lang=az or en)."""
    row = views(queries.current_decision, household_id)
    if row is None:
        raise NotFound("eligibility decision of household", household_id)
    reads.record("read eligibility decision", [household_id])
    return with_explanation(views, row, lang)


@router.get("/api/v1/households/{household_id}/eligibility/history")
def history(household_id: UUID, _: Reader, views: Views, reads: Reads) -> list[dict[str, Any]]:
    rows = views(queries.decision_history, household_id)
    reads.record("read eligibility history", [household_id])
    return rows


@router.get("/api/v1/eligibility/decisions/{decision_id}")
def get_decision(
    decision_id: UUID, _: Reader, views: Views, reads: Reads, lang: Language = "en"
) -> dict[str, Any]:
    row = views(queries.get_decision, decision_id)
    if row is None:
        raise NotFound("eligibility decision", decision_id)
    reads.record("read eligibility decision", [row["household_id"]])
    return with_explanation(views, row, lang)


@router.get("/api/v1/eligibility/statistics")
def statistics(
    actor: Reader, views: Views, settlement_code: SettlementQuery = None
) -> list[dict[str, Any]]:
    """Households per settlement by current result and priority group."""
    return views(queries.statistics, settlement_code, query_districts(actor))


# --- overrides and appeals ---------------------------------------------------------------


@router.post("/api/v1/eligibility/decisions/{decision_id}/override")
def override(decision_id: UUID, body: OverrideIn, _: Supervisor, use: Use) -> dict[str, Any]:
    """A supervisor overrides the current decision with a written justification."""
    decision = use.eligibility.override(
        decision_id, body.result, body.priority_group, body.rooms_entitled, body.justification
    )
    return decision_view(decision)


@router.post("/api/v1/eligibility/decisions/{decision_id}/appeals", status_code=201)
def appeal(decision_id: UUID, body: AppealIn, _: Writer, use: Use) -> dict[str, Any]:
    """Lodge the household's appeal against its current decision."""
    appeal_id = use.eligibility.lodge_appeal(decision_id, body.grounds)
    return {"appeal_id": appeal_id, "decision_id": decision_id}


@router.post("/api/v1/eligibility/decisions/{decision_id}/appeals/{appeal_id}/decision")
def decide_appeal(
    decision_id: UUID, appeal_id: UUID, body: AppealDecisionIn, _: Supervisor, use: Use
) -> dict[str, Any]:
    """A supervisor who did not make the decision decides the appeal."""
    decision = use.eligibility.decide_appeal(
        decision_id, appeal_id, body.outcome, body.reasons, body.result, body.priority_group
    )
    return decision_view(decision)
