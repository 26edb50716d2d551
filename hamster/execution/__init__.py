"""Running a stage's task on a worker.

Pure: ``outcome`` (a task's result as data, ``NonRetryable``), ``task_env`` (the allowlisted environment),
``secrets``, ``stage_logs`` (a log cut into masked chunks), ``test_reports`` (JUnit files parsed).
Adapters: ``task_processes`` and ``task_child`` (processes that run blocking tasks), ``subprocess_runner``
(one forked child per attempt), ``sandbox`` (bubblewrap), ``artifacts`` (the artifact store).
"""
