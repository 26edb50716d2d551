"""Alembic's environment: migrations always run on a connection handed over by ``projection.migrations``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

connection = context.config.attributes.get("connection")

if connection is not None:
    context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
else:
    # The alembic command line: ``sqlalchemy.url`` from alembic.ini or ``-x``-less config.
    engine = engine_from_config(
        context.config.get_section(context.config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as conn:
        context.configure(connection=conn, render_as_batch=conn.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
