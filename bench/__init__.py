"""Benchmarks behind the figures in docs/: each module is a program, run from the repository root
as `python -m bench.NAME` (its docstring says what it measures).  Shared helpers come from rig/.
"""
