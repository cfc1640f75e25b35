"""The real-parts rig: starts real llama-servers, PostgreSQL clusters and journal files.

Used by the test suite (tests/conftest.py), the benchmarks (bench/) and the local runner
(`python -m rig.local`); helpers that both tests and benchmarks use live here, not in tests/.
Not shipped in the package: production gets these parts from NixOS.
"""
