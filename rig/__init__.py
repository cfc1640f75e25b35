"""The real-parts rig: starts real llama-servers, PostgreSQL clusters and journal files.

Used by the test suite (tests/conftest.py) and by the local runner (`python -m rig.local`).
Not shipped in the package: production gets these parts from NixOS.
"""
