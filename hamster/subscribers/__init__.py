"""Subscribers: which events start which pipelines, and when runs may start.

Pure: ``spec`` (``Subscriber``, published as data), ``matching``, ``changes`` (the subscriber history),
``concurrency`` and ``lane_commands`` (lanes per subscriber), ``schedules`` (cron ticks), ``dispatch`` (events
Hamster makes itself: manual runs and ticks).
"""
