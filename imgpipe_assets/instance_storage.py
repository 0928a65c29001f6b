"""The embedded default's Dagster event log: Dagster's own SQLite event log, cheaper per event.

Dagster's ``SqliteEventLogStorage`` builds a new SQLAlchemy engine and opens a new SQLite
connection for every read and write, and an asset event takes three of them (the run's own
file, then the cross-run index). The engine is what caches compiled statements, and closing
the last connection to a WAL database checkpoints it, so each event pays a statement
compile, a checkpoint and their fsyncs: about 13 ms of CPU per event here, and imgpipe
writes some twenty events per photo.

This subclass changes only how connections are made, never what is stored: the files,
tables and migrations are Dagster's, so an instance written with it reads with the stock
storage and the other way round. Engines are kept per file (statements compile once); the
cross-run index keeps its connection open (no checkpoint per event, SQLite checkpoints it
as it grows); each run's own file still closes its connection after each write, because the
UI's live run log watches that file for changes. Measured in ``bench/event_log.py``.

It leans on the stock storage's private ``_connect``, so it is written for one Dagster
minor version (``WRITTEN_FOR``); on any other it warns once and leaves every connection to
Dagster's own code.

Only the embedded default uses it (``imgpipe demo`` writes it into the instance's
``dagster.yaml``); deployments use PostgreSQL (``deploy/dagster.yaml``).
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from dagster import __version__ as DAGSTER_VERSION
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool, QueuePool

MODULE = __name__
CLASS = "PooledSqliteEventLogStorage"
RUN_ENGINES = 32  # per-run engines kept (runs being written or watched by this process)
WRITTEN_FOR = "1.13."  # the Dagster minor version whose private _connect this replaces


def pooling_fits(version: str = DAGSTER_VERSION) -> bool:
    """Whether this Dagster is the one the pooled connections were written for."""
    stock = SqliteEventLogStorage
    return version.startswith(WRITTEN_FOR) and all(
        hasattr(stock, name) for name in ("_connect", "_initdb", "conn_string_for_shard")
    )


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` with engines kept per file and the index's connection open."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        # Set before the parent's __init__, which may already connect (index creation).
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_lock = threading.Lock()
        self._pooled = pooling_fits()
        if not self._pooled:
            warnings.warn(
                f"imgpipe's pooled SQLite event log was written for Dagster {WRITTEN_FOR}x; "
                f"with Dagster {DAGSTER_VERSION} Dagster's own SQLite event log does the work",
                stacklevel=2,
            )
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        with self._engines_lock:
            engine = self._engines.get(shard)
            if engine is not None:
                self._engines.move_to_end(shard)
                return engine
            # The index keeps one connection open (every use is under the storage's lock);
            # a run's file closes its connection after each use, for the UI's watcher.
            pool: dict[str, Any] = (
                {"poolclass": QueuePool, "pool_size": 1, "max_overflow": 2}
                if shard == INDEX_SHARD_NAME
                else {"poolclass": NullPool}
            )
            engine = create_engine(
                self.conn_string_for_shard(shard),
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
                **pool,
            )
            self._engines[shard] = engine
            while len(self._engines) > RUN_ENGINES + 1:
                oldest = next(k for k in self._engines if k != INDEX_SHARD_NAME)
                self._engines.pop(oldest).dispose()
            return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        if not getattr(self, "_pooled", False):
            with super()._connect(shard) as conn:
                yield conn
            return
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _dispose_engines(self) -> None:
        with self._engines_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def wipe(self) -> None:
        self._dispose_engines()  # the run files are deleted: no handle may stay open on them
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        self._dispose_engines()


def event_log_config(dagster_home: str) -> str:
    """The ``event_log_storage`` block of a ``dagster.yaml`` for this storage, at the place
    Dagster's default SQLite storage keeps its event logs in ``dagster_home``."""
    base_dir = str(Path(dagster_home) / "history" / "runs") + os.sep
    block = {
        "event_log_storage": {"module": MODULE, "class": CLASS, "config": {"base_dir": base_dir}}
    }
    return yaml.safe_dump(block, sort_keys=False)
