"""The eligibility rule engine: facts about a household, rule set documents, and the
determination that turns one into a decision.

The criteria are data: a rule set document names its legal basis and holds expressions over a
documented, versioned set of *facts* (``reference/facts.v1.json``). The expressions are
written in an existing expression language (CEL), which this module reaches only through the
small :class:`ExpressionLanguage` port, so the domain stays pure. :meth:`RuleEngine.determine`
depends on nothing but the facts it is given: run again on recorded facts, it gives the same
determination.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from domain import text as human_text
from domain.base import DomainError, FieldError, ValidationFailed

ENGINE_VERSION = "reintegration-eligibility/1"
FACTS_SCHEMA_VERSION = 1
RESULTS = ("eligible", "ineligible", "needs_review")
OUTCOMES = ("met", "not_met", "unknown")
CRITERION_KINDS = ("eligibility", "exclusion", "priority")
CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
EXPECTATIONS = ("result", "priority_group", "rooms", "score")


class ExpressionError(DomainError):
    """An expression does not compile, or cannot be evaluated on the facts given."""


# --- facts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    name: str
    type: str
    nullable: bool
    description_en: str
    description_az: str
    sample: Any


def _fact_schema() -> tuple[Fact, ...]:
    from importlib.resources import files

    text = (
        files("domain").joinpath(f"reference/facts.v{FACTS_SCHEMA_VERSION}.json").read_text("utf-8")
    )
    return tuple(Fact(**f) for f in json.loads(text)["facts"])


FACT_SCHEMA = _fact_schema()
FACTS: dict[str, Fact] = {f.name: f for f in FACT_SCHEMA}


def sample_facts() -> dict[str, Any]:
    """The documented sample household: every fact known. Rule set examples give only the facts
    in which they differ from it."""
    return {f.name: f.sample for f in FACT_SCHEMA}


# One encoder for every call: ``json.dumps`` with these options builds a new one each time, and
# a determination writes a dozen small documents (each criterion's inputs, the facts' hash).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(data: Any) -> str:
    return _CANONICAL.encode(data)


def content_hash(data: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()


def household_facts(
    household: Any,
    persons: list[Any],
    survey_answers: Mapping[str, Any] | None,
    origin_in_return_area: bool,
    on: date,
) -> dict[str, Any]:
    """The facts of schema version 1 for a household (registry.Household and its Persons) on
    a date, with the answers of its latest completed pre-return survey (None: no survey)."""
    from domain.registry import COLLECTIVE_CENTRES

    living = [p for p in persons if p.date_of_death is None or p.date_of_death > on]
    relationship = {m.person_id: m.relationship for m in household.members}

    def age(p: Any) -> int:
        born: date = p.birth_date
        return on.year - born.year - ((on.month, on.day) < (born.month, born.day))

    head = next((p for p in living if p.id == household.head_person_id), None)
    condition = household.housing_condition
    vulnerabilities = sorted({v for v, _ in household.vulnerabilities})
    circumstances = household.circumstances or {}
    return {
        "assessment_date": on.isoformat(),
        "household_size": len(living),
        "member_ages": [age(p) for p in living],
        "members": [
            {
                "age": age(p),
                "sex": p.sex,
                "relationship": relationship.get(p.id, "other_relative"),
                "idp_status": p.idp_status,
            }
            for p in living
        ],
        "head_age": age(head) if head else 0,
        "head_idp_status": head.idp_status if head else "none",
        "idp_members_active": sum(1 for p in living if p.idp_status == "active"),
        "origin_settlement_code": household.origin_settlement_code,
        "origin_district_code": household.origin_settlement_code.split("-")[0],
        "origin_in_return_area": origin_in_return_area,
        "housing_condition": condition,
        "in_collective_centre": None if condition is None else condition in COLLECTIVE_CENTRES,
        "in_others_flat": None if condition is None else condition == "others_flat",
        "vulnerabilities": vulnerabilities,
        "martyr_family": "martyr_family" in vulnerabilities,
        "war_participant": "war_participant" in vulnerabilities,
        "survey_completed": survey_answers is not None,
        "intention_to_return": (survey_answers or {}).get("intention"),
        "survey": dict(survey_answers or {}),
        "living_at_registered_address": circumstances.get("living_at_registered_address"),
        "private_housing_after_displacement": circumstances.get(
            "private_housing_after_displacement"
        ),
        "sham_marriage_or_divorce": circumstances.get("sham_marriage_or_divorce"),
        "registered_on": household.created_on.date().isoformat(),
    }


# --- the expression language port -------------------------------------------------------


class CompiledExpression(Protocol):
    @property
    def facts_used(self) -> frozenset[str]:
        """The top-level names the expression reads (not those bound inside macros)."""

    def evaluate(self, facts: Mapping[str, Any]) -> Any:
        """The value on these facts; ExpressionError if it cannot be computed."""


class ExpressionLanguage(Protocol):
    name: str  # with the implementing package's version: part of the engine version

    def compile(self, source: str) -> CompiledExpression:
        """The compiled expression; ExpressionError if it does not parse."""


# --- rule set documents -----------------------------------------------------------------


@dataclass(frozen=True)
class Criterion:
    id: str
    description_az: str
    description_en: str
    expression: str


@dataclass(frozen=True)
class TieBreaker:
    id: str
    description_az: str
    description_en: str
    expression: str
    order: str  # asc or desc


@dataclass(frozen=True)
class RoomRow:
    min_size: int
    max_size: int | None
    rooms: int


@dataclass(frozen=True)
class Example:
    """A case shipped with the rule set: facts that differ from the sample household, and what
    the decision must be. Only the expectations given are checked (result is always given)."""

    name: str
    facts: dict[str, Any]
    expect: dict[str, Any]


@dataclass(frozen=True)
class RuleSetDocument:
    code: str
    version: int
    title_az: str
    title_en: str
    legal_basis: dict[str, Any]
    effective_from: date
    facts_schema_version: int
    eligibility: tuple[Criterion, ...]
    exclusions: tuple[Criterion, ...]
    priority_groups: tuple[Criterion, ...]
    score: str | None
    tie_breakers: tuple[TieBreaker, ...]
    room_entitlement: tuple[RoomRow, ...]
    examples: tuple[Example, ...]
    source: dict[str, Any] = field(compare=False, repr=False)
    offer_deadline_days: int = 5  # a family that does not accept an offer within it loses it

    @property
    def hash(self) -> str:
        return content_hash(self.source)

    def criterion(self, criterion_id: str) -> Criterion | None:
        for c in (*self.eligibility, *self.exclusions, *self.priority_groups):
            if c.id == criterion_id:
                return c
        return None

    def rooms_for(self, household_size: int) -> int | None:
        for row in self.room_entitlement:
            if household_size >= row.min_size and (
                row.max_size is None or household_size <= row.max_size
            ):
                return row.rooms
        return None


def parse_document(data: Any) -> RuleSetDocument:
    """A rule set document from its JSON/YAML form; every structural error names its field."""
    errors: list[FieldError] = []
    if not isinstance(data, dict):
        raise ValidationFailed([FieldError("body", "a rule set document is a mapping")])
    # Every string in it is text a reader downstream must hold (the document is stored and
    # projected as JSON): checked and normalised first, the way every command's text is.
    data = human_text.clean_tree(errors, "", data)
    if errors:
        raise ValidationFailed(errors)

    def text(key: str, where: Mapping[str, Any], at: str) -> str:
        value = where.get(key)
        if not isinstance(value, str) or not value.strip():
            errors.append(FieldError(f"{at}{key}", "required text"))
            return ""
        return value.strip()

    code = text("id", data, "")
    if code and not CODE_PATTERN.match(code):
        errors.append(FieldError("id", "lower-case letters, digits and -, 2 to 63 characters"))
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= 10_000:
        errors.append(FieldError("version", "a whole number, 1 to 10000"))
        version = 0
    title_az, title_en = text("title_az", data, ""), text("title_en", data, "")
    basis = data.get("legal_basis")
    if not isinstance(basis, dict):
        errors.append(FieldError("legal_basis", "act, number, date and articles"))
        basis = {}
    else:
        for key in ("act", "number"):
            text(key, basis, "legal_basis.")
        if _date(basis.get("date")) is None:
            errors.append(FieldError("legal_basis.date", "a date, YYYY-MM-DD"))
        articles = basis.get("articles")
        if (
            not isinstance(articles, list)
            or not articles
            or not all(isinstance(a, str) and a.strip() for a in articles)
        ):
            errors.append(FieldError("legal_basis.articles", "a list of the articles applied"))
    effective_from = _date(data.get("effective_from"))
    if effective_from is None:
        errors.append(FieldError("effective_from", "a date, YYYY-MM-DD"))
    schema_version = data.get("facts_schema_version")
    if schema_version != FACTS_SCHEMA_VERSION:
        errors.append(
            FieldError("facts_schema_version", f"this engine knows version {FACTS_SCHEMA_VERSION}")
        )

    seen: set[str] = set()

    def criteria(key: str, required: bool) -> tuple[Criterion, ...]:
        items = data.get(key, [])
        if not isinstance(items, list) or (required and not items):
            errors.append(
                FieldError(key, "a list of criteria" + (", at least one" if required else ""))
            )
            return ()
        out = []
        for i, item in enumerate(items):
            at = f"{key}[{i}]."
            if not isinstance(item, dict):
                errors.append(
                    FieldError(f"{key}[{i}]", "id, description_az, description_en, expression")
                )
                continue
            cid = text("id", item, at)
            if cid in seen:
                errors.append(FieldError(f"{at}id", f"{cid!r} is used twice"))
            seen.add(cid)
            out.append(
                Criterion(
                    cid,
                    text("description_az", item, at),
                    text("description_en", item, at),
                    text("expression", item, at),
                )
            )
        return tuple(out)

    eligibility = criteria("eligibility_criteria", True)
    exclusions = criteria("exclusion_criteria", False)
    groups = criteria("priority_groups", True)
    score = data.get("score")
    if score is not None and (not isinstance(score, str) or not score.strip()):
        errors.append(FieldError("score", "an expression giving a number, or absent"))
        score = None
    tie_breakers = []
    for i, item in enumerate(data.get("tie_breakers") or []):
        at = f"tie_breakers[{i}]."
        if not isinstance(item, dict):
            errors.append(FieldError(f"tie_breakers[{i}]", "id, descriptions, expression, order"))
            continue
        order = item.get("order", "asc")
        if order not in ("asc", "desc"):
            errors.append(FieldError(f"{at}order", "asc or desc"))
        tie_breakers.append(
            TieBreaker(
                text("id", item, at),
                text("description_az", item, at),
                text("description_en", item, at),
                text("expression", item, at),
                str(order),
            )
        )
    rooms = _room_table(data.get("room_entitlement"), errors)
    deadline = data.get("offer_deadline_days", 5)
    if not isinstance(deadline, int) or isinstance(deadline, bool) or not 1 <= deadline <= 60:
        errors.append(FieldError("offer_deadline_days", "whole days, 1 to 60"))
        deadline = 5
    examples = []
    for i, item in enumerate(data.get("examples") or []):
        at = f"examples[{i}]."
        if not isinstance(item, dict) or not isinstance(item.get("expect"), dict):
            errors.append(FieldError(f"examples[{i}]", "name, facts and expect"))
            continue
        facts = item.get("facts") or {}
        unknown = sorted(set(facts) - set(FACTS)) if isinstance(facts, dict) else ["?"]
        if unknown:
            errors.append(FieldError(f"{at}facts", f"unknown facts: {', '.join(unknown)}"))
            continue
        expect = item["expect"]
        if expect.get("result") not in RESULTS:
            errors.append(FieldError(f"{at}expect.result", f"one of {', '.join(RESULTS)}"))
        unexpected = sorted(set(expect) - set(EXPECTATIONS))
        if unexpected:
            errors.append(
                FieldError(f"{at}expect", f"unknown expectations: {', '.join(unexpected)}")
            )
        examples.append(Example(text("name", item, at), dict(facts), dict(expect)))
    if data.get("examples") is not None and not isinstance(data.get("examples"), list):
        errors.append(FieldError("examples", "a list"))
    if errors or effective_from is None or not isinstance(version, int):
        raise ValidationFailed(errors or [FieldError("body", "malformed rule set")])
    return RuleSetDocument(
        code=code,
        version=version,
        title_az=title_az,
        title_en=title_en,
        legal_basis=dict(basis),
        effective_from=effective_from,
        facts_schema_version=FACTS_SCHEMA_VERSION,
        eligibility=eligibility,
        exclusions=exclusions,
        priority_groups=groups,
        score=score.strip() if isinstance(score, str) else None,
        tie_breakers=tuple(tie_breakers),
        room_entitlement=rooms,
        examples=tuple(examples),
        source=json.loads(canonical_json(data)),
        offer_deadline_days=deadline,
    )


def _date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def _room_table(rows: Any, errors: list[FieldError]) -> tuple[RoomRow, ...]:
    """Rows from one person up, contiguous, the last open-ended: every size has one entry."""
    if not isinstance(rows, list) or not rows:
        errors.append(FieldError("room_entitlement", "rows of min_size, max_size, rooms"))
        return ()
    out: list[RoomRow] = []
    expected_min = 1
    for i, row in enumerate(rows):
        at = f"room_entitlement[{i}]"
        try:
            low, high, rooms = row["min_size"], row.get("max_size"), row["rooms"]
        except (KeyError, TypeError, AttributeError):
            errors.append(FieldError(at, "min_size, max_size (null for open), rooms"))
            return ()
        if isinstance(low, bool) or low != expected_min:
            errors.append(
                FieldError(f"{at}.min_size", f"must be {expected_min}: no gap or overlap")
            )
            return ()
        if not isinstance(rooms, int) or isinstance(rooms, bool) or not 1 <= rooms <= 12:
            errors.append(FieldError(f"{at}.rooms", "a whole number, 1 to 12"))
        last = i == len(rows) - 1
        if high is None and not last:
            errors.append(FieldError(f"{at}.max_size", "only the last row is open-ended"))
            return ()
        if high is not None and (not isinstance(high, int) or isinstance(high, bool) or high < low):
            errors.append(FieldError(f"{at}.max_size", "at least min_size"))
            return ()
        if last and high is not None:
            errors.append(FieldError(f"{at}.max_size", "the last row is open-ended (null)"))
        out.append(RoomRow(low, high, rooms))
        expected_min = (high or low) + 1
    return tuple(out)
