"""L4 meta analysis: an investigation tool loop over read-only tools (see docs/meta.md)."""
