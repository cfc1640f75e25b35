"""`ai-sysadmin eval`: a scenario suite (journal + host snapshot + answer key) replayed through
the real L1 -> incidents -> L2 -> L3 -> policy path and scored deterministically (docs/eval.md).

scenario -- load and check a scenario file; runner -- run one through the path;
score -- hold the result against the key; results -- the resumable results file;
report -- the table and the comparison of two runs.
"""
