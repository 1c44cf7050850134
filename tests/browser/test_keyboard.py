from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

from tests.browser.conftest import Browser


def focused(browser: Browser) -> WebElement:
    element: WebElement = browser.driver.switch_to.active_element
    return element


def test_an_operator_searches_with_the_keyboard_alone(browser: Browser) -> None:
    browser.sign_in("operator")
    browser.open("/console/search")

    body = browser.find(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    assert focused(browser).get_attribute("class") == "skip"  # the first stop skips the menus
    focused(browser).send_keys(Keys.ENTER)
    focused(browser).send_keys(Keys.TAB)  # from the top of the main content: the first choice
    assert focused(browser).get_attribute("name") == "kind"
    while focused(browser).get_attribute("id") != "name":
        focused(browser).send_keys(Keys.TAB)
    focused(browser).send_keys("Məm", Keys.ENTER)  # Enter sends the form

    browser.wait_for(By.CSS_SELECTOR, "#results tbody tr")
    outline = focused(browser).value_of_css_property("outline-style")
    assert outline != "none"  # where the keyboard is, is visible
    browser.check("searched with the keyboard")
