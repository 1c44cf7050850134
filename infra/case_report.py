"""A case's history as a page a person would rather read (the auditor's HTML report)."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def render_html(history_: dict[str, Any], chain: Any, generated_by: str) -> str:
    """The history as a page a person would rather read (prints well, too)."""
    from datetime import UTC

    from jinja2 import Environment, PackageLoader, select_autoescape

    environment = Environment(
        loader=PackageLoader("infra", "templates"), autoescape=select_autoescape(["html"])
    )
    return environment.get_template("case_history.html").render(
        history=history_,
        chain=chain,
        generated_by=generated_by,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
