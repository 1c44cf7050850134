"""Which roles may do what: one table for the HTTP API and the command line alike."""

from __future__ import annotations

WRITE_ROLES = ("operator", "supervisor")
READ_ROLES = ("operator", "supervisor", "auditor")
AUDIT_ROLES = ("auditor", "supervisor")
SUPERVISOR_ROLES = ("supervisor",)

ALLOWED = {
    "operator": WRITE_ROLES,
    "supervisor": SUPERVISOR_ROLES,
    "auditor": AUDIT_ROLES,
    "reader": READ_ROLES,
}
"""The roles that may run a command the code names by its least role."""
