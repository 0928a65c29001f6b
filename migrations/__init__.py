"""Alembic migrations of the jobs database. Apply with ``imgpipe db upgrade``."""

# The newest revision in versions/: the schema this code needs. A new migration moves it
# (tests/integration/test_database.py checks it against the scripts).
HEAD = "0003"
