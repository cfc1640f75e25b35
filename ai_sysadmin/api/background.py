"""Open WebUI's background requests: title, tags, follow-ups, search queries, autocomplete.

Open WebUI sends these to the model the user selected (unless a task model is
configured), as one user message built from its task templates -- they start with
`### Task:` and carry the conversation inside `<chat_history>`.  Open WebUI strips its
own `metadata.task` before calling an OpenAI endpoint, so the prompt is all there is
to recognise them by.  They are answered by a cheap role (`api.background_role`) so a
title never occupies the meta model's only slot or starts an investigation, with at
most `api.background_max_tokens` to write (api/shaping.py): Open WebUI sets no limit.
The keywords below follow Open WebUI's DEFAULT_*_GENERATION_PROMPT_TEMPLATE texts
(backend/open_webui/config.py), checked against 0.6 and 0.12.4.
"""

from __future__ import annotations

from typing import Any

# Keyword (lower case) -> task name, checked in order on the task prompt.
_TASKS = (
    ("title", "title"),
    ("tags categorizing", "tags"),
    ("follow-up questions", "follow_ups"),  # up to 0.6
    ("might naturally send next", "follow_ups"),  # 0.12: "Predict 3-5 useful messages this user might ..."
    ("search queries", "queries"),
    ("autocompletion system", "autocomplete"),
    ("image generation", "image_prompt"),
    ("emoji", "emoji"),
)


def background_task(data: dict[str, Any]) -> str | None:
    """The Open WebUI task this request is, or None for a normal chat turn."""
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        return None
    text = _text(last.get("content"))
    if not text.lstrip().startswith("### Task:"):
        return None
    if "<chat_history>" not in text and "<text>" not in text:
        return None
    head = text[:400].lower()
    for keyword, task in _TASKS:
        if keyword in head:
            return task
    if '"follow_ups"' in text:  # the output format names it, whatever the wording above
        return "follow_ups"
    return "other"


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""
