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

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Iterable, Mapping

import re2

from ai_sysadmin.trigger.entry import Entry
from ai_sysadmin.trigger.model import CATEGORIES, SEVERITIES, SEVERITY_RANK

RULE_KEYS = {"id", "severity", "category", "summary", "pattern", "fields", "identifiers", "max_priority", "min_count"}
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# `instruction address: 0x00004ed8`, `machine check enable..............0`
_DUMP_DETAIL = re.compile(
    r"^(?:[^.]|\.(?!\.)){1,80}?(?:\.{2,}\s*|:\s+|\.)(?:0x)?[0-9a-fA-F]+\s*$"  # label.....value, label: 0xvalue
    r"|^(?:[A-Za-z][\w]{0,11}:\s*(?:0x)?[0-9a-fA-F]+\s*){2,}$"  # RAX: 0000 RBX: ffff (register rows)
    r"|^[A-Za-z][\w ]{0,40}:$")  # `special purpose registers:` (a dump section header)
PRIORITY_RULE_ID = "priority"
MEMO_SIZE = 200_000
# Longer messages are not memoised: distinct long lines would make the memo hold
# MEMO_SIZE x 8 KiB, and a long line's shape rarely repeats anyway.
MEMO_MAX_KEY = 512
_DIGITS = re.compile(r"\d+")


def shape_key(message: str) -> str:
    """The message with every digit run folded to `0`: lines that differ only in numbers share it."""
    return _DIGITS.sub("0", message)


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

    def matches(self, entry: Entry) -> bool:
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
    return Rule(id=rid, severity=data["severity"], category=data["category"], summary=summary, pattern=pattern,
                fields=fields, identifiers=frozenset(idents), max_priority=max_pri, min_count=min_count,
                literals=required_literals(pattern.pattern) if pattern is not None else None)


def required_literals(pattern: str, min_len: int = 3) -> tuple[str, ...] | None:
    """Lower-case strings, one of which occurs in any text the pattern matches; None if unknown.

    Per top-level alternative, the longest run of literal characters (zero-width \\b and
    anchors do not break a run).  Sound for IGNORECASE matching of a lower-cased text.
    """
    try:
        import re._parser as sre  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - Python < 3.11
        import sre_parse as sre  # type: ignore[no-redef]
    try:
        tree = list(sre.parse(pattern))
    except re.error:
        return None
    while len(tree) == 1 and tree[0][0] is sre.SUBPATTERN:
        tree = list(tree[0][1][3])
    if len(tree) == 1 and tree[0][0] is sre.BRANCH:
        branches = [list(b) for b in tree[0][1][1]]
    else:
        branches = [tree]
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
    text = resources.files("ai_sysadmin.trigger").joinpath("rules.json").read_text(encoding="utf-8")
    return json.loads(text)["rules"]


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
    def build(cls, extra: Iterable[Any] = (), disabled: Iterable[str] = (), *, builtin: bool = True,
              priority_max: int | None = 2) -> "RuleSet":
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
        return cls([r for r in rules.values() if r.id not in disabled],
                   priority_max=None if PRIORITY_RULE_ID in disabled else priority_max)

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
    r"severed|terminated|lost|not found|violation|overflow|exceeded)\b", re.IGNORECASE)

_PRIORITY_RULES = {
    (crit, cat): Rule(id=PRIORITY_RULE_ID, severity="high" if crit else "medium", category=cat,
                      summary="Logged at priority crit or worse" if crit else "Logged at priority err")
    for crit in (True, False) for cat in ("kernel", "other")
}
