"""A determination explained in plain words, criterion by criterion, in Azerbaijani or
English."""

from __future__ import annotations

import json
from typing import Any

from domain.engine import CriterionOutcome
from domain.rules import RuleSetDocument

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
