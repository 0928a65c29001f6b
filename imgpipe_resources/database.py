"""The jobs database as a Dagster resource."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import Field
from sqlalchemy.orm import Session

from imgpipe_resources.db.engine import check_schema, redact, session_scope


class JobsDatabase(dg.ConfigurableResource):
    """SQL database holding jobs, intake, shopify_map and metadata (SQLite or PostgreSQL).

    Refuses to run on a schema older than the code; `imgpipe db upgrade` brings it up to date.
    """

    url: str = Field(description="SQLAlchemy URL, e.g. sqlite:///.imgpipe/imgpipe.db")

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        check_schema(self.url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope(self.url) as session:
            yield session

    @property
    def display_url(self) -> str:
        return redact(self.url)
