"""The common format of every audit report (the envelope): what was checked, by whom, when,
against which evidence, the outcome, and the differences found.

Every `reintegration audit` command answers with one (readable text, or JSON with --json) and
exits non-zero when the outcome is not ok: the chain's verification, the read models' cross-check,
a case's history, the re-run of a decision, of many, and of a lottery round.
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
    evidence: list[str] = field(default_factory=list)  # what the check read and compared
    details: Any = None  # the document checked, when the caller wants it (JSON only)

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
        if self.evidence:
            lines.append("evidence:")
            lines += [f"  - {item}" for item in self.evidence]
        lines += [f"  {k}: {_readable(v)}" for k, v in self.summary.items()]
        for finding in self.findings:
            severity = finding.get("severity", "failure")
            details = ", ".join(
                f"{k}={_readable(v)}" for k, v in finding.items() if k != "severity"
            )
            lines.append(f"  [{severity}] {details}")
        return "\n".join(lines)


def combined(kind: str, subject: str, generated_by: str, reports: list[AuditReport]) -> AuditReport:
    """One envelope for several reports of the same kind (the cross-check of every projection):
    their evidence, their summaries and findings named by each report's subject; failed when
    any finding is a failure."""
    if len(reports) == 1:
        return reports[0]
    report = AuditReport(kind, subject, generated_by)
    for part in reports:
        report.evidence += part.evidence
        report.summary |= {f"{part.subject}: {k}": v for k, v in part.summary.items()}
        for finding in part.findings:
            rest = {k: v for k, v in finding.items() if k != "severity"}
            if finding.get("severity") == "info":
                report.note(projection=part.subject, **rest)
            else:
                report.fail(projection=part.subject, **rest)
    return report


def _readable(value: Any) -> str:
    """A value as a person reads it: yes/no, a dash for nothing, lists and records spelled."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_readable(v)}" for k, v in value.items()) or "—"
    if isinstance(value, list | tuple):
        return "; ".join(_readable(v) for v in value) or "—"
    return str(value)
