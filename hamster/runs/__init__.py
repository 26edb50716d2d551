"""Runs: what happens to a run, as events, and every decision made from them. All pure.

``events`` (the run log's records), ``lifecycle`` (the one state machine), ``next_step`` (what a worker may
do next), ``approvals``, ``merge_groups``, ``replay`` (reruns and replays, decided), ``starting`` (what a
webhook asks and how its runs are requested), ``audit`` (the hash chain) and ``audit_checkpoints`` (signed
checkpoints).
"""
