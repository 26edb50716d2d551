"""Running a stage's task on a worker.

Pure: ``task_env`` (the allowlisted environment), ``stage_logs`` (a log cut into masked, capped chunks),
``secrets`` (which stage gets which; only ``read_source`` reads the secrets directory).
Adapters: ``outcome`` (runs one attempt under its timeout; ``NonRetryable``), ``task_processes`` and
``task_child`` (processes that run blocking tasks), ``subprocess_runner`` (one forked child per attempt),
``sandbox`` (bubblewrap), ``test_reports`` (JUnit files parsed), ``artifacts`` (the artifact store).
"""
