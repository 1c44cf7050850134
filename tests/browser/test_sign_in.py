from __future__ import annotations

from selenium.webdriver.common.by import By

from tests.browser.conftest import Browser


def test_an_operator_signs_in_with_a_development_account_and_out_again(browser: Browser) -> None:
    browser.open("/console")
    assert "/console/sign-in" in browser.driver.current_url
    browser.check("sign-in page")

    browser.sign_in("operator")

    assert "console-op" in browser.heading
    browser.check("start page")
    assert browser.console_errors() == []
    browser.find(By.CSS_SELECTOR, "form[action='/console/sign-out'] button").click()
    browser.wait_for(By.ID, "token")
    browser.open("/console")
    assert "/console/sign-in" in browser.driver.current_url


def test_a_wrong_token_is_refused_beside_its_field(browser: Browser) -> None:
    browser.driver.delete_all_cookies()
    browser.open("/console/sign-in")
    browser.find(By.ID, "token").send_keys("not-a-token")
    browser.find(By.CSS_SELECTOR, "form[action$='/development'] button[type=submit]").click()

    error = browser.find(By.ID, "sign-in-error")

    assert error.get_attribute("role") == "alert"
    assert browser.find(By.ID, "token").get_attribute("aria-invalid") == "true"
    browser.check("sign-in refused")
