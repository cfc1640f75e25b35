"""Model access: one OpenAI-compatible client per role (trigger, review, meta, embed)."""

from ai_sysadmin.llm.client import (
    CallRecord,
    ChatResult,
    Health,
    LLMClient,
    ToolCall,
    ToolTurn,
    build_clients,
)
from ai_sysadmin.llm.errors import (
    BadModelOutput,
    LLMError,
    ModelRequestError,
    ModelTimeout,
    ModelUnavailable,
    Unsupported,
)

__all__ = [
    "BadModelOutput",
    "CallRecord",
    "ChatResult",
    "Health",
    "LLMClient",
    "LLMError",
    "ModelRequestError",
    "ModelTimeout",
    "ModelUnavailable",
    "ToolCall",
    "ToolTurn",
    "Unsupported",
    "build_clients",
]
