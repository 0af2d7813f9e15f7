"""All SQL lives here: the SQLite schema, its numbered migrations, and every read and write.

The database is an ordinary SQLite file in WAL mode, readable with sqlite-utils and Datasette.
Times are stored as ISO 8601 UTC text (``2026-11-24T20:15:00+00:00``), which sorts correctly.

``Store`` is one class made of a part per topic: ``feeds``, ``ingest`` (what a poll stores),
``stories`` (clustering's state and the user's corrections), ``summaries`` (each story's
summary, chosen by aggregator.summary), ``outbox`` (digests) and
``views`` (what browsing reads), over ``base`` (the connection and query helpers) and
``schema`` (the migrations). The store returns what is stored; what it comes to (a story's
rank and status, a feed's health, the feeds due) is decided by the pure modules ranking and
schedule, and aggregator.listing reads and decides in one call.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils

from ..errors import StorageError
from ..models import FeedUpdate as FeedUpdate
from ..models import StoredStory as StoredStory
from .base import dt, storage_error, ts
from .feeds import FeedStore
from .ingest import IngestStore
from .outbox import OUTBOX_KEEP, OutboxStore
from .schema import MIGRATIONS, migrate
from .summaries import SummaryStore
from .views import BrowsingStore

__all__ = ["MIGRATIONS", "OUTBOX_KEEP", "Store", "dt", "open_store", "ts"]

BUSY_TIMEOUT_MS = 5000


class Store(FeedStore, IngestStore, OutboxStore, BrowsingStore, SummaryStore):
    """The aggregator database. Use ``open_store`` to get one."""


def open_store(path: Path) -> Store:
    """Open (creating if needed) and migrate the database at ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A poll writes from one worker thread while the event loop fetches (SQLite does its
        # work without the GIL); the store is never used from two threads at once.
        conn = sqlite3.connect(
            str(path),
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        db = sqlite_utils.Database(conn)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA foreign_keys = ON")
        if db.journal_mode != "wal":
            db.enable_wal()
        db.execute("PRAGMA synchronous = NORMAL")
        migrate(db)
    except sqlite3.Error as e:
        raise storage_error(path, e) from e
    except OSError as e:
        raise StorageError(f"{path}: cannot open the database: {e.strerror or e}") from e
    return Store(db, path)
