"""The names of every tool in the catalog (the config validates `meta.tools` against these)."""

from ai_sysadmin.vocab import TOOL_NAMES

__all__ = ["TOOL_NAMES"]
