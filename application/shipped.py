"""The documents the system ships with (domain/reference/): the rule set of the Great Return,
in YAML, and how a rule set file is read."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from domain.base import FieldError, ValidationFailed

SHIPPED_RULE_SETS = ("great-return-housing.v1.yaml",)


def shipped_rule_set(name: str = SHIPPED_RULE_SETS[0]) -> dict[str, Any]:
    import yaml  # here: a process that reads no rule set file never loads it

    text = files("domain").joinpath(f"reference/rule_sets/{name}").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def load_document_text(text: str) -> Any:
    """A rule set file's content: YAML (JSON is YAML too)."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationFailed([FieldError("body", f"not YAML or JSON: {exc}")]) from None
