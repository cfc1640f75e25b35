"""Host metrics and unit state, sampled every `intervals.metrics` seconds."""
