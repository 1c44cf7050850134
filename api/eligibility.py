"""Eligibility endpoints: rule sets, determinations, overrides, appeals, explanations, counts,
and the auditor's re-run. Thin: parse, call the service, map errors (problems.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import Body, FastAPI, Query, Request
from pydantic import BaseModel, Field

from api.http_models import (
    RULE_SET_PATTERN,
    Line,
    Paragraph,
    RuleSetPath,
    SettlementCode,
    SettlementQuery,
    Strict,
    VersionPath,
)
from domain import eligibility as el
from domain import rules
from domain.base import Actor, NotFound
from infra.bootstrap import Container
from infra.eligibility import Eligibility
from projections import eligibility as views

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


def rule_set_view(
    rule_set: el.RuleSet, validation: rules.Validation | None = None
) -> dict[str, Any]:
    failures = validation.example_failures if validation else rule_set.example_failures
    return {
        "rule_set_id": rule_set.id,
        "id": rule_set.code,
        "version": rule_set.rule_set_version,
        "status": rule_set.status,
        "document_hash": rule_set.document_hash,
        "examples_pass": not failures,
        "example_failures": list(failures),
        "act_reference": rule_set.act_reference,
        "effective_from": rule_set.effective_from,
        "aggregate_version": rule_set.version,
    }


def decision_view(decision: el.EligibilityDecision) -> dict[str, Any]:
    return {
        "decision_id": decision.id,
        "household_id": decision.household_id,
        "sequence": decision.sequence,
        "supersedes_decision_id": decision.supersedes_decision_id,
        "rule_set": {"id": decision.rule_set_code, "version": decision.rule_set_version},
        "result": decision.effective_result,
        "priority_group": decision.effective_priority_group,
        "rooms_entitled": decision.effective_rooms,
        "determined": {
            "result": decision.result,
            "priority_group": decision.priority_group,
            "priority_rank": decision.priority_rank,
            "score": decision.score,
            "rooms_entitled": decision.rooms_entitled,
        },
        "facts_hash": decision.facts_hash,
        "engine_version": decision.engine_version,
    }


def install(
    app: FastAPI,
    container: Container,
    require: Callable[..., Any],
    command: Callable[[Request, Actor], Any],
    audited_read: Callable[[Request, Actor, str, list[UUID]], None],
    write_roles: tuple[str, ...],
    read_roles: tuple[str, ...],
) -> None:
    def service() -> Eligibility:
        eligibility: Eligibility = container.eligibility  # built on first use
        return eligibility

    supervisor = ("supervisor",)
    audit_roles = ("auditor", "supervisor")

    # --- rule sets -------------------------------------------------------------------------

    @app.post("/api/v1/rule-sets", status_code=201, tags=["eligibility"])
    def draft_rule_set(
        request: Request,
        document: Annotated[dict[str, Any], Body(examples=[DOCUMENT_EXAMPLE])],
        actor: Actor = require(*write_roles),
    ) -> dict[str, Any]:
        """Draft a rule set version from its document (JSON; the CLI also reads YAML). Its
        expressions must compile over known facts; failing examples are reported and block
        approval."""
        with command(request, actor):
            rule_set, validation = service().draft(document)
        return rule_set_view(rule_set, validation)

    @app.put("/api/v1/rule-sets/{code}/versions/{version}", tags=["eligibility"])
    def revise_rule_set(
        code: RuleSetPath,
        version: VersionPath,
        body: ReviseIn,
        request: Request,
        actor: Actor = require(*write_roles),
    ) -> dict[str, Any]:
        """Revise a draft (an approved version never changes: draft a new version)."""
        if body.document.get("id") != code or body.document.get("version") != version:
            from domain.base import FieldError, ValidationFailed

            raise ValidationFailed(
                [FieldError("document.id", "must match the path's id and version")]
            )
        with command(request, actor):
            rule_set, validation = service().revise(body.document, body.reason)
        return rule_set_view(rule_set, validation)

    @app.post("/api/v1/rule-sets/{code}/versions/{version}/approval", tags=["eligibility"])
    def approve_rule_set(
        code: RuleSetPath,
        version: VersionPath,
        body: ApproveIn,
        request: Request,
        actor: Actor = require(*supervisor),
    ) -> dict[str, Any]:
        """A supervisor approves a draft whose examples pass, with the act adopting it."""
        with command(request, actor):
            rule_set = service().approve(code, version, body.act_reference, body.effective_from)
        return rule_set_view(rule_set)

    @app.get("/api/v1/rule-sets", tags=["eligibility"])
    def list_rule_sets(
        id: Annotated[str | None, Query(pattern=RULE_SET_PATTERN)] = None,
        actor: Actor = require(*read_roles),
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = container.query(views.list_rule_sets, id)
        return rows

    @app.get("/api/v1/rule-sets/{code}/versions/{version}", tags=["eligibility"])
    def get_rule_set(
        code: RuleSetPath, version: VersionPath, actor: Actor = require(*read_roles)
    ) -> dict[str, Any]:
        row: dict[str, Any] | None = container.query(views.get_rule_set, code, version)
        if row is None:
            raise NotFound("rule set", f"{code} version {version}")
        return row

    @app.get("/api/v1/eligibility/facts-schema", tags=["eligibility"])
    def facts_schema(actor: Actor = require(*read_roles)) -> dict[str, Any]:
        """The facts an expression may read (version 1), with descriptions and the sample."""
        return {
            "facts_schema_version": rules.FACTS_SCHEMA_VERSION,
            "facts": [f.__dict__ for f in rules.FACT_SCHEMA],
        }

    # --- determinations --------------------------------------------------------------------

    @app.post("/api/v1/households/{household_id}/eligibility", tags=["eligibility"])
    def determine(
        household_id: UUID,
        request: Request,
        body: DetermineIn | None = None,
        actor: Actor = require(*write_roles),
    ) -> dict[str, Any]:
        """Determine under the rule set in force today. If the current decision already used
        that version and the same facts, nothing new is recorded (status "unchanged")."""
        with command(request, actor):
            outcome = service().determine(household_id, body.rule_set if body else None)
        decision = outcome.decision or container.application.current_decision(household_id)
        return {"status": outcome.status, **(decision_view(decision) if decision else {})}

    @app.post("/api/v1/eligibility/determinations", tags=["eligibility"])
    def determine_settlement(
        body: BatchIn, request: Request, actor: Actor = require(*write_roles)
    ) -> dict[str, Any]:
        """Determine every household originating from a settlement (large batches: the CLI's
        `eligibility determine --settlement` shows progress)."""
        with command(request, actor):
            summary = service().determine_many(
                service().households_in(body.settlement_code), body.rule_set
            )
        return summary.as_dict()

    @app.get("/api/v1/households/{household_id}/eligibility", tags=["eligibility"])
    def current(
        household_id: UUID,
        request: Request,
        lang: Annotated[str, Query(pattern="^(az|en)$")] = "en",
        actor: Actor = require(*read_roles),
    ) -> dict[str, Any]:
        """The current decision with reasons: each criterion, the fact values it read, and
        whether it passed, in plain words (lang=az or en)."""
        row = container.query(views.current_decision, household_id)
        if row is None:
            raise NotFound("eligibility decision of household", household_id)
        audited_read(request, actor, "read eligibility decision", [household_id])
        return with_explanation(row, lang)

    @app.get("/api/v1/households/{household_id}/eligibility/history", tags=["eligibility"])
    def history(
        household_id: UUID, request: Request, actor: Actor = require(*read_roles)
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = container.query(views.decision_history, household_id)
        audited_read(request, actor, "read eligibility history", [household_id])
        return rows

    @app.get("/api/v1/eligibility/decisions/{decision_id}", tags=["eligibility"])
    def get_decision(
        decision_id: UUID,
        request: Request,
        lang: Annotated[str, Query(pattern="^(az|en)$")] = "en",
        actor: Actor = require(*read_roles),
    ) -> dict[str, Any]:
        row = container.query(views.get_decision, decision_id)
        if row is None:
            raise NotFound("eligibility decision", decision_id)
        audited_read(request, actor, "read eligibility decision", [row["household_id"]])
        return with_explanation(row, lang)

    def with_explanation(row: dict[str, Any], lang: str) -> dict[str, Any]:
        rule_set = container.query(
            views.get_rule_set, row["rule_set_code"], row["rule_set_version"]
        )
        document = rules.parse_document(rule_set["document"]) if rule_set else None
        outcomes = [rules.CriterionOutcome(**o) for o in row["outcomes"]]
        lines = (
            rules.explain(
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

    @app.get("/api/v1/eligibility/statistics", tags=["eligibility"])
    def statistics(
        settlement_code: SettlementQuery = None, actor: Actor = require(*read_roles)
    ) -> list[dict[str, Any]]:
        """Households per settlement by current result and priority group."""
        rows: list[dict[str, Any]] = container.query(views.statistics, settlement_code)
        return rows

    # --- overrides and appeals -------------------------------------------------------------

    @app.post("/api/v1/eligibility/decisions/{decision_id}/override", tags=["eligibility"])
    def override(
        decision_id: UUID, body: OverrideIn, request: Request, actor: Actor = require(*supervisor)
    ) -> dict[str, Any]:
        """A supervisor overrides the current decision with a written justification."""
        with command(request, actor):
            decision = container.application.override_decision(
                decision_id,
                body.result,
                body.priority_group,
                body.rooms_entitled,
                body.justification,
            )
        return decision_view(decision)

    @app.post(
        "/api/v1/eligibility/decisions/{decision_id}/appeals", status_code=201, tags=["eligibility"]
    )
    def appeal(
        decision_id: UUID, body: AppealIn, request: Request, actor: Actor = require(*write_roles)
    ) -> dict[str, Any]:
        """Lodge the household's appeal against its current decision."""
        with command(request, actor):
            appeal_id = container.application.lodge_appeal(decision_id, body.grounds)
        return {"appeal_id": appeal_id, "decision_id": decision_id}

    @app.post(
        "/api/v1/eligibility/decisions/{decision_id}/appeals/{appeal_id}/decision",
        tags=["eligibility"],
    )
    def decide_appeal(
        decision_id: UUID,
        appeal_id: UUID,
        body: AppealDecisionIn,
        request: Request,
        actor: Actor = require(*supervisor),
    ) -> dict[str, Any]:
        """A supervisor who did not make the decision decides the appeal."""
        with command(request, actor):
            decision = container.application.decide_appeal(
                decision_id, appeal_id, body.outcome, body.reasons, body.result, body.priority_group
            )
        return decision_view(decision)

    # --- audit -----------------------------------------------------------------------------

    @app.get("/api/v1/audit/decisions/{decision_id}/rerun", tags=["audit"])
    def rerun(
        decision_id: UUID, request: Request, actor: Actor = require(*audit_roles)
    ) -> dict[str, Any]:
        """Re-run a recorded decision on its recorded facts and rule set version."""
        result = service().rerun(decision_id)
        audited_read(request, actor, "re-run eligibility decision", [result.household_id])
        return result.as_dict()
