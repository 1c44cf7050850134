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
import math
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


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


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


# --- the engine -------------------------------------------------------------------------


@dataclass(frozen=True)
class CriterionOutcome:
    criterion_id: str
    kind: str  # eligibility, exclusion or priority
    outcome: str  # met, not_met or unknown
    values: str  # JSON: the facts the expression read, with their values
    detail: str | None  # why unknown


@dataclass(frozen=True)
class Determination:
    outcomes: tuple[CriterionOutcome, ...]
    result: str
    priority_group: str | None
    priority_rank: int | None
    score: float | None
    tie_breakers: tuple[Any, ...]
    rooms_entitled: int | None

    def comparable(self) -> dict[str, Any]:
        return {
            "outcomes": [o.__dict__ for o in self.outcomes],
            "result": self.result,
            "priority_group": self.priority_group,
            "priority_rank": self.priority_rank,
            "score": self.score,
            "tie_breakers": list(self.tie_breakers),
            "rooms_entitled": self.rooms_entitled,
        }


@dataclass(frozen=True)
class Validation:
    errors: tuple[FieldError, ...]
    example_failures: tuple[str, ...]


class RuleEngine:
    """A rule set compiled against an expression language, ready to determine households."""

    def __init__(self, document: RuleSetDocument, language: ExpressionLanguage) -> None:
        self.document = document
        self.language = language
        self.version = f"{ENGINE_VERSION}; {language.name}"
        self._compiled: dict[str, CompiledExpression] = {}
        self.errors: list[FieldError] = []
        sources = [
            *(
                (f"{key}[{i}].expression", c.expression)
                for key, items in (
                    ("eligibility_criteria", document.eligibility),
                    ("exclusion_criteria", document.exclusions),
                    ("priority_groups", document.priority_groups),
                )
                for i, c in enumerate(items)
            ),
            *(
                (f"tie_breakers[{i}].expression", t.expression)
                for i, t in enumerate(document.tie_breakers)
            ),
        ]
        if document.score:
            sources.append(("score", document.score))
        for where, source in sources:
            self._compile(where, source)
        if not self.errors:
            self._dry_run(sources)

    def _compile(self, where: str, source: str) -> None:
        try:
            compiled = self.language.compile(source)
        except ExpressionError as exc:
            self.errors.append(FieldError(where, f"does not compile: {exc}"))
            return
        unknown = sorted(compiled.facts_used - FACTS.keys())
        if unknown:
            self.errors.append(FieldError(where, f"refers to unknown facts: {', '.join(unknown)}"))
            return
        self._compiled[source] = compiled

    def _dry_run(self, sources: list[tuple[str, str]]) -> None:
        """Evaluate every expression on the sample household (every fact known): a misspelt
        field inside a fact, or a result of the wrong type, shows here and not on a real case."""
        facts = sample_facts()
        for where, source in sources:
            try:
                value = self._compiled[source].evaluate(facts)
            except ExpressionError as exc:
                self.errors.append(FieldError(where, f"fails on the sample household: {exc}"))
                continue
            if where == "score":
                ok = _finite_number(value)
                wanted = "a finite number"
            elif where.startswith("tie_breakers"):
                ok = _holdable(value)
                wanted = "a finite number or a line of text"
            else:
                ok = isinstance(value, bool)
                wanted = "true or false"
            if not ok:
                self.errors.append(FieldError(where, f"gives {value!r}, not {wanted}"))

    def validate(self) -> Validation:
        """Compile errors, and the shipped examples that do not give what they expect."""
        if self.errors:
            return Validation(tuple(self.errors), ())
        failures = []
        for example in self.document.examples:
            got = self.determine({**sample_facts(), **example.facts})
            actual = {
                "result": got.result,
                "priority_group": got.priority_group,
                "rooms": got.rooms_entitled,
                "score": got.score,
            }
            wrong = [
                f"{key} {actual[key]!r}, expected {value!r}"
                for key, value in example.expect.items()
                if actual[key] != value
            ]
            if wrong:
                failures.append(f"{example.name}: " + "; ".join(wrong))
        return Validation((), tuple(failures))

    def determine(self, facts: Mapping[str, Any]) -> Determination:
        if self.errors:
            raise ExpressionError(
                f"rule set {self.document.code} v{self.document.version} does not compile"
            )
        doc = self.document
        outcomes = [self._outcome(c, "eligibility", facts) for c in doc.eligibility]
        outcomes += [self._outcome(c, "exclusion", facts) for c in doc.exclusions]
        failed = any(
            (o.kind == "eligibility" and o.outcome == "not_met")
            or (o.kind == "exclusion" and o.outcome == "met")
            for o in outcomes
        )
        unknown = any(o.outcome == "unknown" for o in outcomes)
        result = "ineligible" if failed else "needs_review" if unknown else "eligible"
        group: str | None = None
        rank: int | None = None
        score: float | None = None
        ties: tuple[Any, ...] = ()
        if result == "eligible":
            for i, criterion in enumerate(doc.priority_groups):
                outcome = self._outcome(criterion, "priority", facts)
                outcomes.append(outcome)
                if outcome.outcome == "unknown":
                    result = "needs_review"  # cannot tell whether a higher group applies
                    break
                if outcome.outcome == "met":
                    group, rank = criterion.id, i + 1
                    break
            if result == "eligible" and group is not None:
                raw_score = self._value(doc.score, facts) if doc.score else None
                ties = tuple(self._value(t.expression, facts) for t in doc.tie_breakers)
                broken = _unorderable(doc, raw_score, ties)
                if broken is not None:
                    # Without its score or tie-breakers the household cannot be placed in its
                    # group: reviewed by a person, not ordered on a value no reader can hold.
                    outcomes.append(broken)
                    result, group, rank, ties = "needs_review", None, None, ()
                elif raw_score is not None:
                    score = float(raw_score)
            elif result == "eligible":
                result = "needs_review"  # no group applies: the rule set's groups have a gap
        size = facts.get("household_size")
        rooms = doc.rooms_for(size) if isinstance(size, int) and size > 0 else None
        return Determination(tuple(outcomes), result, group, rank, score, ties, rooms)

    def _outcome(
        self, criterion: Criterion, kind: str, facts: Mapping[str, Any]
    ) -> CriterionOutcome:
        compiled = self._compiled[criterion.expression]
        used = sorted(compiled.facts_used)
        values = canonical_json({name: facts.get(name) for name in used})
        missing = [name for name in used if facts.get(name) is None]
        if missing:
            return CriterionOutcome(
                criterion.id, kind, "unknown", values, "not recorded: " + ", ".join(missing)
            )
        try:
            value = compiled.evaluate(facts)
        except ExpressionError as exc:
            return CriterionOutcome(criterion.id, kind, "unknown", values, str(exc))
        if not isinstance(value, bool):
            return CriterionOutcome(
                criterion.id, kind, "unknown", values, f"gave {value!r}, not true or false"
            )
        return CriterionOutcome(criterion.id, kind, "met" if value else "not_met", values, None)

    def _value(self, source: str, facts: Mapping[str, Any]) -> Any:
        try:
            return self._compiled[source].evaluate(facts)
        except ExpressionError:
            return None


def _finite_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) < human_text.SAFE_INTEGER
    )


def _holdable(value: Any) -> bool:
    """A tie-breaker value every reader holds: a finite number, or one line of text."""
    if isinstance(value, str):
        return human_text.problem(value, human_text.LINE) is None and len(value) <= 500
    return _finite_number(value)


def _unorderable(
    document: RuleSetDocument, score: Any, ties: tuple[Any, ...]
) -> CriterionOutcome | None:
    """The outcome saying why a household cannot be ordered, or None when it can."""
    if document.score and not _finite_number(score):
        return CriterionOutcome(
            "score", "priority", "unknown", "{}", "the score is not a finite number"
        )
    for tie, value in zip(document.tie_breakers, ties, strict=True):
        if not _holdable(value):
            return CriterionOutcome(
                tie.id, "priority", "unknown", "{}", "the tie-breaker gives no usable value"
            )
    return None


# --- explanation ------------------------------------------------------------------------

_WORDS: dict[str, dict[str, Any]] = {
    "en": {
        "eligibility": "Condition",
        "exclusion": "Exclusion",
        "priority": "Priority group",
        "met": {"eligibility": "met", "exclusion": "applies", "priority": "applies"},
        "not_met": {
            "eligibility": "not met",
            "exclusion": "does not apply",
            "priority": "does not apply",
        },
        "unknown": "cannot be decided",
        "facts": "facts",
        "result": {
            "eligible": "Eligible",
            "ineligible": "Not eligible",
            "needs_review": "Needs review",
        },
        "group": "priority group",
        "rooms": "rooms",
    },
    "az": {
        "eligibility": "Şərt",
        "exclusion": "İstisna",
        "priority": "Prioritet qrupu",
        "met": {
            "eligibility": "ödənilib",
            "exclusion": "tətbiq olunur",
            "priority": "tətbiq olunur",
        },
        "not_met": {
            "eligibility": "ödənilməyib",
            "exclusion": "tətbiq olunmur",
            "priority": "tətbiq olunmur",
        },
        "unknown": "müəyyən edilə bilməz",
        "facts": "faktlar",
        "result": {
            "eligible": "Uyğundur",
            "ineligible": "Uyğun deyil",
            "needs_review": "Yoxlanılmalıdır",
        },
        "group": "prioritet qrupu",
        "rooms": "otaq",
    },
}


def explain(
    document: RuleSetDocument,
    outcomes: list[CriterionOutcome],
    result: str,
    priority_group: str | None,
    rooms: int | None,
    lang: str,
) -> list[str]:
    """The decision in plain words, one line per criterion: what it says, the fact values it
    read, and whether it passed; then the result."""
    words = _WORDS["az" if lang == "az" else "en"]
    lines = []
    for o in outcomes:
        criterion = document.criterion(o.criterion_id)
        said = (
            (criterion.description_az if lang == "az" else criterion.description_en)
            if criterion
            else o.criterion_id
        )
        if o.outcome == "unknown":
            verdict = f"{words['unknown']} ({o.detail})"
        else:
            verdict = words[o.outcome][o.kind]
        values = ", ".join(
            f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in json.loads(o.values).items()
        )
        lines.append(
            f"{words[o.kind]} {o.criterion_id}: {said} [{words['facts']}: {values}] — {verdict}."
        )
    summary = words["result"][result]
    if priority_group:
        summary += f"; {words['group']}: {priority_group}"
    if rooms:
        summary += f"; {words['rooms']}: {rooms}"
    lines.append(summary + ".")
    return lines
