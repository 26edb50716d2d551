"""The SQL projection of the run log (SQLAlchemy): ``sql`` writes it, ``queries`` reads it."""
