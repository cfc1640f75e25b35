"""Persistence: PostgreSQL (events, metrics, audit) and the ChromaDB knowledge base."""
