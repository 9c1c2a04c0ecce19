"""The standing mutation check: see catalogue.py (what), runner.py (how), ``python -m tests.mutation``."""
