"""The regression gate: the rules comparing a run with the committed baseline (rules.py) and the
jobs of a check (check.py)."""
