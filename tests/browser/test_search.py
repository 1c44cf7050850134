from __future__ import annotations

import csv
import io

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.browser.conftest import Browser, Console


def test_an_operator_finds_persons_by_a_name_prefix_in_azerbaijani_letters_with_the_total(
    browser: Browser, console: Console
) -> None:
    expected = console.api().get(
        "/api/v1/persons", params={"name_prefix": "Məm", "total": "true", "limit": 1}
    )
    total = expected.json()["total"]
    assert total > 0
    browser.sign_in("operator")
    browser.open("/console/search")
    browser.check("search form")

    browser.find(By.CSS_SELECTOR, "input[name=kind][value=persons]").click()
    browser.find(By.ID, "name").send_keys("MƏM")  # upper case: folded as Azerbaijani folds
    browser.find(By.CSS_SELECTOR, "form[role=search] button[type=submit]").click()
    browser.wait_for_text(By.ID, "results-heading", f"{total} şəxs tapıldı")

    rows = browser.driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    assert len(rows) == min(total, 25)
    assert all("Məm" in row.text for row in rows)
    assert "kind=persons" in browser.driver.current_url  # htmx pushed the search's address
    browser.check("persons found")


def test_households_of_a_settlement_are_paginated_and_exported_whole_as_csv(
    browser: Browser, console: Console
) -> None:
    held = (
        console.api()
        .get(
            "/api/v1/households",
            params={"origin_settlement": "ZAN-002", "total": "true", "limit": 1},
        )
        .json()["total"]
    )
    browser.sign_in("operator")
    browser.open("/console/language/en?next=/console/search")
    Select(browser.find(By.ID, "settlement")).select_by_value("ZAN-002")
    browser.find(By.CSS_SELECTOR, "form[role=search] button[type=submit]").click()
    browser.wait_for_text(By.ID, "results-heading", f"{held} households found")
    browser.find(By.CSS_SELECTOR, "a[rel=next]").click()
    browser.wait_for_text(By.CSS_SELECTOR, ".pager span", "Page 2 of")
    browser.check("households second page")

    link = browser.find(By.CSS_SELECTOR, "a[href^='/console/search.csv']").get_attribute("href")
    cookies = {c["name"]: c["value"] for c in browser.driver.get_cookies()}
    exported = httpx.get(str(link), cookies=cookies, timeout=60)

    assert exported.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert table[0][0] == "Household"
    assert len(table) - 1 == held  # every household the store holds, not one page


def test_an_auditor_is_asked_for_the_purpose_of_a_search(browser: Browser) -> None:
    browser.sign_in("auditor")
    browser.open("/console/search?kind=persons&name=M%C9%99m")

    assert browser.find(By.ID, "reason").get_attribute("aria-invalid") == "true"
    assert browser.driver.find_elements(By.CSS_SELECTOR, "#results tbody tr") == []
    browser.check("auditor asked for a purpose")
