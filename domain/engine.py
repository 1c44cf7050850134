"""The rule engine: a rule set document compiled against an expression language, determining
a household from its facts: each criterion's outcome, the result, the priority group, the score
and tie-breakers, the rooms. Depends on nothing but the document and the facts it is given."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain import text as human_text
from domain.base import FieldError
from domain.rules import (
    ENGINE_VERSION,
    FACTS,
    CompiledExpression,
    Criterion,
    ExpressionError,
    ExpressionLanguage,
    RuleSetDocument,
    canonical_json,
    sample_facts,
)

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
        self._used: dict[str, tuple[str, ...]] = {}  # each expression's facts, in name order
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
        self._used[source] = tuple(sorted(compiled.facts_used))

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
        used = self._used[criterion.expression]
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
