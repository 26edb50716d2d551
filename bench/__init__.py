"""Benchmarks: Hamster against its physical limits and against the original Celery design (``make bench``).

Timings never go into tests. ``python -m bench`` runs every section in one process tree on one machine, so
each ratio compares figures measured in the same run; see bench/README.md for the method.
"""
