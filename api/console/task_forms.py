"""The operator's forms as the API takes them, and the API's answers as the forms show them:
pure functions, no request and no rendering (:mod:`api.console.pages.tasks` uses them).

- A posted form becomes the JSON body of the API's command (:func:`household_body`,
  :func:`action_body`, :func:`answer_value`): a field left empty is left out, so that the API
  says what is missing, in its own words.
- A 422's fields (``members[0].fin``, ``household.members.0.fin``) become the form's field
  names (``members-0-fin``; :func:`form_field`), so each problem is shown beside its field.
- The API's reasons are English (pydantic's messages and the domain's rules, fixed strings,
  sometimes with a number): :func:`reason_text` gives each in the page's language, and a reason
  it does not know in English after a lead-in in that language.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from domain import registry
from domain import relocation as rl

N_ = str  # marks a message for extraction without translating it here

MAX_MEMBERS = registry.MAX_MEMBERS
MEMBER_FIELDS = (
    "fin",
    "last_name",
    "first_name",
    "patronymic",
    "birth_date",
    "sex",
    "relationship",
    "idp_certificate_number",
)
HOUSEHOLD_FIELDS = ("origin_settlement_code", "current_address", "contact_phone")


# --- the API's fields as the form's ------------------------------------------------------


def _parts(api_field: str) -> list[str]:
    """``household.members[0].fin`` and ``members.0.fin`` alike: ``[members, 0, fin]``."""
    parts = [p for p in re.split(r"[.\[\]]+", api_field) if p]
    while parts and parts[0] in ("body", "household"):
        parts = parts[1:]
    return parts


def form_field(api_field: str, known: Iterable[str]) -> str | None:
    """The form field an API field names: the longest leading part of its path that is one of
    the ``known`` field names (``informed_of[2]`` is the ``informed_of`` field), or None when
    the form has no such field (the problem is then the page's)."""
    names = set(known)
    parts = _parts(api_field)
    for end in range(len(parts), 0, -1):
        name = "-".join(parts[:end])
        if name in names:
            return name
    return None


def member_field(index: int, name: str) -> str:
    return f"members-{index}-{name}"


def household_fields(members: int) -> list[str]:
    """Every field of the household form with ``members`` member fieldsets (``members``, the
    group itself, takes the problems that name no one member)."""
    return [
        *HOUSEHOLD_FIELDS,
        "members",
        *(member_field(i, name) for i in range(members) for name in MEMBER_FIELDS),
    ]


def place_problems(
    problems: Mapping[str, list[str]], known: Iterable[str]
) -> tuple[dict[str, list[str]], list[str]]:
    """The API's reasons by form field, and those no field of the form takes (the page's)."""
    names = list(known)
    by_field: dict[str, list[str]] = {}
    page: list[str] = []
    for api_field, reasons in problems.items():
        field = form_field(api_field, names)
        if field is None:
            page.extend(reasons)
        else:
            by_field.setdefault(field, []).extend(reasons)
    return by_field, page


def problems_of(status: int, problem: Mapping[str, Any]) -> dict[str, list[str]]:
    """A problem's reasons by the API's field: every rule a 422 lists; for a refusal (409,
    403), its detail under its field (or under ``""``, the page's)."""
    if status == 422 and problem.get("errors"):
        found: dict[str, list[str]] = {}
        for error in problem["errors"]:
            found.setdefault(str(error.get("field", "")), []).append(str(error.get("reason", "")))
        return found
    field = str(problem.get("field") or "")
    detail = str(problem.get("reason") or problem.get("detail") or problem.get("title") or "")
    return {field: [detail.removeprefix(f"{field}: ")]}


# --- the form as the API's body ----------------------------------------------------------


def _given(form: Mapping[str, str], name: str) -> str | None:
    value = (form.get(name) or "").strip()
    return value or None


def member_count(form: Mapping[str, str], change: str | None = None) -> int:
    """How many member fieldsets the form shows: as it was posted, one more after "add a
    member", one fewer after "remove the last" (at least 1, at most the API's maximum)."""
    given = form.get("members") or "1"
    count = int(given) if given.isdigit() else 1
    if change == "add":
        count += 1
    elif change == "remove":
        count -= 1
    return max(1, min(count, MAX_MEMBERS))


def household_body(form: Mapping[str, str]) -> dict[str, Any]:
    """``POST /api/v1/households`` from the form: what was typed (trimmed), empty fields left
    out; a FIN upper-cased as the API stores it."""
    members = []
    for i in range(member_count(form)):
        member = {name: _given(form, member_field(i, name)) for name in MEMBER_FIELDS}
        if member["fin"]:
            member["fin"] = member["fin"].upper()
        members.append({k: v for k, v in member.items() if v is not None})
    body: dict[str, Any] = {name: _given(form, name) for name in HOUSEHOLD_FIELDS}
    return {**{k: v for k, v in body.items() if v is not None}, "members": members}


@dataclass(frozen=True)
class Field:
    """One input of an operator's action: ``kind`` is text, date, number, select, lines (a
    list, one item a line) or paragraph."""

    name: str
    label: str
    kind: str = "text"
    required: bool = True
    choices: tuple[str, ...] = ()
    hint: str | None = None


@dataclass(frozen=True)
class Action:
    """One command a household's task page offers: its form and where it is posted."""

    name: str
    done: str  # what the page says once it is recorded
    title: str
    path: str  # the API's path, with {household_id} (and {convoy_id})
    fields: tuple[Field, ...] = ()
    button: str = N_("Record")
    stages: tuple[str, ...] = ()
    """The relocation stages it is offered at (empty: any)."""

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]


def action_body(action: Action, form: Mapping[str, str]) -> dict[str, Any]:
    """The command's body: text as typed, numbers as numbers when they are (otherwise as
    typed, so that the API names the problem), lines as a list; empty fields left out."""
    body: dict[str, Any] = {}
    for field in action.fields:
        raw = form.get(field.name) or ""
        if field.kind == "lines":
            items = [line.strip() for line in raw.splitlines() if line.strip()]
            body[field.name] = items
            continue
        value = raw.strip()
        if not value:
            continue
        body[field.name] = number(value) if field.kind == "number" else value
    return body


def number(value: str) -> int | float | str:
    """A number as typed (a comma as the decimal mark too), or the text when it is none."""
    text = value.strip().replace(",", ".")
    try:
        return int(text)
    except ValueError:
        pass
    try:
        found = float(text)
    except ValueError:
        return value
    return found if found == found and abs(found) != float("inf") else value


def answer_value(kind: str, values: list[str]) -> Any:
    """A survey answer from the form's values for one question (checkboxes give several), or
    None when it was left unanswered."""
    given = [v.strip() for v in values if v.strip()]
    if not given:
        return None
    if kind == "multiple_choice":
        return given
    if kind == "number":
        return number(given[0])
    return given[0]


# --- the API's reasons in the page's language --------------------------------------------

STAGES = {
    "opened": N_("waiting for an offer"),
    "offered": N_("offered a house"),
    "allocated": N_("house allocated"),
    "consented": N_("consent given"),
    "scheduled": N_("in a convoy"),
    "departed": N_("departed"),
    "arrived": N_("arrived"),
    "keys_handed_over": N_("keys handed over"),
    "residence_registered": N_("residence registered"),
    "completed": N_("relocation completed"),
}
UTILITIES = {
    "electricity": N_("electricity"),
    "gas": N_("gas"),
    "water": N_("water"),
    "internet": N_("internet"),
}
assert set(STAGES) >= set(rl.STAGES) and set(UTILITIES) == set(rl.UTILITIES)

FIN = N_("A FIN is exactly 7 Latin letters or digits.")
DATE = N_("A date is needed: day, month and year.")
CHOICE = N_("Choose one of the values offered.")
UNKNOWN = N_("Not accepted (the system's words): %(reason)s")

_CHAR = r"(?P<char>U\+[0-9A-F]{4,6})"
_NUMBER = r"(?P<n>-?[0-9][0-9.e+]*)"
REASONS: tuple[tuple[str, str], ...] = (
    # pydantic's messages (the API checks types and shapes first)
    (r"Field required", N_("This field is required.")),
    (r"String should match pattern '\^\[0-9A-Za-z\]\{7\}\$'", FIN),
    (r"String should match pattern .*", N_("Not in the expected form.")),
    (r"Input should be a valid date.*", DATE),
    (r"Input should be a valid integer.*", N_("A whole number is needed.")),
    (r"Input should be a valid number.*", N_("A number is needed.")),
    (rf"Input should be greater than or equal to {_NUMBER}", N_("At least %(n)s.")),
    (rf"Input should be less than or equal to {_NUMBER}", N_("At most %(n)s.")),
    (r"Input should be greater than .*", N_("Too small.")),
    (r"Input should be less than .*", N_("Too large.")),
    (r"Input should be a valid UUID.*", N_("Not a valid identifier.")),
    (
        r"Input should be a valid (string|boolean|list|dictionary).*",
        N_("Not a value of the expected kind."),
    ),
    (r"Input should be .*", CHOICE),
    (r"List should have at least (?P<n>\d+) items?.*", N_("At least %(n)s required.")),
    (r"List should have at most (?P<n>\d+) items?.*", N_("At most %(n)s entries.")),
    (r"String should have at most (?P<n>\d+) characters?", N_("At most %(n)s characters.")),
    (r"String should have at least (?P<n>\d+) characters?", N_("At least %(n)s characters.")),
    (r"Extra inputs are not permitted", N_("This field is not expected here.")),
    # the rules of text (domain/text.py)
    (r"at most (?P<n>\d+) characters", N_("At most %(n)s characters.")),
    (rf"must be one line \(it contains {_CHAR}\)", N_("Must be one line (it contains %(char)s).")),
    (
        rf"must not contain control characters \({_CHAR}\)",
        N_("Must not contain control characters (%(char)s)."),
    ),
    (
        rf"must not contain invisible or formatting characters \({_CHAR}\)",
        N_("Must not contain invisible or formatting characters (%(char)s)."),
    ),
    (r"contains an unpaired surrogate.*", N_("Contains a character that is not valid text.")),
    (r"must be text", N_("Must be text.")),
    (r"must not be empty", N_("Must not be empty.")),
    # the registry's rules (domain/registry.py, domain/registration.py)
    (r"a FIN is exactly 7 Latin letters or digits", FIN),
    (r"(must not|cannot) be in the future", N_("Must not be in the future.")),
    (r"not before (?P<date>\d{4}-\d\d-\d\d)", N_("Not before %(date)s.")),
    (r"a date, YYYY-MM-DD", DATE),
    (r"must be one of .*", CHOICE),
    (r"the same FIN as members\[(?P<member>\d+)\]", N_("The same FIN as member %(member)s.")),
    (
        r"exactly one member must have relationship 'head'",
        N_("Exactly one member must be the head of the household."),
    ),
    (
        r"members\[(?P<member>\d+)\] is already the head",
        N_("Member %(member)s is already the head of the household."),
    ),
    (r"not a settlement code of the reference data", N_("Not a settlement of the reference data.")),
    (r"9 to 15 digits, optionally after a \+", N_("9 to 15 digits, optionally after a +.")),
    (r"a household needs at least one member", N_("A household needs at least one member.")),
    (r"at most (?P<n>\d+) members", N_("At most %(n)s members.")),
    (
        r"a person with this FIN is already registered",
        N_("A person with this FIN is already registered."),
    ),
    (r"a reason is required", N_("A reason is required.")),
    # offers, consent and the steps of the move (domain/relocation.py)
    (r"the household holds no open offer", N_("The household holds no open offer.")),
    (r"the offer expired on (?P<date>\d{4}-\d\d-\d\d)", N_("The offer expired on %(date)s.")),
    (
        r"what the family was informed of.*",
        N_(
            "Write what the family was informed of (the house, the date, the services), one a line."
        ),
    ),
    (r"at most (?P<n>\d+) items", N_("At most %(n)s entries.")),
    (r"the signed consent form's reference", N_("The signed consent form's reference is needed.")),
    (r"who took the consent", N_("The name of who took the consent is needed.")),
    (r"consent is already recorded", N_("Consent is already recorded.")),
    (r"the family has already moved", N_("The family has already moved.")),
    (r"there is no consent to withdraw", N_("There is no consent to withdraw.")),
    (
        r"consent can be withdrawn only before departure",
        N_("Consent can be withdrawn only before departure."),
    ),
    (
        r"nothing moves without the family's consent.*",
        N_("Nothing moves without the family's consent."),
    ),
    (
        r"the family is at stage (?P<stage>\w+): it must be (?P<needed>\w+) to .*",
        N_("The case is at the stage “%(stage)s”; this step needs “%(needed)s”."),
    ),
    (r"the family has no house allocated( yet)?", N_("The family has no house allocated yet.")),
    (
        r"the family is already scheduled into a convoy",
        N_("The family is already in a convoy."),
    ),
    (r"the family is in no convoy", N_("The family is in no convoy.")),
    (r"(?P<utility>\w+) is already connected", N_("The %(utility)s is already connected.")),
    (r"not connected yet: (?P<utilities>.+)", N_("Not connected yet: %(utilities)s.")),
    (
        r"utilities are connected once the keys are handed over.*",
        N_("Utilities are connected once the keys are handed over."),
    ),
    (r"1 to (?P<n>\d+)", N_("From 1 to %(n)s.")),
    (r"(one of|must be one of) .*", CHOICE),
    # survey answers (domain/surveys.py)
    (r"yes or no", N_("Yes or no.")),
    (r"a non-empty list of options", N_("Choose at least one option.")),
    (r"'.*' is not one of .*", CHOICE),
    (r"each option at most once", N_("Each option at most once.")),
    (r"a number between .*", N_("The number is out of range.")),
    (r"a number", N_("A number is needed.")),
    (rf"at least {_NUMBER}", N_("At least %(n)s.")),
    (rf"at most {_NUMBER}", N_("At most %(n)s.")),
    (r"non-empty text", N_("Must not be empty.")),
    (
        r"already answered: correct the answer with a reason instead",
        N_("Already answered: a recorded answer is corrected with a reason."),
    ),
    (
        r"[\w-]+ is not asked for the answers given",
        N_("This question is not asked for the answers given."),
    ),
    (r"required and not answered", N_("Required and not answered.")),
    (r"the survey is completed", N_("The survey is completed.")),
    # district scopes
    (r".*outside (the caller's|your) districts?.*", N_("Outside your districts.")),
)
_COMPILED = tuple((re.compile(pattern), message) for pattern, message in REASONS)


def reason_message(reason: str) -> tuple[str, dict[str, str]]:
    """The message for an API reason (a msgid, before translation) and its values; a reason
    not in the table is the ``UNKNOWN`` message with the reason as it came."""
    text = reason.strip()
    for pattern, message in _COMPILED:
        found = pattern.fullmatch(text)
        if found is not None:
            values = {k: v for k, v in found.groupdict().items() if v is not None}
            if "member" in values:  # members[0] is the form's member 1
                values["member"] = str(int(values["member"]) + 1)
            return message, values
    return UNKNOWN, {"reason": text}


def reason_text(reason: str, translate: Callable[..., str]) -> str:
    """The API's reason in the language of ``translate`` (a page's ``t``): stages and
    utilities named in it are translated too."""
    message, values = reason_message(reason)
    for name in ("stage", "needed"):
        if name in values:
            values[name] = translate(STAGES.get(values[name], values[name]))
    if "utility" in values:
        values["utility"] = translate(UTILITIES.get(values["utility"], values["utility"]))
    if "utilities" in values:
        values["utilities"] = ", ".join(
            translate(UTILITIES.get(u.strip(), u.strip())) for u in values["utilities"].split(",")
        )
    return translate(message, **values)
