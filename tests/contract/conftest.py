"""The storage the contract suite runs against: every test runs once on sqlite and once on PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from hamster.projection.sql import make_engine


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty database of each kind (not yet migrated)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/projection.db"
    server = request.getfixturevalue("postgres_server")
    return server.create_database("t" + uuid.uuid4().hex[:12])


@pytest.fixture
def engine(db_url):
    """The projection's engine on that database, migrated by ``make_engine`` as every process does."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def other_engine(request, db_url, tmp_path):
    """A second fresh database of the same kind, migrated: to compare two ways of filling the view."""
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path}/other.db"
    else:
        url = request.getfixturevalue("postgres_server").create_database("t" + uuid.uuid4().hex[:12])
    engine = make_engine(url)
    yield engine
    engine.dispose()
