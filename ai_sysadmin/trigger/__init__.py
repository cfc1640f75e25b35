"""Layer 1: journal reading, template mining, rules, bursts and model classification."""
