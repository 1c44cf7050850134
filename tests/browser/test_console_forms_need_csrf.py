"""Every form the console accepts needs the session's CSRF token: a page of another site
cannot make a signed-in person's browser change anything."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from fastapi.routing import APIRoute

from api.console import auth
from api.console.pages import PAGES
from tests.browser.conftest import Console
from tests.support_console import signed_in

POSTS = sorted(
    route.path
    for module in PAGES
    for route in module.router.routes
    if isinstance(route, APIRoute) and "POST" in route.methods
)
SIGN_IN = sorted(
    route.path
    for route in auth.router.routes
    if isinstance(route, APIRoute) and "POST" in route.methods
)


def supervisor(console: Console) -> httpx.Client:
    return signed_in(console.base_url, console.tokens["supervisor"])


EXAMPLES = {"dead_letter_id": "1", "projection": "households", "name": "consent"}


def concrete(path: str) -> str:
    """The path with a well-formed value for each parameter (a household that does not exist)."""
    return re.sub(r"\{([^}]+)\}", lambda m: EXAMPLES.get(m.group(1), str(uuid.uuid4())), path)


def test_there_are_forms_to_protect() -> None:
    assert len(POSTS) >= 4 and len(SIGN_IN) >= 2


@pytest.mark.parametrize("path", POSTS)
@pytest.mark.parametrize("token", [None, "forged-token"])
def test_a_form_without_the_sessions_csrf_token_is_refused(
    console: Console, path: str, token: str | None
) -> None:
    client = supervisor(console)
    try:
        assert client.get("/console").status_code == 200  # signed in
        data = {"csrf": token} if token else {}
        refused = client.post(concrete(path), data={**data, "reason": "x", "fin": "AAAAAAA"})
    finally:
        client.close()
    assert refused.status_code == 403, (path, refused.status_code)


@pytest.mark.parametrize("path", SIGN_IN)
def test_signing_in_or_out_without_the_csrf_token_is_refused(console: Console, path: str) -> None:
    with httpx.Client(base_url=console.base_url, timeout=30) as client:
        pending = client.get("/console/sign-in").headers["set-cookie"].split(";")[0]
        refused = client.post(
            path,
            data={"token": console.tokens["operator"], "account": "0"},
            headers={"cookie": pending},
        )
    assert refused.status_code in (403, 404), (path, refused.status_code)
    if path.endswith("/development"):
        assert refused.status_code == 403


def test_a_link_to_the_sign_in_page_does_not_sign_anyone_out(console: Console) -> None:
    client = signed_in(console.base_url, console.tokens["operator"])
    try:
        again = client.get("/console/sign-in?next=/console/search")
        assert again.status_code == 303
        assert again.headers["location"] == "/console/search"
        assert "set-cookie" not in again.headers  # the session is left as it was
        assert client.get("/console").status_code == 200
    finally:
        client.close()
