"""The names of every tool in the catalog (the config validates `meta.tools` against these)."""

TOOL_NAMES = (
    "journal_query", "unit_status", "failed_units", "unit_dependencies", "metrics_query", "disk_usage",
    "largest_dirs", "top_processes", "nixos_generations", "nixos_generation_diff", "knowledge_search",
    "incident_history", "trigger_templates", "propose_action",
)
