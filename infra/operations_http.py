"""What the relay and the projector serve on METRICS_PORT: ``/metrics`` (Prometheus),
``/healthz`` (the process is alive) and ``/readyz`` (each dependency, 503 while one is lost),
the same three paths the API serves."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

from infra.resilience import Readiness


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """A scrape every few seconds is not worth a line."""


class _Threading(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def operations_app(probes: dict[str, Callable[[], object]]) -> Callable[..., Iterable[bytes]]:
    metrics = make_wsgi_app()
    readiness = Readiness(probes)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            return _json(start_response, 200, {"status": "ok"})
        if path == "/readyz":
            ready, states = readiness()
            if ready:
                return _json(start_response, 200, {"status": "ready", "dependencies": states})
            lost = ", ".join(name for name, state in states.items() if not state["up"])
            return _json(
                start_response,
                503,
                {
                    "type": "https://reintegration.example/problems/not-ready",
                    "title": "Not ready",
                    "status": 503,
                    "detail": f"lost: {lost}; the process reconnects by itself",
                    "dependencies": states,
                },
            )
        return metrics(environ, start_response)  # type: ignore[no-any-return]

    return app


def _json(start_response: Callable[..., Any], status: int, body: object) -> list[bytes]:
    data = json.dumps(body).encode()
    kind = "application/json" if status == 200 else "application/problem+json"
    headers = [("Content-Type", kind), ("Content-Length", str(len(data)))]
    if status == 503:
        headers.append(("Retry-After", "1"))
    start_response(f"{status} {'OK' if status == 200 else 'Service Unavailable'}", headers)
    return [data]


def serve_operations(host: str, port: int, probes: dict[str, Callable[[], object]]) -> None:
    """Serve the three paths in a daemon thread."""
    server = make_server(
        host, port, operations_app(probes), server_class=_Threading, handler_class=_Quiet
    )
    threading.Thread(target=server.serve_forever, name="operations-http", daemon=True).start()
