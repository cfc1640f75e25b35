"""A tool call written as text: what small instruct models do instead of `tool_calls`.

Qwen2.5-Coder-1.5B-Instruct served with `--jinja` answers a tool request with a fenced
```json {"name": ..., "arguments": {...}}``` block in `content`; llama-server does not
recognise it (no `<tool_call>` tags), so `tool_calls` stays empty and the agent loop
would see prose.  This module recognises exactly that shape and nothing more:

* the whole content (surrounding whitespace aside) is one JSON object -- bare, or the only
  thing inside one ``` / ```json fence;
* the object has exactly the keys `name` and `arguments`;
* `name` is one of the tools offered in this turn, `arguments` is a JSON object.

Anything else stays text: prose around the block, two calls, a list, an unknown name,
arguments that are not an object.  The call found here goes through the same checks as
a native call (LLMClient.tool_turn), so reading text never widens what a model can run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

# One fence around the whole content: ```json\n{...}\n``` or ```\n{...}\n``` (info string optional).
_FENCE = re.compile(r"\A```[ \t]*(?:json|JSON)?[ \t]*\n(?P<body>.*?)\n?[ \t]*```\Z", re.DOTALL)
CALL_KEYS = frozenset({"name", "arguments"})


@dataclass(frozen=True)
class TextCall:
    name: str
    arguments: dict[str, Any]

    @property
    def raw_arguments(self) -> str:
        return json.dumps(self.arguments)


def content_tool_call(content: str | None, offered: Collection[str]) -> TextCall | None:
    """The tool call that `content` is, or None when it is (or may be) text."""
    if not content or not offered:
        return None
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced is not None:
        text = fenced.group("body").strip()
    if not text.startswith("{"):
        return None
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(obj, dict) or set(obj) != CALL_KEYS:
        return None
    name, arguments = obj["name"], obj["arguments"]
    if not isinstance(name, str) or name not in offered or not isinstance(arguments, dict):
        return None
    return TextCall(name, arguments)
