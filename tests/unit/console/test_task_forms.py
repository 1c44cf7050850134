"""The operator's forms as the API's bodies, and the API's problems as the forms show them:
each reason beside its field, in Azerbaijani."""

from __future__ import annotations

import re

import pytest

from api.console import i18n
from api.console import task_forms as tf
from api.console.pages.tasks import BY_NAME

AZ = i18n.gettext("az")
EN = i18n.gettext("en")


def test_a_posted_household_form_becomes_the_apis_registration_with_empty_fields_left_out() -> None:
    form = {
        "members": "2",
        "origin_settlement_code": "ZAN-002",
        "current_address": "  Bakı, Xətai r-nu  ",
        "contact_phone": "",
        "members-0-fin": "ab12cd3",
        "members-0-last_name": "Əliyev",
        "members-0-first_name": "İsmayıl",
        "members-0-birth_date": "1980-01-02",
        "members-0-sex": "male",
        "members-0-relationship": "head",
        "members-1-fin": "ZX9Y8W7",
        "members-1-last_name": "Şükürova",
        "members-1-first_name": "Gülnar",
        "members-1-birth_date": "",
        "members-1-sex": "female",
        "members-1-relationship": "spouse",
    }

    body = tf.household_body(form)

    assert body == {
        "origin_settlement_code": "ZAN-002",
        "current_address": "Bakı, Xətai r-nu",
        "members": [
            {
                "fin": "AB12CD3",
                "last_name": "Əliyev",
                "first_name": "İsmayıl",
                "birth_date": "1980-01-02",
                "sex": "male",
                "relationship": "head",
            },
            {
                "fin": "ZX9Y8W7",
                "last_name": "Şükürova",
                "first_name": "Gülnar",
                "sex": "female",
                "relationship": "spouse",
            },
        ],
    }


@pytest.mark.parametrize(
    ("given", "change", "shown"),
    [
        ("2", None, 2),
        ("2", "add", 3),
        ("2", "remove", 1),
        ("1", "remove", 1),
        ("x", None, 1),
        ("30", "add", 30),
    ],
)
def test_the_form_shows_one_member_more_or_fewer_within_the_apis_bounds(
    given: str, change: str | None, shown: int
) -> None:
    assert tf.member_count({"members": given}, change) == shown


@pytest.mark.parametrize(
    "api_field",
    ["members[0].fin", "members.0.fin", "household.members[0].fin", "body.members.0.fin"],
)
def test_every_spelling_of_a_members_field_is_the_same_form_field(api_field: str) -> None:
    assert tf.form_field(api_field, tf.household_fields(2)) == "members-0-fin"


def test_a_problem_no_field_takes_is_the_pages() -> None:
    problems = {
        "members[1].birth_date": ["Field required"],
        "Idempotency-Key": ["reused"],
        "members": ["exactly one member must have relationship 'head'"],
    }

    by_field, page = tf.place_problems(problems, tf.household_fields(2))

    assert by_field == {
        "members-1-birth_date": ["Field required"],
        "members": ["exactly one member must have relationship 'head'"],
    }
    assert page == ["reused"]


def test_a_list_items_problem_is_its_lists_field() -> None:
    assert tf.form_field("informed_of[2]", BY_NAME["consent"].names) == "informed_of"


def test_a_refusal_is_placed_under_its_field_without_repeating_the_field() -> None:
    problem = {
        "status": 409,
        "field": "members[1].fin",
        "detail": "members[1].fin: a person with this FIN is already registered",
    }

    assert tf.problems_of(409, problem) == {
        "members[1].fin": ["a person with this FIN is already registered"]
    }
    assert tf.problems_of(403, {"detail": "outside your districts"}) == {
        "": ["outside your districts"]
    }


def test_an_actions_form_becomes_its_body() -> None:
    consent = {
        "informed_of": "ev və ünvan\r\n\r\n köç tarixi ",
        "document_reference": "RAZ-1",
        "recorded_by": "",
    }
    arrival = {"arrived_on": "2026-12-01", "members_arrived": "3"}

    assert tf.action_body(BY_NAME["consent"], consent) == {
        "informed_of": ["ev və ünvan", "köç tarixi"],
        "document_reference": "RAZ-1",
    }
    assert tf.action_body(BY_NAME["arrival"], arrival) == {
        "arrived_on": "2026-12-01",
        "members_arrived": 3,
    }
    assert tf.action_body(BY_NAME["arrival"], {"members_arrived": "üç"}) == {
        "members_arrived": "üç"  # as typed: the API names the problem
    }


@pytest.mark.parametrize(
    ("kind", "values", "answer"),
    [
        ("multiple_choice", ["mines", "jobs"], ["mines", "jobs"]),
        ("single_choice", ["now"], "now"),
        ("number", ["2"], 2),
        ("number", ["2,5"], 2.5),
        ("number", ["iki"], "iki"),
        ("yes_no", [""], None),
        ("text", [], None),
    ],
)
def test_a_survey_answer_from_the_forms_values(
    kind: str, values: list[str], answer: object
) -> None:
    assert tf.answer_value(kind, values) == answer


@pytest.mark.parametrize(
    ("reason", "azerbaijani"),
    [
        ("Field required", "Bu sahə doldurulmalıdır."),
        (
            "String should match pattern '^[0-9A-Za-z]{7}$'",
            "FİN düz 7 latın hərfi və ya rəqəmdən ibarətdir.",
        ),
        (
            "a FIN is exactly 7 Latin letters or digits",
            "FİN düz 7 latın hərfi və ya rəqəmdən ibarətdir.",
        ),
        (
            "Input should be a valid date or datetime, input is too short",
            "Tarix lazımdır: gün, ay və il.",
        ),
        ("Input should be 'female' or 'male'", "Təklif olunan dəyərlərdən birini seçin."),
        ("at most 100 characters", "Ən çoxu 100 simvol."),
        ("String should have at most 30 characters", "Ən çoxu 30 simvol."),
        (
            "must not contain invisible or formatting characters (U+200B)",
            "Görünməz və ya formatlama simvolları olmamalıdır (U+200B).",
        ),
        ("must be one line (it contains U+000A)", "Bir sətir olmalıdır (içində U+000A var)."),
        ("must not be empty", "Boş olmamalıdır."),
        ("must not be in the future", "Gələcək tarix ola bilməz."),
        ("not before 1900-01-01", "1900-01-01 tarixindən əvvəl ola bilməz."),
        ("the same FIN as members[0]", "Üzv 1 ilə eyni FİN."),
        ("members[0] is already the head", "Üzv 1 artıq ailə başçısıdır."),
        ("exactly one member must have relationship 'head'", "Düz bir üzv ailə başçısı olmalıdır."),
        ("9 to 15 digits, optionally after a +", "9-dan 15-ə qədər rəqəm, əvvəlində + ola bilər."),
        ("a person with this FIN is already registered", "Bu FİN-li şəxs artıq qeydiyyatdadır."),
        ("List should have at least 1 item after validation, not 0", "Ən azı 1 lazımdır."),
        (
            "Input should be 'location', 'size', 'condition', 'not_ready_to_move' or 'other'",
            "Təklif olunan dəyərlərdən birini seçin.",
        ),
        ("the signed consent form's reference", "İmzalanmış razılıq formasının nömrəsi lazımdır."),
        ("who took the consent", "Razılığı qəbul edənin adı lazımdır."),
        ("a reason is required", "Səbəb göstərilməlidir."),
        ("the household holds no open offer", "Ailənin açıq təklifi yoxdur."),
        ("consent is already recorded", "Razılıq artıq qeydə alınıb."),
        (
            "the family is at stage arrived: it must be departed to arrive",
            "İş “çatıb” mərhələsindədir; bu addım üçün “yola düşüb” lazımdır.",
        ),
        ("not connected yet: electricity, gas", "Hələ qoşulmayıb: elektrik, qaz."),
        ("Input should be greater than or equal to 1", "Ən azı 1."),
    ],
)
def test_the_apis_reasons_in_azerbaijani(reason: str, azerbaijani: str) -> None:
    assert tf.reason_text(reason, AZ) == azerbaijani


def test_a_reason_not_in_the_table_is_shown_in_english_after_an_azerbaijani_lead_in() -> None:
    said = tf.reason_text("the moon is in the wrong phase", AZ)

    assert said == "Qəbul edilmədi (sistemin ingiliscə izahı): the moon is in the wrong phase"
    assert tf.reason_text("at most 5 characters", EN) == "At most 5 characters."


def test_every_reason_of_the_table_has_its_placeholders_in_its_message() -> None:
    for pattern, message in tf.REASONS:
        groups = set(re.compile(pattern).groupindex)
        assert all(f"%({name})s" in message for name in groups), pattern
