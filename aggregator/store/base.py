"""The connection and what every part of the store shares: transactions, queries, time text."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import StorageError

__all__ = ["FEED_NAME", "Database", "StoreBase", "as_dt", "dt", "storage_error", "ts"]

# SQLite takes at most 32,766 parameters a statement; 500 keeps every statement small.
CHUNK = 500
# A feed's name wherever one is shown: the title the user gave it, else its own, else its URL.
# For a query that calls the feeds table ``f``.
FEED_NAME = "COALESCE(f.title, f.feed_title, f.url)"


def ts(value: datetime) -> str:
    """The one stored form of a time."""
    if value.tzinfo is None:
        raise ValueError("naive datetime")  # a bug: every time in aggregator is aware
    return value.astimezone(UTC).isoformat(timespec="seconds")


def dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def as_dt(value: str) -> datetime:
    """A stored time from a column that always has one."""
    return datetime.fromisoformat(value)


class Database:
    """The connection, with the calls of sqlite-utils' Database that the store makes.

    The connection is in autocommit mode (transactions are the store's own), so these are
    thin. sqlite-utils itself, which loads numpy with it, is imported only to migrate a
    database (see open_store): a command that reads starts some 100 ms sooner.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        return self.conn.execute(sql) if params is None else self.conn.execute(sql, params)

    def executescript(self, sql: str) -> Any:
        return self.conn.executescript(sql)

    def query(
        self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        cursor = self.execute(sql, params)
        keys = [d[0] for d in cursor.description or ()]
        return (dict(zip(keys, row, strict=True)) for row in cursor)

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def close(self) -> None:
        self.conn.close()

    @property
    def journal_mode(self) -> str:
        return str(self.conn.execute("PRAGMA journal_mode").fetchone()[0])


class StoreBase:
    """The connection, and the helpers each part of the store reads and writes with."""

    def __init__(self, db: Database, path: Path, *, read_only: bool = False) -> None:
        self.db = db
        self.path = path
        self.read_only = read_only  # opened from a file the user may only read
        self._savepoints = 0

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction, taken up front so a busy database waits instead of failing.

        Inside another transaction it is a savepoint of that one, so the pipeline can make a
        read and the write that depends on it one atomic step, and batch many feeds in one
        commit while an error on one of them undoes only that one.
        """
        if self.db.conn.in_transaction:
            # Nested: a savepoint, so an error undoes this part and the outer work goes on.
            self._savepoints += 1
            name = f"nested_{self._savepoints}"
            self.db.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                if self.db.conn.in_transaction:  # some errors end the whole transaction
                    self.db.execute(f"ROLLBACK TO {name}")
                    self.db.execute(f"RELEASE {name}")
                raise
            self.db.execute(f"RELEASE {name}")
            return
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise storage_error(self.path, e) from e
        try:
            yield
        except sqlite3.Error as e:
            self.db.rollback()
            raise storage_error(self.path, e) from e
        except BaseException:
            self.db.rollback()
            raise
        try:
            self.db.execute("COMMIT")
        except sqlite3.Error as e:
            self.db.rollback()
            raise storage_error(self.path, e) from e

    def _rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        try:
            return list(self.db.query(sql, params))
        except sqlite3.Error as e:
            raise storage_error(self.path, e) from e

    def _rows_in(
        self,
        sql: str,
        values: Iterable[Any],
        *,
        first: Sequence[Any] = (),
        last: Sequence[Any] = (),
    ) -> list[dict[str, Any]]:
        """``sql`` whose ``{marks}`` stands for the distinct ``values``, in chunks SQLite takes.

        ``first`` and ``last`` are parameters before and after the marks.
        """
        rows: list[dict[str, Any]] = []
        for statement, params in _statements_in(sql, values, first, last):
            rows += self._rows(statement, params)
        return rows

    def _execute_in(
        self,
        sql: str,
        values: Iterable[Any],
        *,
        first: Sequence[Any] = (),
        last: Sequence[Any] = (),
    ) -> int:
        """A write whose ``{marks}`` stands for the distinct ``values``, as ``_rows_in`` reads;
        return how many rows it changed."""
        changed = 0
        for statement, params in _statements_in(sql, values, first, last):
            changed += self.db.execute(statement, params).rowcount
        return changed

    def _one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> dict[str, Any] | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    def get_meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", [key])
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self._set_meta(key, value)

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            """INSERT INTO meta (key, value) VALUES (?, ?)
               ON CONFLICT(key) DO UPDATE SET value = excluded.value""",
            [key, value],
        )


def _statements_in(
    sql: str, values: Iterable[Any], first: Sequence[Any], last: Sequence[Any]
) -> Iterator[tuple[str, list[Any]]]:
    """Each chunk of the distinct ``values``: ``sql`` with its ``{marks}``, and the parameters."""
    distinct = list(dict.fromkeys(values))
    for start in range(0, len(distinct), CHUNK):
        chunk = distinct[start : start + CHUNK]
        yield sql.format(marks=",".join("?" * len(chunk))), [*first, *chunk, *last]


def storage_error(path: Path, error: sqlite3.Error) -> StorageError:
    """A SQLite error as the user can act on it: what it means, then SQLite's own words."""
    text = str(error)
    if "locked" in text or "busy" in text:
        hint = "another aggregator process holds the database; try again in a moment"
    elif "readonly" in text or "read-only" in text:
        hint = "the database file or its folder is read-only"
    elif "disk is full" in text or "full" in text:
        hint = "the disk is full"
    elif "disk I/O error" in text:
        hint = "the database could not be written: the disk is full, or failing"
    elif "not a database" in text or "malformed" in text:
        hint = "the file is not an aggregator database, or it is damaged"
    else:
        hint = text
    return StorageError(f"{path}: {hint} ({text})" if hint != text else f"{path}: {text}")
