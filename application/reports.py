"""The common format of every audit report: what was checked, by whom, when, and what was found.

Every `reintegration audit` command prints one (as readable text, or JSON with --json), and the
re-execution of eligibility decisions and lottery draws will report through it too.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass
class AuditReport:
    kind: str  # "chain verification", "projection cross-check", "case history", ...
    subject: str
    generated_by: str
    outcome: str = "ok"  # ok | failed
    summary: dict[str, Any] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    generated_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def fail(self, **finding: Any) -> None:
        self.outcome = "failed"
        self.findings.append(finding)

    def note(self, **finding: Any) -> None:
        """A finding that is information, not a failure."""
        self.findings.append({"severity": "info", **finding})

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str, ensure_ascii=False)

    def to_text(self) -> str:
        lines = [
            f"{self.kind}: {self.subject}",
            f"outcome: {self.outcome.upper()}",
            f"generated at {self.generated_at} by {self.generated_by}",
        ]
        lines += [f"  {k}: {v}" for k, v in self.summary.items()]
        for finding in self.findings:
            severity = finding.get("severity", "failure")
            details = ", ".join(f"{k}={v}" for k, v in finding.items() if k != "severity")
            lines.append(f"  [{severity}] {details}")
        return "\n".join(lines)
