"""Retention: saved articles, pruning in short transactions, seen records, and space given back.

Pruning goes a batch at a time, each batch one write transaction that removes whole articles
with all that hangs on them (sightings, headline keys, search rows, their place in a story),
then the stories left empty with their aliases, corrections and digest state. A crash between
batches leaves a consistent database, and the next prune goes on where this one stopped.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..dedupe import SeenRecord
from .base import StoreBase, as_dt, dt, ts
from .schema import INCREMENTAL, STORY_FIGURES

__all__ = ["PruneBatch", "RetentionStore", "SpaceFigures"]

log = logging.getLogger(__name__)

# The articles a batch removes, for a statement that names them ``:ids`` (a JSON list).
_BATCH = "(SELECT value FROM json_each(:ids))"
_PRUNABLE = "first_seen < :cutoff AND saved_at IS NULL"
_RECOUNT = "recount_stories"  # meta: stories whose figures a prune has yet to count again


@dataclass(frozen=True)
class PruneBatch:
    """One batch of a prune: what it removed, and how long it held the write lock."""

    articles: int
    stories: int
    seen_records: int
    seconds: float


@dataclass(frozen=True)
class SpaceFigures:
    """The database's size and contents, for `db stats`."""

    file_bytes: int  # the database file and its write-ahead log
    free_bytes: int  # pages free inside the file, which an incremental vacuum gives back
    articles: int
    saved: int
    stories: int
    seen_records: int
    oldest_article: datetime | None
    auto_vacuum: bool


class RetentionStore(StoreBase):
    """Saved flags, pruning by batches, the records of pruned items, vacuum and FTS merges."""

    # -- saved articles --

    def mark_saved(self, article_ids: Sequence[int], *, saved: bool, now: datetime) -> int:
        """Save or unsave articles; return how many changed."""
        with self.transaction():
            if saved:
                return self._execute_in(
                    "UPDATE articles SET saved_at = ? WHERE id IN ({marks}) AND saved_at IS NULL",
                    article_ids,
                    first=[ts(now)],
                )
            return self._execute_in(
                """UPDATE articles SET saved_at = NULL
                   WHERE id IN ({marks}) AND saved_at IS NOT NULL""",
                article_ids,
            )

    # -- pruning --

    def prune_preview(self, cutoff: datetime) -> tuple[int, int]:
        """How many articles and stories a prune with this cutoff would remove."""
        row = self._one(
            f"""WITH gone AS (SELECT id FROM articles WHERE {_PRUNABLE})
                SELECT (SELECT COUNT(*) FROM gone) AS articles,
                       (SELECT COUNT(*) FROM (
                          SELECT DISTINCT sa.story_id FROM story_articles sa
                          WHERE sa.article_id IN gone) s
                        WHERE NOT EXISTS (
                          SELECT 1 FROM story_articles kept
                          WHERE kept.story_id = s.story_id
                            AND kept.article_id NOT IN gone)) AS stories""",
            {"cutoff": ts(cutoff)},
        )
        assert row is not None
        return int(row["articles"]), int(row["stories"])

    def prune_batch(self, cutoff: datetime, limit: int, now: datetime) -> PruneBatch:
        """Remove up to ``limit`` of the oldest articles first seen before ``cutoff`` (saved
        ones never), in one transaction, with all that goes with them."""
        with self.transaction():
            started = time.perf_counter()
            ids = [
                row[0]
                for row in self.db.execute(
                    f"""SELECT id FROM articles WHERE {_PRUNABLE}
                        ORDER BY first_seen, id LIMIT :limit""",
                    {"cutoff": ts(cutoff), "limit": limit},
                )
            ]
            if not ids:
                return PruneBatch(0, 0, 0, time.perf_counter() - started)
            batch = {"ids": json.dumps(ids), "now": ts(now)}
            # What the feeds may still carry: remembered until they drop it (see dedupe).
            seen = self.db.execute(
                f"""INSERT OR IGNORE INTO feed_seen
                      (feed_id, item_key, canonical_url, content_hash, published, pruned_at)
                    SELECT i.feed_id, i.item_key, a.canonical_url, a.content_hash, a.published,
                           :now
                    FROM items i JOIN articles a ON a.id = i.article_id
                    WHERE i.article_id IN {_BATCH}""",
                batch,
            ).rowcount
            stories = [
                row[0]
                for row in self.db.execute(
                    f"SELECT DISTINCT story_id FROM story_articles WHERE article_id IN {_BATCH}",
                    batch,
                )
            ]
            for table in ("article_keys", "items", "story_articles"):
                self.db.execute(f"DELETE FROM {table} WHERE article_id IN {_BATCH}", batch)
            self.db.execute(f"DELETE FROM articles WHERE id IN {_BATCH}", batch)  # FTS: trigger
            emptied = self._drop_empty_stories(stories)
            # The stories that keep articles (newer ones, or saved ones) keep their id and
            # headline; their figures are counted again after the batches (recount_stories):
            # a long-running story loses a few articles in every batch, and counting its
            # tens of thousands each time would make every batch as slow as that.
            pending = set(json.loads(self.get_meta(_RECOUNT) or "[]"))
            pending |= {s for s in stories if s not in emptied}
            self._set_meta(_RECOUNT, json.dumps(sorted(pending)))
        return PruneBatch(len(ids), len(emptied), seen, time.perf_counter() - started)

    def recount_stories(self, seconds: float) -> tuple[int, float]:
        """Count again the figures of stories that pruning took articles from, in one
        transaction that stops after about ``seconds``; return how many are left to count, and
        how long the lock was held. The list is kept in ``meta``, so a crash loses none."""
        with self.transaction():
            started = time.perf_counter()
            pending = json.loads(self.get_meta(_RECOUNT) or "[]")
            while pending and time.perf_counter() - started < seconds:
                self.db.execute(f"UPDATE stories SET {STORY_FIGURES} WHERE id = ?", [pending.pop()])
            if pending:
                self._set_meta(_RECOUNT, json.dumps(pending))
            else:
                self.db.execute("DELETE FROM meta WHERE key = ?", [_RECOUNT])
        return len(pending), time.perf_counter() - started

    def _drop_empty_stories(self, story_ids: list[int]) -> set[int]:
        """Delete the stories left without articles, with their aliases, corrections and
        digest state; return their ids."""
        emptied = {
            row[0]
            for row in self.db.execute(
                """SELECT value FROM json_each(?) WHERE NOT EXISTS (
                     SELECT 1 FROM story_articles WHERE story_id = value)""",
                [json.dumps(story_ids)],
            )
        }
        if not emptied:
            return emptied
        named = {"ids": json.dumps(sorted(emptied))}
        aliases = [
            row[0]
            for row in self.db.execute(
                """SELECT alias_id FROM story_aliases
                   WHERE story_id IN (SELECT value FROM json_each(:ids))""",
                named,
            )
        ]
        every = {"ids": json.dumps(sorted({*emptied, *aliases}))}
        ids = "(SELECT value FROM json_each(:ids))"
        self.db.execute(f"DELETE FROM digest_stories WHERE story_id IN {ids}", every)
        self.db.execute(
            f"DELETE FROM stories_apart WHERE story_a IN {ids} OR story_b IN {ids}", named
        )
        self.db.execute(f"DELETE FROM story_aliases WHERE story_id IN {ids}", named)
        self.db.execute(f"DELETE FROM stories WHERE id IN {ids}", named)
        # Ids are never handed out again (store.stories: _new_story), removed ones included.
        self.db.execute(
            """INSERT INTO meta (key, value) VALUES ('pruned_story_id', :top)
               ON CONFLICT(key) DO UPDATE SET
                 value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))""",
            {"top": str(max({*emptied, *aliases}))},
        )
        return emptied

    # -- what pruned items' feeds still carry --

    def seen_records(self, feed_id: int) -> list[SeenRecord]:
        rows = self._rows(
            """SELECT item_key, canonical_url, content_hash, published FROM feed_seen
               WHERE feed_id = ?""",
            [feed_id],
        )
        return [
            SeenRecord(r["item_key"], r["canonical_url"], r["content_hash"], as_dt(r["published"]))
            for r in rows
        ]

    def forget_seen(self, feed_id: int, item_keys: Sequence[str]) -> int:
        """Drop the records of items the feed no longer carries."""
        return self._execute_in(
            "DELETE FROM feed_seen WHERE feed_id = ? AND item_key IN ({marks})",
            item_keys,
            first=[feed_id],
        )

    # -- space --

    def needs_vacuum_conversion(self) -> bool:
        """An older database, made before auto_vacuum: one VACUUM makes it incremental."""
        return bool(self.get_meta("convert_auto_vacuum")) or self._pragma("auto_vacuum") != (
            INCREMENTAL
        )

    def convert_to_incremental(self) -> bool:
        """Rebuild the file once with auto_vacuum = INCREMENTAL (it holds the database while
        it copies it: a one-off, after the first prune has made it as small as it gets).

        A VACUUM needs room for a copy of the database: without it, or while another process
        reads, it fails, and the next prune tries again; nothing else depends on it."""
        try:
            self.db.conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            self.db.conn.execute("VACUUM")
        except sqlite3.Error as e:
            log.warning("%s: could not rebuild the database yet (%s)", self.path, e)
            return False
        with self.transaction():
            self.db.execute("DELETE FROM meta WHERE key = 'convert_auto_vacuum'")
        return True

    def vacuum_step(self, pages: int) -> tuple[int, float]:
        """Give up to ``pages`` free pages back to the file system in one transaction; return
        the bytes freed and how long the lock was held."""
        before = self._pragma("freelist_count")
        if not before:
            return 0, 0.0
        started = time.perf_counter()
        # executescript steps the pragma to its end (execute() frees one page per step).
        self.db.conn.executescript(
            f"BEGIN IMMEDIATE; PRAGMA incremental_vacuum({int(pages)}); COMMIT;"
        )
        seconds = time.perf_counter() - started
        freed = before - self._pragma("freelist_count")
        return freed * self._pragma("page_size"), seconds

    def merge_search_index(self, pages: int) -> tuple[bool, float]:
        """One step of an FTS5 optimize (a negative 'merge'): at most about ``pages`` pages
        written, in one transaction. Returns whether it did any work, and the lock's time."""
        with self.transaction():
            started = time.perf_counter()
            before = self.db.conn.total_changes
            self.db.execute(
                "INSERT INTO articles_fts (articles_fts, rank) VALUES ('merge', ?)", [-pages]
            )
            worked = self.db.conn.total_changes - before > 1
        return worked, time.perf_counter() - started

    def checkpoint(self) -> None:
        """Fold the write-ahead log back into the file and truncate it, if no reader holds it."""
        self.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def space_figures(self) -> SpaceFigures:
        row = self._one(
            """SELECT (SELECT COUNT(*) FROM articles) AS articles,
                      (SELECT COUNT(*) FROM articles WHERE saved_at IS NOT NULL) AS saved,
                      (SELECT COUNT(*) FROM stories) AS stories,
                      (SELECT COUNT(*) FROM feed_seen) AS seen,
                      (SELECT MIN(first_seen) FROM articles) AS oldest"""
        )
        assert row is not None
        size = sum(
            p.stat().st_size
            for p in (self.path, self.path.with_name(self.path.name + "-wal"))
            if p.exists()
        )
        return SpaceFigures(
            file_bytes=size,
            free_bytes=self._pragma("freelist_count") * self._pragma("page_size"),
            articles=row["articles"],
            saved=row["saved"],
            stories=row["stories"],
            seen_records=row["seen"],
            oldest_article=dt(row["oldest"]),
            auto_vacuum=not self.needs_vacuum_conversion(),
        )

    # -- when --

    def last_prune(self) -> tuple[datetime | None, datetime | None]:
        """When the last prune finished, and the last FTS optimize."""
        return dt(self.get_meta("pruned_at")), dt(self.get_meta("search_optimized_at"))

    def pruned(self, now: datetime, *, optimized: bool) -> None:
        with self.transaction():
            self._set_meta("pruned_at", ts(now))
            if optimized:
                self._set_meta("search_optimized_at", ts(now))

    def _pragma(self, name: str) -> Any:
        return self.db.conn.execute(f"PRAGMA {name}").fetchone()[0]
