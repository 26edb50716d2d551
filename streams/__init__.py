"""Kafka: the one Faust app the workers run, and the clients outside it.

The Faust app: ``app`` (the app, its topics and tables, built from the settings), ``topics`` (every topic,
declared once, in flow order), ``transport`` (Faust's aiokafka transport with rebalances that lose no
record), ``stall_watch`` (an events partition whose commit stands still is read again), ``replication``
(pure: copies per topic).

Outside it: ``admin`` (creating topics), ``producer`` (the intake's aiokafka producer), ``reader`` (the one
reader of every topic for the CLI and the dashboard), ``kafka_python`` (kafka-python clients),
``log_topic`` (stage logs: the worker's sender and the one reader), ``dead_letter_codec`` and
``dead_letter_store`` (a dead letter as a record; setting one aside, listing them, sending them back),
``rerun`` and ``dispatch`` (the commands the CLI, the dashboard and GitHub's buttons send: a rerun, a
manual run). The run lifecycle lives in ``hamster.runs``; the workers' fold of it in ``agents.plumbing``.
"""
