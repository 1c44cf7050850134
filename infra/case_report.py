"""A case's history as a page an auditor reads and prints (Azerbaijani or English): values as
people write them (dates, yes/no, lists as lists), each eligibility decision explained
criterion by criterion, and the hash chain's verdict on top."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Any

from markupsafe import Markup, escape

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Case history",
        "household": "household",
        "events": "events from the event store, in the order they were recorded",
        "generated": "Generated",
        "by": "by",
        "chain": "Hash chain",
        "intact": "intact",
        "broken": "BROKEN at position",
        "unchecked": "not checked",
        "position": "#",
        "when": "When (UTC)",
        "what": "What",
        "who": "Who",
        "why": "Why",
        "details": "Details",
        "caused_by": "request",
        "conversation": "conversation",
        "link": "link",
        "yes": "yes",
        "no": "no",
        "none": "—",
        "decision": "The decision, criterion by criterion",
        "facts": "Facts it read",
        "months": "January February March April May June July August September October "
        "November December",
    },
    "az": {
        "title": "İşin tarixçəsi",
        "household": "ailə",
        "events": "hadisə, hadisələr anbarından, qeydə alındıqları ardıcıllıqla",
        "generated": "Hazırlanıb",
        "by": "tərəfindən",
        "chain": "Heş zənciri",
        "intact": "pozulmayıb",
        "broken": "POZULUB, mövqe",
        "unchecked": "yoxlanılmayıb",
        "position": "№",
        "when": "Nə vaxt (UTC)",
        "what": "Nə",
        "who": "Kim",
        "why": "Niyə",
        "details": "Təfərrüatlar",
        "caused_by": "sorğu",
        "conversation": "söhbət",
        "link": "əlaqə",
        "yes": "bəli",
        "no": "xeyr",
        "none": "—",
        "decision": "Qərar, meyar-meyar",
        "facts": "Oxunan faktlar",
        "months": "yanvar fevral mart aprel may iyun iyul avqust sentyabr oktyabr noyabr dekabr",
    },
}
HIDDEN = {"facts", "outcomes", "tie_breakers"}  # shown as the explanation and the facts table
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?")


def render_html(history_: dict[str, Any], chain: Any, generated_by: str, lang: str = "en") -> str:
    """The history as a page a person would rather read (prints well, too)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    words = LABELS["az" if lang == "az" else "en"]
    environment = Environment(
        loader=PackageLoader("infra", "templates"), autoescape=select_autoescape(["html"])
    )
    environment.filters["readable"] = lambda value: readable(value, words)
    environment.filters["label"] = label
    environment.filters["moment"] = lambda value: moment(value, words)
    return environment.get_template("case_history.html").render(
        history=history_,
        chain=chain,
        words=words,
        lang="az" if lang == "az" else "en",
        hidden=HIDDEN,
        facts=_facts,
        generated_by=generated_by,
        generated_at=moment(datetime.now(UTC).isoformat(timespec="seconds"), words),
    )


def label(key: str) -> str:
    """A field's or an event's name as a heading: ``origin_settlement_code`` -> ``Origin
    settlement code``, ``EligibilityDetermined`` -> ``Eligibility determined``."""
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", key).replace("_", " ").strip().lower()
    return text[:1].upper() + text[1:]


def moment(value: str, words: dict[str, str]) -> str:
    """A date or time as people write it; any other text (or an impossible date) as it is."""
    months = words["months"].split()
    try:
        if MOMENT.fullmatch(value):
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if at.tzinfo is not None:
                at = at.astimezone(UTC)
            return f"{at.day} {months[at.month - 1]} {at.year}, {at:%H:%M}"
        if DATE.fullmatch(value):
            day = date.fromisoformat(value)
            return f"{day.day} {months[day.month - 1]} {day.year}"
    except ValueError:
        pass
    return value


def readable(value: Any, words: dict[str, str]) -> Markup:
    """A value as people write it: a date as a date, yes/no, a list as a list, a record as
    its fields; text escaped."""
    if value is None or value == "" or value == []:
        return Markup(escape(words["none"]))
    if isinstance(value, bool):
        return Markup(escape(words["yes"] if value else words["no"]))
    if isinstance(value, str):
        return Markup(escape(moment(value, words)))
    if isinstance(value, int | float):
        return Markup(escape(f"{value:g}" if isinstance(value, float) else str(value)))
    if isinstance(value, dict):
        items = "".join(
            f"<dt>{escape(label(str(k)))}</dt><dd>{readable(v, words)}</dd>"
            for k, v in value.items()
        )
        return Markup(f"<dl>{items}</dl>")
    if isinstance(value, list | tuple):
        if all(not isinstance(v, dict | list | tuple) for v in value):
            return Markup(", ").join(readable(v, words) for v in value)
        return Markup("<ul>" + "".join(f"<li>{readable(v, words)}</li>" for v in value) + "</ul>")
    return Markup(escape(str(value)))


def _facts(data: dict[str, Any]) -> dict[str, Any]:
    """A decision's facts snapshot (canonical JSON on the event) as fields."""
    try:
        found = json.loads(data.get("facts") or "{}")
    except (TypeError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}
