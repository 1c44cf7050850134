"""The console calls the API it is served beside, in the same process (ASGI, no socket), with
the signed-in caller's own bearer token. So every page goes through exactly what a curl user
goes through: the boundary, the roles, the district scopes, the validation, the idempotency
keys and the read log, one implementation of each. The caller's address, user agent,
correlation id and purpose are passed on, so the read log records the person at the browser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from starlette.requests import Request

INTERNAL = "http://console.internal"


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: httpx.Headers

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def problem(self) -> dict[str, Any]:
        return self.body if isinstance(self.body, dict) and not self.ok else {}

    def field_errors(self) -> dict[str, list[str]]:
        """A 422's reasons by field (``household.members.0.fin`` and the like)."""
        found: dict[str, list[str]] = {}
        for error in self.problem.get("errors") or []:
            found.setdefault(str(error.get("field", "")), []).append(str(error.get("reason", "")))
        if not found and self.problem.get("field"):
            found[str(self.problem["field"])] = [str(self.problem.get("reason", ""))]
        return found


class Api:
    def __init__(self, request: Request, token: str) -> None:
        self._request = request
        self._token = token

    def _client(self) -> httpx.AsyncClient:
        request = self._request
        client = request.client
        transport = httpx.ASGITransport(
            app=request.app,
            client=(client.host, client.port) if client else ("127.0.0.1", 0),
        )
        headers = {
            "authorization": f"Bearer {self._token}",
            "x-correlation-id": str(request.state.correlation_id),
            "user-agent": request.headers.get("user-agent", "console")[:256],
        }
        return httpx.AsyncClient(transport=transport, base_url=INTERNAL, headers=headers)

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> Answer:
        headers: dict[str, str] = {}
        if reason:
            params = {**(params or {}), "reason": reason}
        if idempotency_key:
            headers["idempotency-key"] = idempotency_key
        cleaned = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        async with self._client() as client:
            answer = await client.request(method, path, params=cleaned, json=json, headers=headers)
        kind = answer.headers.get("content-type", "")
        body: Any = answer.json() if "json" in kind else answer.text
        return Answer(answer.status_code, body, answer.headers)

    async def get(self, path: str, **kwargs: Any) -> Answer:
        return await self.call("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Answer:
        return await self.call("POST", path, **kwargs)
