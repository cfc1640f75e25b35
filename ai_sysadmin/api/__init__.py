"""The OpenAI-compatible API, REST and /metrics (the `ai-sysadmin-api` unit)."""

from ai_sysadmin.api.app import create_app

__all__ = ["create_app"]
