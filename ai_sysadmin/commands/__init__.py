"""Subcommands of the `ai-sysadmin` CLI (one module each)."""
