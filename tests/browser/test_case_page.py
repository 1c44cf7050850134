"""The case page in a real browser: an operator reads a family's case (members, the decision
explained, the timeline) in Azerbaijani and English; an auditor says why, re-runs the decision
and reads the case as of a date; a district-scoped operator is told another district's case
does not exist."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from selenium.webdriver.common.by import By

from tests.browser.conftest import SCOPED_TOKEN, Browser, Console
from tests.support import wait_until


@pytest.fixture(scope="module")
def household(console: Console) -> str:
    """An Aghali (ZAN-002) family of the demonstration, once the read models hold its
    decision and its relocation (the projections catch up after the service starts)."""

    def moved() -> str | None:
        with console.api("operator") as api:
            found = api.get(
                "/api/v1/households", params={"origin_settlement": "ZAN-002", "limit": 5}
            ).json()["items"]
            for item in found:
                case = f"/api/v1/households/{item['household_id']}"
                if all(
                    api.get(f"{case}/{part}").status_code == 200
                    for part in ("eligibility", "relocation")
                ):
                    return str(item["household_id"])
        return None

    return wait_until(moved, timeout_s=120, what="a decided and relocated Aghali family")


def texts(browser: Browser, selector: str) -> list[str]:
    return [e.text for e in browser.driver.find_elements(By.CSS_SELECTOR, selector)]


def test_an_operator_reads_a_case_with_its_members_decision_and_timeline(
    browser: Browser, household: str
) -> None:
    browser.sign_in("operator")
    browser.open(f"/console/households/{household}")

    assert browser.heading.startswith("Ailə: ")
    assert len(texts(browser, "#members + table tbody tr")) >= 1
    statuses = texts(browser, "#members + table tbody td:nth-child(6)")
    assert "məcburi köçkün statusu qüvvədədir" in statuses
    criteria = texts(browser, "table.criteria tbody tr")
    assert len(criteria) >= 3 and any("ödənilib" in row for row in criteria)
    timeline = texts(browser, "ol.timeline .what")
    assert any("Ailə qeydiyyata alındı" in line for line in timeline)
    assert not any("HouseholdRegistered" in line for line in timeline)
    assert texts(browser, "ol.timeline .meta")[0].count("·") >= 1
    assert "Bu qərarı təkrar icra et" not in browser.driver.page_source  # auditors' button
    browser.check("case page, operator, Azerbaijani")
    assert browser.console_errors() == []


def test_the_case_reads_the_same_in_english(browser: Browser, household: str) -> None:
    browser.sign_in("operator")
    browser.open(f"/console/language/en?next=/console/households/{household}")

    assert browser.heading.startswith("Household of ")
    criteria = texts(browser, "table.criteria tbody td:nth-child(4)")
    assert set(criteria) <= {"met", "not met", "applies", "does not apply"}
    timeline = texts(browser, "ol.timeline .what")
    assert any(line.startswith("The household was registered") for line in timeline)
    assert any("was granted IDP status from" in line for line in timeline)
    browser.check("case page, operator, English")


def test_an_auditor_gives_a_purpose_re_runs_the_decision_and_sees_the_same_outcome(
    browser: Browser, household: str
) -> None:
    browser.sign_in("auditor")
    browser.open(f"/console/households/{household}")
    browser.check("case page asks an auditor's purpose")
    browser.find(By.ID, "reason").send_keys("audit plan 2026, item 7")
    browser.find(By.CSS_SELECTOR, "main form button[type=submit]").click()
    browser.wait_for(By.CSS_SELECTOR, "table.criteria")
    assert "reason=audit+plan+2026" in browser.driver.current_url
    browser.check("case page, auditor")

    browser.find(By.XPATH, "//button[contains(., 'Bu qərarı təkrar icra et')]").click()

    browser.wait_for(By.CSS_SELECTOR, "#rerun-result .rerun")  # swapped in by htmx
    assert "Eyni nəticə" in browser.find(By.CSS_SELECTOR, "#rerun-result").text
    same = texts(browser, "#rerun-result tbody td:nth-child(5)")
    assert same and all("eynidir" in cell for cell in same)
    facts = browser.find(By.CSS_SELECTOR, "#rerun-result dl").text
    assert "great-return-housing v1" in facts and "reintegration-eligibility" in facts
    browser.check("case page, decision re-run")
    assert browser.console_errors() == []


def test_the_re_run_works_without_javascript_as_a_page_of_its_own(
    browser: Browser, household: str, console: Console
) -> None:
    with console.api("auditor") as api:
        decision = api.get(f"/api/v1/households/{household}/eligibility").json()
    browser.sign_in("auditor")
    browser.open(
        f"/console/households/{household}/rerun?decision_id={decision['decision_id']}"
        "&reason=audit+plan+2026"
    )
    assert "təkrar icra" in browser.heading
    assert "Eyni nəticə" in browser.find(By.CSS_SELECTOR, ".rerun").text
    browser.check("decision re-run page")


def test_an_auditor_reads_the_case_as_of_a_date(browser: Browser, household: str) -> None:
    browser.sign_in("auditor")
    browser.open(f"/console/households/{household}?reason=audit+plan+2026")
    tomorrow = date.today() + timedelta(days=1)  # the demonstration happened today (Baku)
    field = browser.find(By.ID, "as-of-date")
    browser.driver.execute_script("arguments[0].value = arguments[1]", field, tomorrow.isoformat())
    browser.find(By.CSS_SELECTOR, "form.as-of button[type=submit]").click()

    browser.wait_for(By.CSS_SELECTOR, "main .notice")
    assert f"date={tomorrow.isoformat()}" in browser.driver.current_url
    assert "vəziyyətdə" in browser.heading
    assert len(texts(browser, "main table tbody tr")) >= 1
    browser.check("case as of a date")

    browser.open(f"/console/households/{household}/as-of?date=1990-01-01&reason=audit+plan+2026")
    assert "hələ qeydiyyata alınmamışdı" in browser.find(By.CSS_SELECTOR, "main .notice").text
    browser.check("case as of a date before it was registered")


def test_a_district_scoped_operator_is_told_another_districts_case_does_not_exist(
    browser: Browser, household: str
) -> None:
    browser.sign_in_with_token(SCOPED_TOKEN)
    browser.open(f"/console/households/{household}")

    assert browser.heading == "Tapılmadı"
    assert "rayonlarınızdan kənardadır" in browser.find(By.CSS_SELECTOR, "main").text
    browser.check("case outside the operator's districts")


def test_a_persons_address_leads_to_their_households_case(
    browser: Browser, household: str, console: Console
) -> None:
    with console.api("operator") as api:
        head = api.get(f"/api/v1/households/{household}").json()["members"][0]["fin"]
    browser.sign_in("operator")
    browser.open(f"/console/persons/{head}")
    browser.wait_for(By.CSS_SELECTOR, "table.criteria")
    assert browser.driver.current_url.endswith(f"/console/households/{household}")
    browser.check("case page reached from a person's address")
