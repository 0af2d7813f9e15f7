"""All SQL lives here: the SQLite schema, its numbered migrations, and every read and write.

The database is an ordinary SQLite file in WAL mode, readable with sqlite-utils and Datasette.
Times are stored as ISO 8601 UTC text (``2026-11-24T20:15:00+00:00``), which sorts correctly.

``Store`` is one class made of a part per topic: ``feeds``, ``ingest`` (what a poll stores),
``stories`` (clustering's state and the user's corrections), ``summaries`` (each story's
summary, chosen by aggregator.summary), ``outbox`` (digests), ``views`` (what browsing reads)
and ``retention`` (saved articles, pruning, space), over ``base`` (the connection and query
helpers) and ``schema`` (the migrations). The store returns what is stored; what it comes to
(a story's rank and status, a feed's health, the feeds due) is decided by the pure modules
ranking and schedule, and aggregator.listing reads and decides in one call.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ..errors import StorageError
from ..models import FeedUpdate as FeedUpdate
from ..models import StoredStory as StoredStory
from .base import Database, dt, storage_error, ts
from .feeds import FeedStore
from .ingest import IngestStore
from .outbox import OUTBOX_KEEP, OutboxStore
from .retention import RetentionStore
from .schema import MIGRATIONS
from .summaries import SummaryStore
from .views import BrowsingStore

__all__ = ["MIGRATIONS", "OUTBOX_KEEP", "Store", "dt", "open_store", "ts"]

BUSY_TIMEOUT_MS = 5000


class Store(FeedStore, IngestStore, OutboxStore, BrowsingStore, SummaryStore, RetentionStore):
    """The aggregator database. Use ``open_store`` to get one."""


def open_store(path: Path, *, read_only: bool = False) -> Store:
    """Open (creating if needed) and migrate the database at ``path``.

    ``read_only``: the caller only reads, so a database the user may not write is opened as it
    is, read-only (an older one that needs migrating cannot be). A file that is an SQLite
    database of another application (tables, but not our _migrations) is refused, untouched.
    """
    conn: sqlite3.Connection | None = None
    try:
        ro = path.exists() and not _writable(path)
        if ro and not read_only:
            raise StorageError(
                f"{path}: the database or its folder is read-only, and this command writes; "
                "commands that only read (stories, story, articles, search, feeds list, "
                "digest --dry-run, db stats, db prune --dry-run) work"
            )
        if ro:
            conn = _connect_read_only(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            # A poll writes from one worker thread while the event loop fetches (SQLite does
            # its work without the GIL); the store is never used from two threads at once.
            conn = sqlite3.connect(
                str(path),
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        db = Database(conn)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA foreign_keys = ON")
        applied = _applied(db, path)
        if not ro:
            if applied == 0:
                # A new database is made with incremental vacuum (an older one is converted by
                # its first prune, see store.retention); this must come before WAL mode.
                db.execute("PRAGMA auto_vacuum = INCREMENTAL")
            if db.journal_mode != "wal":
                db.execute("PRAGMA journal_mode = wal")
            db.execute("PRAGMA synchronous = NORMAL")
        if applied != len(MIGRATIONS):
            if ro:
                raise StorageError(
                    f"{path}: this database needs upgrading to be read by this aggregator, "
                    "and you may only read it; run any command as its owner once"
                )
            _migrate(conn)
    except sqlite3.Error as e:
        if conn is not None:
            conn.close()
        raise storage_error(path, e) from e
    except OSError as e:
        raise StorageError(f"{path}: cannot open the database: {e.strerror or e}") from e
    except StorageError:
        if conn is not None:
            conn.close()
        raise
    return Store(db, path, read_only=ro)


def _writable(path: Path) -> bool:
    """Whether we may write the database, and its folder (where SQLite keeps -wal and -shm)."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection. A WAL database needs its -shm file, which a folder we may not
    write cannot hold: then the file is opened as immutable (nothing writes it meanwhile)."""
    for flags in ("mode=ro", "immutable=1"):
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?{flags}", uri=True, isolation_level=None,
            check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000,
        )  # fmt: skip
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError:
            conn.close()
    raise StorageError(f"{path}: cannot open the database read-only")


def _applied(db: Database, path: Path) -> int:
    """How many migrations the database has had; refuses a database that is not ours."""
    tables = {r["name"] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "_migrations" in tables:
        return int(db.execute("SELECT COUNT(*) FROM _migrations").fetchone()[0])
    if tables:
        raise StorageError(
            f"{path}: an SQLite database of another application (it has tables, but not "
            "aggregator's); aggregator leaves it alone: give it a file of its own with --db or "
            "database:"
        )
    return 0


def _migrate(conn: sqlite3.Connection) -> None:
    import sqlite_utils

    from .schema import migrate

    migrate(sqlite_utils.Database(conn))
