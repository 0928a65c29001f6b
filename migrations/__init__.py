"""Alembic migrations of the jobs database. Apply with ``imgpipe db upgrade``."""
