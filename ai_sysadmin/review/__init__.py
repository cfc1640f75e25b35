"""L3: the periodic (and early) review of incidents, with deterministic candidates."""
