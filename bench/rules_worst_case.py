"""L1 rule matching on crafted lines: Python's backtracking `re` against RE2, per line.

    python -m bench.rules_worst_case

A local user can write any journal line; a rule such as `acme.*(failed|error)` is
quadratic in the line's length under a backtracking engine.  Prints, for each crafted
8 KiB line, the time one match of every built-in rule takes with both engines.
"""

from __future__ import annotations

import re
import time

from ai_sysadmin.trigger.entry import DEFAULT_MAX_MESSAGE, Entry
from ai_sysadmin.trigger.rules import RuleSet, builtin_rule_data

CRAFTED = {
    "acme x2048": "acme" * 2048,
    "certificate x744": "certificate" * 744,
    "lego x2048": "lego" * 2048,
    "spaces": " " * DEFAULT_MAX_MESSAGE,
}


def backtracking(message: str) -> float:
    patterns = [re.compile(d["pattern"], re.IGNORECASE) for d in builtin_rule_data() if d.get("pattern")]
    t = time.perf_counter()
    for p in patterns:
        p.search(message)
    return time.perf_counter() - t


def linear(rules: RuleSet, message: str, rounds: int = 20) -> float:
    t = time.perf_counter()
    for _ in range(rounds):
        for rule in rules.rules:
            if rule.pattern is not None:
                rule.pattern.search(message)
    return (time.perf_counter() - t) / rounds


def main() -> None:
    rules = RuleSet.build()
    print(f"{'crafted line':<18} {'re (backtracking)':>18} {'RE2':>10}  (all {len(rules.rules)} built-in rules)")
    for name, message in CRAFTED.items():
        message = message[:DEFAULT_MAX_MESSAGE]
        print(f"{name:<18} {backtracking(message) * 1000:>15.1f} ms {linear(rules, message) * 1000:>7.2f} ms")
    e = Entry(message=CRAFTED["acme x2048"], realtime_usec=0, priority=3)
    t = time.perf_counter()
    for _ in range(400):
        rules.match(e)
    print(f"400 crafted lines through RuleSet.match (prefilter + RE2): {time.perf_counter() - t:.3f} s")


if __name__ == "__main__":
    main()
