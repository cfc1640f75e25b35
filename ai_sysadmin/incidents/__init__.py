"""Incidents: deterministic correlation of triggers into problems, and their lifecycle."""
