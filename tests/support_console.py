"""Signing in to the console from a script (tests, the console benchmark): httpx's cookie jar
never sends a ``Secure`` cookie over plain http, even to 127.0.0.1 (browsers do, for
localhost), so the session cookie is carried by hand."""

from __future__ import annotations

import re

import httpx

SESSION = "console_session"


def _cookie(answer: httpx.Response) -> str | None:
    for header in answer.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name.strip() == SESSION:
            return rest.split(";", 1)[0].strip('"')
    return None


def signed_in(base_url: str, token: str, timeout: float = 60) -> httpx.Client:
    """A client signed in to the console with a development token (its session cookie and
    the session's CSRF token as ``client.csrf``)."""
    client = httpx.Client(base_url=base_url, timeout=timeout)
    page = client.get("/console/sign-in")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    pending = _cookie(page)
    assert csrf is not None and pending is not None
    answer = client.post(
        "/console/sign-in/development",
        data={"csrf": csrf.group(1), "token": token, "next": "/console"},
        headers={"cookie": f"{SESSION}={pending}"},
    )
    session = _cookie(answer)
    assert answer.status_code == 303 and session is not None, answer.text[:300]
    client.headers["cookie"] = f"{SESSION}={session}"
    home = client.get("/console")
    found = re.search(r'"X-CSRF-Token": "([^"]+)"', home.text)
    assert found is not None
    client.csrf = found.group(1)  # type: ignore[attr-defined]
    return client
