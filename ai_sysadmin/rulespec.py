"""A journal rule's definition: its keys, its validation and its compiled form.

The ground floor of L1: the configuration validates `trigger.rules` with `parse_rule`
here (errors name the key, e.g. `trigger.rules[3].category`) without importing the
trigger layer, and `trigger/rules.py` builds its RuleSet from the same parser.  The
built-in rules are data (`trigger/rules.json`), read as a package file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

import re2

from ai_sysadmin.vocab import CATEGORIES, SEVERITIES

RULE_KEYS = {"id", "severity", "category", "summary", "pattern", "fields", "identifiers", "max_priority", "min_count"}
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
PRIORITY_RULE_ID = "priority"  # the rule journald's own PRIORITY raises (trigger/rules.py)


class Matchable(Protocol):
    """What a rule looks at in a journal entry (trigger/entry.py's Entry); read-only."""

    @property
    def message(self) -> str: ...
    @property
    def priority(self) -> int | None: ...
    @property
    def identifier(self) -> str | None: ...
    @property
    def comm(self) -> str | None: ...
    @property
    def unit(self) -> str | None: ...
    @property
    def result(self) -> Mapping[str, str]: ...


class RuleError(ValueError):
    """A rule definition is invalid; the message names the rule and the field."""


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    category: str
    summary: str
    pattern: re2._Regexp | None = None
    fields: tuple[tuple[str, re2._Regexp], ...] = ()
    identifiers: frozenset[str] = frozenset()
    max_priority: int | None = None
    min_count: int = 1
    literals: tuple[str, ...] | None = None  # lower-case; one of them is in every match (None: unknown)

    @property
    def source(self) -> str:
        return f"rule:{self.id}"

    def matches(self, entry: Matchable) -> bool:
        if self.max_priority is not None and (entry.priority is None or entry.priority > self.max_priority):
            return False
        if self.identifiers and not ({entry.identifier, entry.comm, entry.unit} & self.identifiers):
            return False
        for name, rx in self.fields:
            value = entry.result.get(name)
            if value is None or not rx.search(value):
                return False
        return self.pattern is None or self.pattern.search(entry.message) is not None


def parse_rule(data: Any, where: str) -> Rule:
    """Validate one rule object; errors name `where` (e.g. `trigger.rules[3]`) and the key."""
    if not isinstance(data, Mapping):
        raise RuleError(f"{where}: must be an object")
    unknown = sorted(set(data) - RULE_KEYS)
    if unknown:
        raise RuleError(f"{where}.{unknown[0]}: unknown key (rule keys: {', '.join(sorted(RULE_KEYS))})")
    rid = data.get("id")
    if not isinstance(rid, str) or not _ID_RE.match(rid):
        raise RuleError(f"{where}.id: must be lower-case letters, digits and '-' (got {rid!r})")
    if data.get("severity") not in SEVERITIES:
        raise RuleError(f"{where}.severity: must be one of {', '.join(SEVERITIES)}")
    if data.get("category") not in CATEGORIES:
        raise RuleError(f"{where}.category: must be one of {', '.join(CATEGORIES)}")
    summary = data.get("summary", rid)
    if not isinstance(summary, str):
        raise RuleError(f"{where}.summary: must be a string")
    pattern = _regex(data.get("pattern"), f"{where}.pattern") if data.get("pattern") is not None else None
    fields_raw = data.get("fields", {})
    if not isinstance(fields_raw, Mapping):
        raise RuleError(f"{where}.fields: must be an object of journal field -> regex")
    fields = tuple((str(k), _regex(v, f"{where}.fields.{k}")) for k, v in sorted(fields_raw.items()))
    idents = data.get("identifiers", [])
    if not isinstance(idents, list) or not all(isinstance(i, str) for i in idents):
        raise RuleError(f"{where}.identifiers: must be a list of strings")
    max_pri = data.get("max_priority")
    if max_pri is not None and (not isinstance(max_pri, int) or isinstance(max_pri, bool) or not 0 <= max_pri <= 7):
        raise RuleError(f"{where}.max_priority: must be a syslog priority 0..7")
    min_count = data.get("min_count", 1)
    if not isinstance(min_count, int) or isinstance(min_count, bool) or min_count < 1:
        raise RuleError(f"{where}.min_count: must be an integer >= 1")
    if pattern is None and not fields and not idents:
        raise RuleError(f"{where}: needs at least one of pattern, fields, identifiers")
    return Rule(
        id=rid,
        severity=data["severity"],
        category=data["category"],
        summary=summary,
        pattern=pattern,
        fields=fields,
        identifiers=frozenset(idents),
        max_priority=max_pri,
        min_count=min_count,
        literals=required_literals(pattern.pattern) if pattern is not None else None,
    )


def required_literals(pattern: str, min_len: int = 3) -> tuple[str, ...] | None:
    """Lower-case strings, one of which occurs in any text the pattern matches; None if unknown.

    Per top-level alternative, the longest run of literal characters (zero-width \\b and
    anchors do not break a run).  Sound for IGNORECASE matching of a lower-cased text.
    """
    # typeshed has no stubs for re._parser (CPython's private regex parser, Python >= 3.11).
    import re._parser as sre  # type: ignore[import-not-found]

    try:
        tree = list(sre.parse(pattern))
    except re.error:
        return None
    while len(tree) == 1 and tree[0][0] is sre.SUBPATTERN:
        tree = list(tree[0][1][3])
    branches = [list(b) for b in tree[0][1][1]] if len(tree) == 1 and tree[0][0] is sre.BRANCH else [tree]
    out = []
    for seq in branches:
        best = run = ""
        for op, arg in seq:
            if op is sre.LITERAL:
                run += chr(arg)
                if len(run) > len(best):
                    best = run
            elif op is sre.AT:
                continue
            else:
                run = ""
        if len(best) < min_len:
            return None
        out.append(best.lower())
    return tuple(out)


def _re2_options() -> re2.Options:
    opts = re2.Options()
    opts.case_sensitive = False
    opts.log_errors = False  # the error is raised (and reported with its field), not printed by RE2
    return opts


_RE2_OPTIONS = _re2_options()


def _regex(value: Any, where: str) -> re2._Regexp:
    if not isinstance(value, str) or not value:
        raise RuleError(f"{where}: must be a non-empty regular expression string")
    try:
        return re2.compile(value, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        raise RuleError(f"{where}: invalid regular expression for the linear-time (RE2) engine: {reason}") from None


def builtin_rule_data() -> list[dict[str, Any]]:
    text = resources.files("ai_sysadmin").joinpath("trigger", "rules.json").read_text(encoding="utf-8")
    rules: list[dict[str, Any]] = json.loads(text)["rules"]
    return rules
