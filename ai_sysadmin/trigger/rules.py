"""Deterministic fault signatures: data (rules.json + config), compiled once, matched per entry.

Speed: results are memoised per message shape -- the message with its digits folded
(`key`), plus the fields rules look at -- because journals repeat the same lines with
different pids, ports and counters.  On a miss, each rule first checks its *required
literals* -- derived from the regex itself: every alternative of a pattern contains a
run of plain characters that any match must contain -- with a substring test on the
lower-cased message, and only candidates run their regex (Python's backtracking
engine costs ~10 µs per pattern per line; a substring test ~0.1 µs).

Linear time: rule patterns (built-in and the admin's) are compiled with RE2, whose
matching time is linear in the line's length whatever the pattern.  With Python's
backtracking `re`, `acme.*(failed|error)` took 0.22 s on one crafted 8 KiB line (a
journal line any local user can write); RE2 takes ~0.1 ms on the same line.  RE2 has no
look-around or back-references: a rule that uses them is refused with its field named.

Besides the signature rules, `priority_rule` turns journald's own judgement into a
trigger: PRIORITY crit or worse (configurable) is a trigger by definition -- except the
detail lines of a multi-line dump (register values, `label.....value`), which belong to
the header line that a signature already caught.  Plain `err` is too common in healthy
journals to page on by itself: such lines trigger through a signature, or through the
model when their template is new.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ai_sysadmin.rulespec import (  # noqa: F401 (re-exported: the rule definition lives on the ground floor)
    PRIORITY_RULE_ID,
    RULE_KEYS,
    Rule,
    RuleError,
    builtin_rule_data,
    parse_rule,
    required_literals,
)
from ai_sysadmin.trigger.entry import Entry
from ai_sysadmin.trigger.model import SEVERITY_RANK

# `instruction address: 0x00004ed8`, `machine check enable..............0`
_DUMP_DETAIL = re.compile(
    r"^(?:[^.]|\.(?!\.)){1,80}?(?:\.{2,}\s*|:\s+|\.)(?:0x)?[0-9a-fA-F]+\s*$"  # label.....value, label: 0xvalue
    r"|^(?:[A-Za-z][\w]{0,11}:\s*(?:0x)?[0-9a-fA-F]+\s*){2,}$"  # RAX: 0000 RBX: ffff (register rows)
    r"|^[A-Za-z][\w ]{0,40}:$"
)  # `special purpose registers:` (a dump section header)
MEMO_SIZE = 200_000
# Longer messages are not memoised: distinct long lines would make the memo hold
# MEMO_SIZE x 8 KiB, and a long line's shape rarely repeats anyway.
MEMO_MAX_KEY = 512
_DIGITS = re.compile(r"\d+")


def shape_key(message: str) -> str:
    """The message with every digit run folded to `0`: lines that differ only in numbers share it."""
    return _DIGITS.sub("0", message)


@dataclass
class RuleSet:
    rules: list[Rule]
    priority_max: int | None = 2  # PRIORITY at or below this (crit) is a trigger on its own; None: off
    by_id: dict[str, Rule] = field(default_factory=dict, init=False, repr=False)
    _memo: dict[tuple, Rule | None] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_id = {r.id: r for r in self.rules}
        # Most severe first, so `match` returns the worst signature a line carries.
        self._ordered = sorted(self.rules, key=lambda r: -SEVERITY_RANK[r.severity])

    @classmethod
    def build(
        cls,
        extra: Iterable[Any] = (),
        disabled: Iterable[str] = (),
        *,
        builtin: bool = True,
        priority_max: int | None = 2,
    ) -> RuleSet:
        """Built-in rules, then `extra` (config) added or replacing by id, minus `disabled` ids."""
        rules: dict[str, Rule] = {}
        if builtin:
            for i, data in enumerate(builtin_rule_data()):
                rule = parse_rule(data, f"rules.json[{i}]")
                rules[rule.id] = rule
        for i, data in enumerate(extra):
            rule = parse_rule(data, f"trigger.rules[{i}]")
            rules[rule.id] = rule
        disabled = set(disabled)
        unknown = disabled - set(rules) - {PRIORITY_RULE_ID}
        if unknown:
            raise RuleError(f"trigger.disabled_rules: unknown rule id(s) {', '.join(sorted(unknown))}")
        return cls(
            [r for r in rules.values() if r.id not in disabled],
            priority_max=None if PRIORITY_RULE_ID in disabled else priority_max,
        )

    def match(self, entry: Entry, key: str | None = None) -> Rule | None:
        """The most severe rule this entry matches, or None.  `key`: the message, digits folded."""
        if key is None or entry.result or len(key) > MEMO_MAX_KEY:
            return self._match(entry)
        ck = (key, entry.priority, entry.identifier, entry.comm, entry.unit)
        try:
            return self._memo[ck]
        except KeyError:
            pass
        rule = self._match(entry)
        if len(self._memo) >= MEMO_SIZE:
            self._memo.clear()
        self._memo[ck] = rule
        return rule

    def _match(self, entry: Entry) -> Rule | None:
        lower = entry.message.lower()
        for rule in self._ordered:  # most severe first
            lits = rule.literals
            if lits is not None and not any(lit in lower for lit in lits):
                continue
            if rule.matches(entry):
                return rule
        return self.priority_rule(entry)

    def priority_rule(self, entry: Entry) -> Rule | None:
        p = entry.priority
        if self.priority_max is None or p is None or p > self.priority_max:
            return None
        if _DUMP_DETAIL.match(entry.message):
            return None
        ident = (entry.identifier or entry.comm or "").lower()
        category = "kernel" if ident == "kernel" else "other"
        return _PRIORITY_RULES[(p <= 2, category)]


def looks_like_error(message: str) -> bool:
    """Cheap hint for text without a usable PRIORITY: is this worth asking the model?"""
    return _ERRORISH.search(message) is not None


_ERRORISH = re.compile(
    r"\b(error|errors|fail|failed|failure|fatal|panic|critical|crit|denied|refused|unable|cannot|can't|"
    r"timed? ?out|exception|abort(ed)?|corrupt\w*|invalid|unreachable|killed|segfault|warn(ing)?|"
    r"severed|terminated|lost|not found|violation|overflow|exceeded)\b",
    re.IGNORECASE,
)

_PRIORITY_RULES = {
    (crit, cat): Rule(
        id=PRIORITY_RULE_ID,
        severity="high" if crit else "medium",
        category=cat,
        summary="Logged at priority crit or worse" if crit else "Logged at priority err",
    )
    for crit in (True, False)
    for cat in ("kernel", "other")
}
