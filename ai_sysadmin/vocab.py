"""The stable vocabulary: the words the configuration, the layers and the NixOS module share.

This is the ground floor: it imports nothing from the package, so the configuration
(`config.py`), L1 (`trigger/model.py`), the review schema and the tool catalog all
import these names downward.  Users alert on the severity and category strings and
write the others into `configuration.nix`: changing one is a breaking change
(tests/test_vocab_nix.py checks the module's enums against these).
"""

from __future__ import annotations

from typing import Literal, get_args

Severity = Literal["critical", "high", "medium", "low", "info"]
SEVERITIES: tuple[str, ...] = get_args(Severity)
SEVERITY_RANK = {s: i for i, s in enumerate(reversed(SEVERITIES))}  # info=0 ... critical=4

Category = Literal[
    "oom",
    "crash",
    "unit-failure",
    "disk-full",
    "filesystem",
    "hardware",
    "kernel",
    "auth",
    "network",
    "time",
    "nix",
    "certificate",
    "resource",
    "security",
    "other",
]
CATEGORIES: tuple[str, ...] = get_args(Category)

# observe records only; suggest queues every action; auto-safe runs low risk; auto-full low and medium.
AutonomyLevel = Literal["observe", "suggest", "auto-safe", "auto-full"]
AUTONOMY_LEVELS: tuple[str, ...] = get_args(AutonomyLevel)

LogLevel = Literal["debug", "info", "warning", "error"]
LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)

# This host's place in a fleet (docs/fleet.md).
FleetRole = Literal["standalone", "hub", "member"]
FLEET_ROLES: tuple[str, ...] = get_args(FleetRole)

JournalSourceKind = Literal["system", "directory", "file"]
JOURNAL_SOURCES: tuple[str, ...] = get_args(JournalSourceKind)

# The three chat roles (embed is the fourth model server, for embeddings only).
ChatRole = Literal["trigger", "review", "meta"]
CHAT_ROLES: tuple[str, ...] = get_args(ChatRole)

NixMode = Literal["auto", "run", "dry-run"]
NIX_MODES: tuple[str, ...] = get_args(NixMode)

ToolChoice = Literal["auto", "required"]
ClientTools = Literal["drop", "pass"]
CLIENT_TOOLS: tuple[str, ...] = get_args(ClientTools)

# Every tool of the L4 catalog (meta/tools/); `meta.tools` is validated against these.
ToolName = Literal[
    "journal_query",
    "unit_status",
    "failed_units",
    "unit_dependencies",
    "metrics_query",
    "disk_usage",
    "largest_dirs",
    "top_processes",
    "nixos_generations",
    "nixos_generation_diff",
    "knowledge_search",
    "incident_history",
    "trigger_templates",
    "propose_action",
]
TOOL_NAMES: tuple[str, ...] = get_args(ToolName)
