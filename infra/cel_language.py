"""The eligibility engine's expression language: CEL, through the `common-expression-language`
package (Python bindings of the Rust `cel` crate).

CEL is not Turing complete, has no side effects and no access to anything but the facts it is
given: a rule set from a file can never run code. The package version is part of every
decision's engine version, so an auditor re-running a decision sees if it has changed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from domain.rules import ExpressionError

PACKAGE = "common-expression-language"
# Names a macro binds inside an expression (members.exists(m, m.age < 18) binds m): they are
# not facts. CEL's macros are fixed by the language: all, exists, exists_one, map, filter.
_BOUND = re.compile(
    r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,"
)


@dataclass(frozen=True)
class CelExpression:
    source: str
    program: Any
    facts_used: frozenset[str]

    def evaluate(self, facts: Mapping[str, Any]) -> Any:
        # Only the facts the expression reads cross into CEL: converting the whole snapshot
        # for every expression would cost far more than evaluating it.
        used = {name: facts[name] for name in self.facts_used if name in facts}
        try:
            return self.program.execute(used)
        except Exception as exc:  # an expression is untrusted input: any failure is its own
            raise ExpressionError(_one_line(exc)) from None


class CelLanguage:
    name = f"cel ({PACKAGE} {version(PACKAGE)})"

    def compile(self, source: str) -> CelExpression:
        import cel  # here: a process that compiles no rule set (most API requests) never loads it

        try:
            program = cel.compile(source)
        except Exception as exc:  # likewise: whatever the parser cannot take is refused
            raise ExpressionError(_one_line(exc)) from None
        bound = set(_BOUND.findall(source))
        variables = {v for v in program.variables() if v not in bound}
        return CelExpression(source, program, frozenset(variables))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, KeyError):
        text = f"no such field {text}"
    return text[:300]
