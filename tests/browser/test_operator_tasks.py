"""The operator's tasks in a browser: registering a household (members added without
JavaScript), the API's reasons beside their fields in Azerbaijani, a refusal for another
district, and consent recorded for a family of the demonstration."""

from __future__ import annotations

import random
import string
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser.conftest import SCOPED_TOKEN, Browser, Console


def random_fin() -> str:
    return "".join(random.choices(string.ascii_uppercase + string.digits, k=7))


def fill(browser: Browser, values: dict[str, str]) -> None:
    """Types into text fields, picks options, and sets dates (a date field's typing order
    depends on the browser's locale, so its value is set as the form sends it)."""
    for name, value in values.items():
        field = browser.find(By.ID, name)
        if field.tag_name == "select":
            Select(field).select_by_value(value)
        elif field.get_attribute("type") == "date":
            browser.driver.execute_script("arguments[0].value = arguments[1]", field, value)
        else:
            field.clear()
            field.send_keys(value)


def household(head_fin: str, spouse_fin: str, head_birth: str = "1979-04-12") -> dict[str, str]:
    return {
        "origin_settlement_code": "ZAN-002",
        "current_address": "Bakı, Xətai rayonu, yataqxana 4, otaq 12",
        "members-0-fin": head_fin,
        "members-0-last_name": "Əliyev",
        "members-0-first_name": "İsmayıl",
        "members-0-birth_date": head_birth,
        "members-0-sex": "male",
        "members-0-relationship": "head",
        "members-1-fin": spouse_fin,
        "members-1-last_name": "Şükürova",
        "members-1-first_name": "Gülnar",
        "members-1-birth_date": "1983-09-30",
        "members-1-sex": "female",
        "members-1-relationship": "spouse",
    }


def open_form_with_two_members(browser: Browser) -> None:
    browser.open("/console/tasks")
    browser.check("tasks")
    browser.find(By.CSS_SELECTOR, "a[href='/console/tasks/households/new']").click()
    browser.wait_for(By.ID, "members-0-fin")
    browser.check("household form, one member")
    browser.find(By.CSS_SELECTOR, "button[name=change][value=add]").click()
    browser.wait_for(By.ID, "members-1-fin")
    browser.check("household form, two members")


def register(browser: Browser) -> None:
    browser.find(By.CSS_SELECTOR, "button[name=change][value=register]").click()


def households_with(console: Console, fin: str, at: str | None = None) -> list[dict[str, object]]:
    params = {"fin": fin, **({"min_position": at} if at else {})}
    with console.api() as api:
        found: list[dict[str, object]] = api.get("/api/v1/households", params=params).json()[
            "items"
        ]
    return found


def test_an_operator_registers_a_household_of_two_and_is_taken_to_its_case(
    browser: Browser, console: Console
) -> None:
    head, spouse = random_fin(), random_fin()
    browser.sign_in("operator")
    open_form_with_two_members(browser)

    fill(browser, household(head, spouse))
    register(browser)
    WebDriverWait(browser.driver, 15).until(lambda d: "/console/households/" in d.current_url)

    address = urlsplit(browser.driver.current_url)
    assert address.path.startswith("/console/households/")
    household_id = UUID(address.path.rsplit("/", 1)[1])
    at = parse_qs(address.query)["at"][0]  # the registration's log position: read it back
    with console.api() as api:
        found = api.get(f"/api/v1/households/{household_id}", params={"min_position": at}).json()
    assert found["origin_settlement_code"] == "ZAN-002"
    assert sorted((m["fin"], m["last_name"], m["first_name"]) for m in found["members"]) == sorted(
        [(head, "Əliyev", "İsmayıl"), (spouse, "Şükürova", "Gülnar")]
    )
    assert [h["household_id"] for h in households_with(console, head, at)] == [str(household_id)]
    assert len(found["members"]) == 2
    members = browser.driver.find_elements(
        By.CSS_SELECTOR, "section[aria-labelledby=members] tbody tr"
    )
    assert {row.find_element(By.CSS_SELECTOR, "td").text for row in members} == {head, spouse}
    browser.check("the new household's case")


def test_a_bad_fin_and_a_missing_birth_date_are_shown_beside_their_fields_and_nothing_is_registered(
    browser: Browser, console: Console
) -> None:
    spouse = random_fin()
    browser.sign_in("operator")
    open_form_with_two_members(browser)

    fill(browser, household("AB-12", spouse, head_birth=""))
    register(browser)
    browser.wait_for(By.ID, "problems")

    for field, said in (
        ("members-0-fin", "FİN düz 7 latın hərfi və ya rəqəmdən ibarətdir."),
        ("members-0-birth_date", "Bu sahə doldurulmalıdır."),
    ):
        element = browser.find(By.ID, field)
        assert element.get_attribute("aria-invalid") == "true"
        described = (element.get_attribute("aria-describedby") or "").split()
        assert f"{field}-problem" in described
        assert browser.find(By.ID, f"{field}-problem").text == said
    assert browser.find(By.ID, "members-1-last_name").get_attribute("value") == "Şükürova"
    assert browser.find(By.ID, "members-0-first_name").get_attribute("value") == "İsmayıl"
    browser.check("household form with problems")
    assert households_with(console, spouse) == []


def test_a_district_scoped_operator_is_refused_a_household_of_another_district(
    browser: Browser, console: Console
) -> None:
    head, spouse = random_fin(), random_fin()
    browser.sign_in_with_token(SCOPED_TOKEN)
    open_form_with_two_members(browser)

    fill(browser, household(head, spouse))
    register(browser)

    problems = browser.find(By.ID, "problems")
    assert "rayonlarınızdan kənardadır" in problems.text
    assert browser.find(By.ID, "members-0-last_name").get_attribute("value") == "Əliyev"
    browser.check("household refused for another district")
    assert households_with(console, head) == []


def test_an_operator_records_a_familys_consent_to_return(
    browser: Browser, console: Console
) -> None:
    with console.api() as api:
        households = api.get(
            "/api/v1/households", params={"origin_settlement": "ZAN-002", "limit": 100}
        ).json()["items"]
        waiting = [
            h
            for h in households
            if (r := api.get(f"/api/v1/households/{h['household_id']}/relocation")).status_code
            == 200
            and not r.json()["consent"]
        ]
    assert waiting, "the demonstration has families with no consent (declined or expired)"
    family = waiting[0]
    browser.sign_in("operator")
    browser.open("/console/tasks")
    fill(browser, {"fin": str(family["head_fin"])})
    browser.find(By.CSS_SELECTOR, "form[action='/console/tasks/find'] button").click()
    browser.wait_for(By.ID, "consent")
    browser.check("a household's tasks")

    browser.find(By.CSS_SELECTOR, "#consent button[type=submit]").click()
    browser.wait_for(By.ID, "problems")
    for field in ("consent-informed_of", "consent-document_reference", "consent-recorded_by"):
        assert browser.find(By.ID, field).get_attribute("aria-invalid") == "true"
    assert browser.find(By.ID, "consent-recorded_by-problem").text == "Bu sahə doldurulmalıdır."
    browser.check("consent form with problems")

    browser.find(By.ID, "consent-informed_of").send_keys("ev və ünvan\nköç tarixi\nxidmətlər")
    fill(
        browser,
        {"consent-document_reference": "RAZ-2026-0017", "consent-recorded_by": "Nigar Qasımova"},
    )
    browser.find(By.CSS_SELECTOR, "#consent button[type=submit]").click()
    browser.wait_for(By.ID, "withdrawal")

    assert "Qayıdışa razılıq qeydə alındı." in browser.find(By.CSS_SELECTOR, ".notice").text
    browser.check("consent recorded")
    with console.api() as api:
        relocation = api.get(f"/api/v1/households/{family['household_id']}/relocation").json()
    assert relocation["consent"] is True
    refused_forms = "status of 422"  # the form sent back with its problems: not a fault
    assert [e for e in browser.console_errors() if refused_forms not in e] == []


def test_an_operator_starts_a_familys_survey_and_records_an_answer(
    browser: Browser, console: Console
) -> None:
    head = random_fin()
    with console.api() as api:
        created = api.post(
            "/api/v1/households",
            json={
                "origin_settlement_code": "ZAN-002",
                "current_address": "Bakı, Xətai rayonu, yataqxana 4, otaq 12",
                "members": [
                    {
                        "fin": head,
                        "first_name": "Nərmin",
                        "last_name": "Quliyeva",
                        "birth_date": "1988-02-11",
                        "sex": "female",
                        "relationship": "head",
                    }
                ],
            },
        )
        assert created.status_code == 201, created.text
        household_id = created.json()["household_id"]
        at = created.headers["log-position"]
    browser.sign_in("operator")
    browser.open(f"/console/tasks/households/{household_id}?at={at}")
    browser.find(By.XPATH, "//button[contains(., 'sorğuya başlayın') or contains(., 'sorğu')]")
    browser.check("a new family's tasks, no survey yet")

    browser.find(By.CSS_SELECTOR, "form[action$='/survey'] button[type=submit]").click()
    first = browser.find(By.CSS_SELECTOR, "form.survey .question input")
    question = str(first.get_attribute("name"))
    browser.check("the survey's questions")
    if first.get_attribute("type") in ("radio", "checkbox"):
        first.click()
    else:
        first.send_keys("2")
    browser.find(By.CSS_SELECTOR, "form.survey p.actions button[type=submit]").click()

    browser.wait_for(By.CSS_SELECTOR, ".notice[role=status]")
    assert browser.driver.find_elements(By.CSS_SELECTOR, f"form.survey [name='{question}']") == []
    browser.check("an answer recorded")
    shown = parse_qs(urlsplit(browser.driver.current_url).query)  # the answer's log position
    with console.api() as api:
        held = api.get(
            f"/api/v1/households/{household_id}", params={"min_position": shown["at"][0]}
        ).json()
    survey = held["latest_survey"]
    assert survey is not None and survey["status"] == "started"
    assert question.removeprefix("q-") in survey["answers"]  # what the store holds
