"""Typed failures of a model call, so callers decide without parsing messages.

* `ModelUnavailable` - nothing answers (connection refused, server loading / 503):
  the caller degrades (deterministic paths keep running) and tries later.
* `ModelTimeout` - the server took longer than the role's timeout, or went silent (its
  idle limit passed and its /health did not answer: llm/liveness.py).
* `BadModelOutput` - the answer arrived but is not what was asked for (invalid JSON,
  schema violation, malformed tool call).
* `ModelRequestError` - the server rejected the request (4xx, e.g. prompt larger than
  the context): retrying the same request cannot help.
"""

from __future__ import annotations


class LLMError(Exception):
    """Base class; `role` names the configured role (trigger, review, meta, embed)."""

    def __init__(self, role: str, message: str):
        self.role = role
        super().__init__(f"{role}: {message}")


class ModelUnavailable(LLMError):
    pass


class ModelTimeout(LLMError):
    pass


class BadModelOutput(LLMError):
    def __init__(self, role: str, message: str, raw: str | None = None):
        super().__init__(role, message)
        self.raw = raw


class ModelRequestError(LLMError):
    def __init__(self, role: str, message: str, status: int | None = None):
        super().__init__(role, message)
        self.status = status


class Unsupported(LLMError):
    """The endpoint lacks an optional llama-server feature (e.g. /tokenize on Ollama)."""
