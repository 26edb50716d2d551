"""What a pipeline is: ``task`` (the ``@task`` decorator), ``graph`` (stages, needs, approvals, matrices)
and ``context`` (the ``ctx`` a task receives).
"""
