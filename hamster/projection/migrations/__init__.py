"""Schema migrations of the SQL projection (Alembic), applied by ``hamster.projection.sql.make_engine``.

Every process that opens the projection (web, workers, the CLI) upgrades it to the newest revision first.
Several may start at once, so the upgrade runs under a lock: PostgreSQL's advisory lock inside the
migration's transaction, or an exclusive ``flock`` on a file beside a sqlite database.

A new revision: ``alembic -c hamster/projection/migrations/alembic.ini revision -m "what changes"``, then
write its ``upgrade``/``downgrade`` by hand, and change ``hamster.projection.sql``'s tables to match (a
contract test compares the two).
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from alembic.config import Config

HERE = Path(__file__).resolve().parent
# Any fixed number: the key of PostgreSQL's advisory lock that serialises concurrent upgrades.
_PG_LOCK_KEY = 0x68616D73
# The tables of the first revision: a database that has them and no alembic_version table was made by
# ``metadata.create_all`` before migrations existed, and is stamped rather than created again.
_FIRST_TABLES = {"runs", "stages", "applied_offsets"}


def config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = connection
    return cfg


HEAD = "0002"
"""The newest revision (a contract test checks it is Alembic's head): a database already there is opened
without loading Alembic at all, which every `hamster runs` command would otherwise pay for."""


def at_head(engine: Engine) -> bool:
    """True when the database's schema is already at ``HEAD``."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return False
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none() == HEAD


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the projection's schema to ``revision`` (the newest by default)."""
    from alembic import command

    with _file_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Released when this transaction ends; PostgreSQL's DDL is transactional, so a second process
            # waits here and then finds the schema already upgraded.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        cfg = config(conn)
        tables = set(inspect(conn).get_table_names())
        if "alembic_version" not in tables and tables >= _FIRST_TABLES:
            command.stamp(cfg, "0001")
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(Path(database).with_name(Path(database).name + ".migrate-lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
