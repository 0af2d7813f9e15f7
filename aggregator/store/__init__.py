"""All SQL lives here: the SQLite schema, its numbered migrations, and every read and write.

The database is an ordinary SQLite file in WAL mode, readable with sqlite-utils and Datasette.
Times are stored as ISO 8601 UTC text (``2026-11-24T20:15:00+00:00``), which sorts correctly.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from ..config import ClusteringConfig
from ..dedupe import (
    IngestPlan,
    NearCandidate,
    StoredLink,
    duplicate_feeds,
    headline_keys,
)
from ..errors import NotFoundError, StorageError
from ..models import (
    Article,
    ArticleView,
    ClusterDoc,
    Duplicate,
    FeedConfig,
    FeedState,
    FeedStatus,
    FeedUpdate,
    FeedView,
    Highlight,
    QueuedMail,
    StoredStory,
    StoryPlacement,
    StoryView,
)
from ..ranking import StoryFigures, rank, story_status
from ..schedule import feed_health

__all__ = ["MIGRATIONS", "Store", "open_store"]

BUSY_TIMEOUT_MS = 5000
OUTBOX_KEEP = timedelta(days=30)  # how long sent digests stay in the outbox
DEFAULT_RECENT = ClusteringConfig().quiet_after
# Distinct feeds that carry a story's articles, copies included: its number of sources.
# A story's figures count only articles not muted (see Store.mute_articles).
# seen_at: when a sighting of one of its articles (the first, or a copy) was last stored.
_SEEN_AT = """SELECT MAX(i.first_seen) FROM story_articles sa
              JOIN articles a ON a.id = sa.article_id AND a.muted = 0
              JOIN items i ON i.article_id = sa.article_id WHERE sa.story_id = stories.id"""
_SOURCE_COUNT = """SELECT COUNT(DISTINCT i.feed_id) FROM story_articles sa
                   JOIN articles a ON a.id = sa.article_id AND a.muted = 0
                   JOIN items i ON i.article_id = sa.article_id WHERE sa.story_id = stories.id"""


def ts(value: datetime) -> str:
    """The one stored form of a time."""
    if value.tzinfo is None:
        raise ValueError("naive datetime")  # a bug: every time in aggregator is aware
    return value.astimezone(UTC).isoformat(timespec="seconds")


def dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


# --- migrations -------------------------------------------------------------------------------


def _m001_initial(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE feeds (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL UNIQUE,          -- as configured
            title TEXT,                        -- from the config
            feed_title TEXT,                   -- from the feed itself
            site_url TEXT,
            ttl_minutes INTEGER,               -- the feed's own <ttl>
            tags TEXT NOT NULL DEFAULT '[]',   -- JSON list
            enabled INTEGER NOT NULL DEFAULT 1,-- 0 once removed from the config
            effective_url TEXT,                -- after permanent redirects
            etag TEXT,
            last_modified TEXT,
            body_hash TEXT,                    -- sha256 of the last body parsed
            status TEXT NOT NULL DEFAULT 'new',
            gone INTEGER NOT NULL DEFAULT 0,   -- 410: never fetched again
            added_at TEXT NOT NULL,
            last_fetched_at TEXT,
            last_success_at TEXT,
            last_error TEXT,
            last_error_at TEXT,
            error_count INTEGER NOT NULL DEFAULT 0,
            next_due_at TEXT,
            retry_after_at TEXT,               -- a server's Retry-After, which even --all keeps
            fetch_count INTEGER NOT NULL DEFAULT 0,
            not_modified_count INTEGER NOT NULL DEFAULT 0,
            item_count INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE articles (
            id INTEGER PRIMARY KEY,
            feed_id INTEGER NOT NULL REFERENCES feeds(id),  -- where it was first seen
            guid TEXT,
            url TEXT,
            canonical_url TEXT,
            title TEXT NOT NULL,
            summary TEXT NOT NULL DEFAULT '',
            published TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            read INTEGER NOT NULL DEFAULT 0
        );
        CREATE UNIQUE INDEX articles_canonical_url ON articles(canonical_url)
            WHERE canonical_url IS NOT NULL;
        CREATE INDEX articles_published ON articles(published);
        CREATE INDEX articles_first_seen ON articles(first_seen);
        CREATE INDEX articles_feed ON articles(feed_id);
        -- Every sighting of an article in a feed: the original and each duplicate.
        CREATE TABLE items (
            id INTEGER PRIMARY KEY,
            feed_id INTEGER NOT NULL REFERENCES feeds(id),
            article_id INTEGER NOT NULL REFERENCES articles(id),
            item_key TEXT NOT NULL,            -- guid:, link: or hash: identity within the feed
            url TEXT,
            first_seen TEXT NOT NULL,
            UNIQUE (feed_id, item_key)
        );
        CREATE INDEX items_article ON items(article_id);
        CREATE TABLE stories (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL,
            terms TEXT NOT NULL DEFAULT '[]',  -- JSON list of key terms
            size INTEGER NOT NULL DEFAULT 0,
            source_count INTEGER NOT NULL DEFAULT 0,
            first_seen TEXT NOT NULL,          -- earliest article (published)
            last_seen TEXT NOT NULL,           -- latest article (published)
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX stories_last_seen ON stories(last_seen);
        CREATE INDEX stories_updated ON stories(updated_at);
        CREATE TABLE story_articles (
            article_id INTEGER PRIMARY KEY REFERENCES articles(id),
            story_id INTEGER NOT NULL REFERENCES stories(id),
            similarity REAL,                   -- what placed it; NULL for the article that began it
            added_at TEXT NOT NULL
        );
        CREATE INDEX story_articles_story ON story_articles(story_id);
        -- Ids of stories merged into another: the id keeps working, and leads to the survivor.
        CREATE TABLE story_aliases (
            alias_id INTEGER PRIMARY KEY,
            story_id INTEGER NOT NULL REFERENCES stories(id)
        );
        -- Running document frequencies for TF-IDF, so IDF follows the stream.
        CREATE TABLE term_df (term TEXT PRIMARY KEY, df INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """
    )
    db.table("articles").enable_fts(["title", "summary"], fts_version="FTS5", create_triggers=True)


def _m002_feed_pace(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        -- How often the feed publishes (seconds between items, from its dated items of the last
        -- week) and its newest item's date, as of the last time its document changed. A 304
        -- reuses them, so an unchanged feed costs no query.
        ALTER TABLE feeds ADD COLUMN pace_seconds REAL;
        ALTER TABLE feeds ADD COLUMN newest_item_at TEXT;
        """
    )


def _m003_story_corrections(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        -- Why each article is in its story (story --why): the terms it shared with the story
        -- when placed, the story it first joined or began, and who put it there.
        ALTER TABLE story_articles ADD COLUMN shared_terms TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE story_articles ADD COLUMN placed_in INTEGER;
        ALTER TABLE story_articles ADD COLUMN placed_by TEXT NOT NULL DEFAULT 'cluster';
        UPDATE story_articles SET placed_in = story_id;
        -- Stories the user split apart (story split, story move): never merged again.
        -- story_a < story_b; a merged story's pairs pass to the story it joined.
        CREATE TABLE stories_apart (
            story_a INTEGER NOT NULL,
            story_b INTEGER NOT NULL,
            PRIMARY KEY (story_a, story_b)
        ) WITHOUT ROWID;
        CREATE INDEX stories_apart_b ON stories_apart(story_b);
        """
    )


def _m004_terms_per_story(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        -- term_df now counts the stories that use a term, not the articles. Counts made the
        -- old way are recounted from the stored stories by the next clustering run.
        INSERT OR REPLACE INTO meta (key, value)
            SELECT 'recount_terms', '1' WHERE EXISTS (SELECT 1 FROM term_df);
        DELETE FROM term_df;
        """
    )


def _m005_headline_keys(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        -- Fingerprints of each article's headline (dedupe.headline_keys), to find a copy
        -- republished under another URL with a slug, an outlet's name or one word changed.
        CREATE TABLE article_keys (
            key INTEGER NOT NULL,
            article_id INTEGER NOT NULL REFERENCES articles(id),
            PRIMARY KEY (key, article_id)
        ) WITHOUT ROWID;
        -- Guid churn: an item under a new guid whose text this feed already gave us.
        CREATE INDEX articles_content_hash ON articles(content_hash);
        """
    )
    rows = db.execute("SELECT id, title, summary FROM articles").fetchall()
    db.conn.executemany(
        "INSERT OR IGNORE INTO article_keys (key, article_id) VALUES (?, ?)",
        [(key, id) for id, title, summary in rows for key in headline_keys(title, summary)],
    )


def _m006_digests(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        -- Who has had a digest, and when the last one was made.
        CREATE TABLE digest_recipients (
            recipient TEXT PRIMARY KEY,        -- a bare address, or 'print' for printed digests
            last_digest_at TEXT NOT NULL
        );
        -- What each recipient has been shown of each story: a story comes again only when it
        -- has more sources than this.
        CREATE TABLE digest_stories (
            recipient TEXT NOT NULL,
            story_id INTEGER NOT NULL,
            sources INTEGER NOT NULL,
            sent_at TEXT NOT NULL,
            PRIMARY KEY (recipient, story_id)
        ) WITHOUT ROWID;
        -- Mailed digests, stored whole before they are sent and marked once SMTP accepts them.
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            recipient TEXT NOT NULL,
            message_id TEXT NOT NULL UNIQUE,
            message BLOB NOT NULL,
            stories INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            sent_at TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_attempt_at TEXT,
            last_error TEXT
        );
        CREATE INDEX outbox_unsent ON outbox(recipient, id) WHERE sent_at IS NULL;
        -- A digest's stories: those with an article or a copy first seen since a time.
        CREATE INDEX items_first_seen ON items(first_seen);
        """
    )


def _m007_mute(db: sqlite_utils.Database) -> None:
    # Set from the config's mute rules (Store.mute_articles): a muted article stays in its
    # story for clustering, so unmuting gives the same stories back, but counts and shows nowhere.
    db.execute("ALTER TABLE articles ADD COLUMN muted INTEGER NOT NULL DEFAULT 0")


def _m008_story_seen_at(db: sqlite_utils.Database) -> None:
    # `stories --since` and digests pick stories by when we last saw an article of theirs: an
    # indexed column instead of a walk through every sighting of the window (see
    # benchmarks/stories_speed.py).
    db.execute("ALTER TABLE stories ADD COLUMN seen_at TEXT")
    db.execute(f"UPDATE stories SET seen_at = ({_SEEN_AT})")
    # Covering what ranking reads, so a wide window reads the index alone.
    db.execute(
        """CREATE INDEX stories_seen_at
           ON stories(seen_at, size, source_count, first_seen, last_seen)"""
    )


MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (
    _m001_initial,
    _m002_feed_pace,
    _m003_story_corrections,
    _m004_terms_per_story,
    _m005_headline_keys,
    _m006_digests,
    _m007_mute,
    _m008_story_seen_at,
)


class Store:
    """The aggregator database. Use ``open_store`` to get one."""

    def __init__(self, db: sqlite_utils.Database, path: Path) -> None:
        self.db = db
        self.path = path
        self._savepoints = 0

    # -- plumbing --

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
            raise _storage_error(self.path, e) from e
        try:
            yield
        except sqlite3.Error as e:
            self.db.rollback()
            raise _storage_error(self.path, e) from e
        except BaseException:
            self.db.rollback()
            raise
        try:
            self.db.execute("COMMIT")
        except sqlite3.Error as e:
            self.db.rollback()
            raise _storage_error(self.path, e) from e

    def _rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        try:
            return list(self.db.query(sql, params))
        except sqlite3.Error as e:
            raise _storage_error(self.path, e) from e

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
        for chunk in _chunks(list(dict.fromkeys(values)), 500):
            marks = ",".join("?" * len(chunk))
            rows += self._rows(sql.format(marks=marks), [*first, *chunk, *last])
        return rows

    def _one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> dict[str, Any] | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    def get_meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", [key])
        return row["value"] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            """INSERT INTO meta (key, value) VALUES (?, ?)
               ON CONFLICT(key) DO UPDATE SET value = excluded.value""",
            [key, value],
        )

    # -- feeds --

    def sync_feeds(self, feeds: Iterable[FeedConfig], now: datetime) -> None:
        """Make the feeds table match the config: add new feeds, disable removed ones."""
        feeds = list(feeds)
        with self.transaction():
            wanted = {f.url for f in feeds}
            for feed in feeds:
                self.db.execute(
                    """INSERT INTO feeds (url, title, tags, added_at, enabled)
                       VALUES (?, ?, ?, ?, 1)
                       ON CONFLICT(url) DO UPDATE SET
                         title = excluded.title, tags = excluded.tags, enabled = 1,
                         -- a gone feed removed and added again gets another chance
                         gone = CASE WHEN feeds.enabled = 0 THEN 0 ELSE feeds.gone END""",
                    [feed.url, feed.title, json.dumps(list(feed.tags)), ts(now)],
                )
            for row in self._rows("SELECT id, url FROM feeds WHERE enabled = 1"):
                if row["url"] not in wanted:
                    self.db.execute("UPDATE feeds SET enabled = 0 WHERE id = ?", [row["id"]])

    def feeds(self, *, enabled_only: bool = True) -> list[FeedState]:
        where = "WHERE enabled = 1" if enabled_only else ""
        return [_feed_state(r) for r in self._rows(f"SELECT * FROM feeds {where} ORDER BY id")]

    def feed_views(self, now: datetime) -> list[FeedView]:
        """Every enabled feed with its polling state, for `feeds list`."""
        rows = self._rows("SELECT * FROM feeds WHERE enabled = 1 ORDER BY id")
        duplicates = duplicate_feeds([_feed_state(r) for r in rows if not r["gone"]])
        views = []
        for r in rows:
            retry_after = dt(r["retry_after_at"])
            views.append(
                FeedView(
                    url=r["url"],
                    effective_url=r["effective_url"],
                    title=r["title"] or r["feed_title"],
                    tags=tuple(json.loads(r["tags"] or "[]")),
                    status=feed_health(
                        status=r["status"],
                        error_count=r["error_count"],
                        gone=bool(r["gone"]),
                        retry_after=retry_after,
                        duplicate_of=duplicates.get(r["id"]),
                        now=now,
                    ),
                    last_success=dt(r["last_success_at"]),
                    last_error=r["last_error"],
                    last_error_at=dt(r["last_error_at"]),
                    error_count=r["error_count"],
                    next_due=None if r["gone"] or r["id"] in duplicates else dt(r["next_due_at"]),
                    item_count=r["item_count"],
                    fetch_count=r["fetch_count"],
                    not_modified_count=r["not_modified_count"],
                    retry_after=retry_after if retry_after and retry_after > now else None,
                    duplicate_of=duplicates.get(r["id"]),
                )
            )
        return views

    def due_feeds(self, now: datetime, *, ignore_schedule: bool = False) -> list[FeedState]:
        """Feeds to fetch now.

        Gone feeds, a server's Retry-After and feeds that moved onto another feed of the list
        are always respected; ``ignore_schedule`` (``poll --all``) drops only our own schedule.
        """
        feeds = [
            _feed_state(r)
            for r in self._rows("SELECT * FROM feeds WHERE enabled = 1 AND gone = 0 ORDER BY id")
        ]
        duplicates = duplicate_feeds(feeds)
        return [
            f
            for f in feeds
            if f.id not in duplicates
            and (f.retry_after is None or f.retry_after <= now)
            and (ignore_schedule or f.next_due is None or f.next_due <= now)
        ]

    def recent_publications(self, feed_id: int, since: datetime) -> dict[str, datetime]:
        """When the dated items this feed carried since ``since`` were published, by item key.

        Items without a date of their own (dated when first seen) say nothing of the pace.
        """
        rows = self._rows(
            """SELECT i.item_key, a.published FROM items i JOIN articles a ON a.id = i.article_id
               WHERE i.feed_id = ? AND a.published >= ? AND a.published <> a.first_seen""",
            [feed_id, ts(since)],
        )
        return {r["item_key"]: _dt(r["published"]) for r in rows}

    def known_items(self, feed_id: int, keys: Iterable[str]) -> set[str]:
        rows = self._rows_in(
            "SELECT item_key FROM items WHERE feed_id = ? AND item_key IN ({marks})",
            keys,
            first=[feed_id],
        )
        return {r["item_key"] for r in rows}

    def articles_by_canonical(self, urls: Iterable[str]) -> dict[str, StoredLink]:
        rows = self._rows_in(
            """SELECT id, feed_id, guid, content_hash, canonical_url FROM articles
               WHERE canonical_url IN ({marks})""",
            urls,
        )
        return {
            r["canonical_url"]: StoredLink(r["id"], r["feed_id"], r["guid"], r["content_hash"])
            for r in rows
        }

    def known_texts(self, feed_id: int, hashes: Iterable[str]) -> dict[str, set[datetime]]:
        """Of these content hashes, those of articles this feed carried, with their dates."""
        found: dict[str, set[datetime]] = {}
        rows = self._rows_in(
            """SELECT a.content_hash, a.published FROM articles a
               JOIN items i ON i.article_id = a.id
               WHERE a.content_hash IN ({marks}) AND i.feed_id = ?""",
            hashes,
            last=[feed_id],
        )
        for r in rows:
            found.setdefault(r["content_hash"], set()).add(_dt(r["published"]))
        return found

    def near_candidates(
        self, keys: Iterable[int], *, since: datetime | None = None
    ) -> dict[int, list[NearCandidate]]:
        """The stored articles with each headline fingerprint, published ``since`` if given."""
        found: dict[int, list[NearCandidate]] = {}
        rows = self._rows_in(
            """SELECT k.key, a.id, a.feed_id, a.title, a.summary, a.published
               FROM article_keys k JOIN articles a ON a.id = k.article_id
               WHERE k.key IN ({marks}) AND a.published >= ?""",
            keys,
            last=[ts(since) if since else ""],
        )
        for r in rows:
            found.setdefault(r["key"], []).append(
                NearCandidate(
                    article_id=r["id"],
                    feed_id=r["feed_id"],
                    title=r["title"],
                    summary=r["summary"],
                    published=_dt(r["published"]),
                )
            )
        return found

    def save_poll(self, feed_id: int, plan: IngestPlan | None, update: FeedUpdate) -> list[int]:
        """Store a feed's new articles and its fetch state together; return the new article ids.

        Validators (ETag, Last-Modified, body hash) are written in the same transaction as the
        entries, so a crash can never save them without the articles they describe.
        """
        new_ids: list[int] = []
        with self.transaction():
            if plan is not None:
                for article in plan.new:
                    new_ids.append(self._insert_article(feed_id, article))
                self.db.conn.executemany(
                    "INSERT OR IGNORE INTO article_keys (key, article_id) VALUES (?, ?)",
                    [
                        (key, article_id)
                        for article_id, keys in zip(new_ids, plan.new_keys, strict=False)
                        for key in keys
                    ],
                )
                for article, original_id in plan.duplicates:
                    self._insert_item(feed_id, original_id, article)
                # A copy seen in another feed adds an outlet to its article's story.
                self._recount_sources([original for _, original in plan.duplicates])
            self._update_feed(feed_id, update, entries=len(new_ids))
        return new_ids

    def _recount_sources(self, article_ids: list[int]) -> None:
        for chunk in _chunks(article_ids, 500):
            marks = ",".join("?" * len(chunk))
            self.db.execute(
                f"""UPDATE stories SET source_count = ({_SOURCE_COUNT}), seen_at = ({_SEEN_AT})
                    WHERE id IN (
                      SELECT story_id FROM story_articles WHERE article_id IN ({marks}))""",
                chunk,
            )

    def _insert_article(self, feed_id: int, article: Article) -> int:
        cursor = self.db.execute(
            """INSERT INTO articles (feed_id, guid, url, canonical_url, title, summary, published,
                                     first_seen, content_hash)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                feed_id,
                article.guid,
                article.url,
                article.canonical_url,
                article.title,
                article.summary,
                ts(article.published),
                ts(article.first_seen),
                article.content_hash,
            ],
        )
        article_id = int(cursor.lastrowid or 0)
        self._insert_item(feed_id, article_id, article)
        return article_id

    def _insert_item(self, feed_id: int, article_id: int, article: Article) -> None:
        self.db.execute(
            """INSERT OR IGNORE INTO items (feed_id, article_id, item_key, url, first_seen)
               VALUES (?, ?, ?, ?, ?)""",
            [feed_id, article_id, article.item_key, article.url, ts(article.first_seen)],
        )

    def _update_feed(self, feed_id: int, u: FeedUpdate, *, entries: int) -> None:
        ok = u.status in (FeedStatus.OK, FeedStatus.NOT_MODIFIED)
        self.db.execute(
            """UPDATE feeds SET
                 status = :status,
                 last_fetched_at = :fetched,
                 next_due_at = :next_due,
                 retry_after_at = :retry_after,
                 fetch_count = fetch_count + 1,
                 not_modified_count = not_modified_count + :nm,
                 item_count = item_count + :entries,
                 gone = MAX(gone, :gone),
                 last_success_at = CASE WHEN :ok THEN :fetched ELSE last_success_at END,
                 error_count = CASE WHEN :ok THEN 0 ELSE error_count + :counts END,
                 last_error = CASE WHEN :ok THEN last_error ELSE :error END,
                 last_error_at = CASE WHEN :ok THEN last_error_at ELSE :fetched END,
                 etag = CASE WHEN :ok AND :etag IS NOT NULL THEN :etag ELSE etag END,
                 last_modified = CASE WHEN :ok AND :lm IS NOT NULL THEN :lm ELSE last_modified END,
                 body_hash = COALESCE(:body_hash, body_hash),
                 effective_url = COALESCE(:effective_url, effective_url),
                 feed_title = COALESCE(:title, feed_title),
                 site_url = COALESCE(:site_url, site_url),
                 ttl_minutes = CASE WHEN :body_hash IS NOT NULL THEN :ttl ELSE ttl_minutes END,
                 pace_seconds = CASE WHEN :body_hash IS NOT NULL THEN :pace ELSE pace_seconds END,
                 newest_item_at = COALESCE(:newest, newest_item_at)
               WHERE id = :id""",
            {
                "id": feed_id,
                "status": str(u.status),
                "fetched": ts(u.fetched_at),
                "next_due": ts(u.next_due),
                "retry_after": ts(u.retry_after) if u.retry_after else None,
                "nm": int(u.status == FeedStatus.NOT_MODIFIED),
                "entries": entries,
                "gone": int(u.gone),
                "ok": int(ok),
                "counts": int(u.counts_as_failure),
                "error": u.error,
                "etag": u.etag,
                "lm": u.last_modified,
                "body_hash": u.body_hash,
                "effective_url": u.effective_url,
                "title": u.title,
                "site_url": u.site_url,
                "ttl": u.ttl_minutes,
                "pace": u.pace.total_seconds() if u.pace is not None else None,
                "newest": ts(u.newest_item) if u.newest_item else None,
            },
        )

    def failing_feeds(self, *, since: datetime) -> list[tuple[str, str]]:
        """Feeds with no success since ``since`` that have failed: (name, last error)."""
        rows = self._rows(
            """SELECT COALESCE(title, feed_title, url) AS name, last_error FROM feeds
               WHERE enabled = 1 AND error_count > 0 AND last_error IS NOT NULL
                 AND COALESCE(last_success_at, added_at) < ?
               ORDER BY name""",
            [ts(since)],
        )
        return [(r["name"], r["last_error"]) for r in rows]

    # -- digests and the outbox --

    def last_digest_at(self, recipient: str) -> datetime | None:
        row = self._one(
            "SELECT last_digest_at FROM digest_recipients WHERE recipient = ?", [recipient]
        )
        return _dt(row["last_digest_at"]) if row else None

    def shown_sources(self, recipient: str, story_ids: Sequence[int]) -> dict[int, int]:
        """How many sources each story had when ``recipient`` last saw it in a digest.

        A story merged into another counts for the survivor (the most sources either showed).
        """
        wanted = list(story_ids)
        aliases = self._rows_in(
            "SELECT alias_id, story_id FROM story_aliases WHERE story_id IN ({marks})", wanted
        )
        survivor = {r["alias_id"]: r["story_id"] for r in aliases} | {i: i for i in wanted}
        rows = self._rows_in(
            """SELECT story_id, sources FROM digest_stories
               WHERE recipient = ? AND story_id IN ({marks})""",
            survivor,
            first=[recipient],
        )
        shown: dict[int, int] = {}
        for r in rows:
            story = survivor[r["story_id"]]
            shown[story] = max(shown.get(story, 0), r["sources"])
        return shown

    def record_digest(
        self,
        recipient: str,
        shown: Iterable[tuple[int, int]],
        now: datetime,
        *,
        mail: tuple[str, bytes, int] | None = None,
    ) -> int | None:
        """Remember what ``recipient`` was shown, as (story id, sources), in one transaction
        with the message that shows it: ``mail`` is (Message-ID, message, story count) and
        goes into the outbox, whose row id is returned."""
        with self.transaction():
            self.db.execute(
                """INSERT INTO digest_recipients (recipient, last_digest_at) VALUES (?, ?)
                   ON CONFLICT (recipient)
                   DO UPDATE SET last_digest_at = excluded.last_digest_at""",
                [recipient, ts(now)],
            )
            self.db.conn.executemany(
                """INSERT OR REPLACE INTO digest_stories (recipient, story_id, sources, sent_at)
                   VALUES (?, ?, ?, ?)""",
                [(recipient, story, sources, ts(now)) for story, sources in shown],
            )
            # Sent digests are kept a month (to see what went out), then dropped.
            self.db.execute(
                "DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?",
                [ts(now - OUTBOX_KEEP)],
            )
            if mail is None:
                return None
            message_id, message, stories = mail
            cursor = self.db.execute(
                """INSERT INTO outbox (recipient, message_id, message, stories, created_at)
                   VALUES (?, ?, ?, ?, ?)""",
                [recipient, message_id, message, stories, ts(now)],
            )
            return int(cursor.lastrowid or 0)

    def unsent_mail(self, recipients: Iterable[str]) -> list[QueuedMail]:
        """Digests in the outbox not yet accepted by SMTP, oldest first."""
        rows = self._rows_in(
            """SELECT * FROM outbox WHERE sent_at IS NULL AND recipient IN ({marks})
               ORDER BY id""",
            recipients,
        )
        return [
            QueuedMail(
                id=r["id"],
                recipient=r["recipient"],
                message_id=r["message_id"],
                message=bytes(r["message"]),
                stories=r["stories"],
                created_at=_dt(r["created_at"]),
                attempts=r["attempts"],
                last_error=r["last_error"],
            )
            for r in sorted(rows, key=lambda r: r["id"])
        ]

    def mail_attempted(self, mail_id: int, now: datetime, *, error: str | None = None) -> None:
        """Record a send: sent when ``error`` is None, else kept for the next run to retry."""
        with self.transaction():
            self.db.execute(
                """UPDATE outbox SET attempts = attempts + 1, last_attempt_at = :now,
                     last_error = :error,
                     sent_at = CASE WHEN :error IS NULL THEN :now ELSE NULL END
                   WHERE id = :id""",
                {"id": mail_id, "now": ts(now), "error": error},
            )

    # -- clustering state --

    def document_frequencies(self, terms: Iterable[str]) -> dict[str, int]:
        rows = self._rows_in("SELECT term, df FROM term_df WHERE term IN ({marks})", terms)
        return {r["term"]: r["df"] for r in rows}

    def replace_term_frequencies(self, frequencies: dict[str, int]) -> None:
        """Start the frequencies afresh (the recount after migration 4)."""
        with self.transaction():
            self.db.execute("DELETE FROM term_df")
            self.db.conn.executemany(
                "INSERT INTO term_df (term, df) VALUES (?, ?)", list(frequencies.items())
            )
            self.db.execute("DELETE FROM meta WHERE key = 'recount_terms'")

    def clustered(self) -> list[ClusterDoc]:
        """Every article in a story, as the clusterer sees it."""
        rows = self._rows(
            """SELECT a.id, a.title, a.summary, a.published, a.muted, sa.story_id,
                      COALESCE(f.title, f.feed_title, f.url) AS source
               FROM story_articles sa JOIN articles a ON a.id = sa.article_id
               JOIN feeds f ON f.id = a.feed_id"""
        )
        return [_doc(r) for r in rows]

    def document_count(self) -> int:
        return int(self.get_meta("documents") or 0)

    def unclustered(self) -> list[ClusterDoc]:
        """Articles in no story yet, in time order.

        A clustering run places every article stored before it, and ids only grow, so only
        ids above the highest placed one need looking at: no scan of the whole history.
        """
        rows = self._rows(
            """SELECT a.id, a.title, a.summary, a.published, a.muted, NULL AS story_id,
                      COALESCE(f.title, f.feed_title, f.url) AS source
               FROM articles a JOIN feeds f ON f.id = a.feed_id
               WHERE a.id > (SELECT COALESCE(MAX(article_id), 0) FROM story_articles)
                 AND NOT EXISTS (SELECT 1 FROM story_articles sa WHERE sa.article_id = a.id)
               ORDER BY a.published, a.id"""
        )
        return [_doc(r) for r in rows]

    def active(self, since: datetime) -> list[ClusterDoc]:
        """Articles of stories still open to new articles: last seen at or after ``since``."""
        rows = self._rows(
            """SELECT a.id, a.title, a.summary, a.published, a.muted, sa.story_id,
                      COALESCE(f.title, f.feed_title, f.url) AS source
               FROM stories s
               -- CROSS JOIN keeps this order: from the few active stories to their articles
               -- (left to itself, SQLite walks every article by date).
               CROSS JOIN story_articles sa ON sa.story_id = s.id
               CROSS JOIN articles a ON a.id = sa.article_id
               JOIN feeds f ON f.id = a.feed_id
               WHERE s.last_seen >= ?
               ORDER BY a.published, a.id""",
            [ts(since)],
        )
        return [_doc(r) for r in rows]

    def save_clustering(
        self,
        *,
        placements: Sequence[StoryPlacement],
        new_story_keys: dict[int, int],
        merged: Sequence[tuple[int, int]] = (),
        stories: Sequence[StoredStory],
        df_increments: dict[str, int],
        documents: int,
        now: datetime,
    ) -> dict[int, int]:
        """Write placements and story summaries.

        A story key is a stored story id, or a negative key for a story the clusterer just
        began; ``new_story_keys`` maps each such key to the article that began it. ``merged``
        lists ``(survivor_key, absorbed_id)`` for stored stories folded into another: their
        articles move, and their id becomes an alias. Returns the mapping from new keys to ids.
        """
        ids: dict[int, int] = {}
        with self.transaction():
            for key, founder in new_story_keys.items():
                ids[key] = self._new_story(founder, now)
            for p in placements:
                target = ids.get(p.story, p.story)
                # A story begun and absorbed within this run never had an id of its own.
                placed_in = ids.get(p.placed_in, p.placed_in if p.placed_in > 0 else target)
                self.db.execute(
                    """INSERT INTO story_articles
                         (article_id, story_id, similarity, added_at, shared_terms, placed_in)
                       VALUES (?, ?, ?, ?, ?, ?)
                       ON CONFLICT(article_id) DO UPDATE SET
                         story_id = excluded.story_id, similarity = excluded.similarity,
                         shared_terms = excluded.shared_terms, placed_in = excluded.placed_in,
                         placed_by = 'cluster'""",
                    [
                        p.article,
                        target,
                        p.similarity,
                        ts(now),
                        json.dumps(p.shared_terms),
                        placed_in,
                    ],
                )
            for survivor, absorbed in merged:
                self._fold_story(absorbed, into=ids.get(survivor, survivor))
            for story in stories:
                self._refresh_story(ids.get(story.id, story.id), story, now)
            for term, inc in df_increments.items():
                self.db.execute(
                    """INSERT INTO term_df (term, df) VALUES (?, ?)
                       ON CONFLICT(term) DO UPDATE SET df = df + excluded.df""",
                    [term, inc],
                )
            self._set_meta("documents", str(documents))
        return ids

    def _new_story(self, founder: int, now: datetime) -> int:
        # Never reuse an id: a merged story's id lives on as an alias, and SQLite would hand
        # out the highest id again once that story's row is gone.
        cursor = self.db.execute(
            """INSERT INTO stories (id, title, first_seen, last_seen, created_at, updated_at)
               SELECT 1 + MAX(COALESCE((SELECT MAX(id) FROM stories), 0),
                              COALESCE((SELECT MAX(alias_id) FROM story_aliases), 0)),
                      title, published, published, ?, ? FROM articles WHERE id = ?""",
            [ts(now), ts(now), founder],
        )
        return int(cursor.lastrowid or 0)

    def _fold_story(self, absorbed: int, *, into: int) -> None:
        """Move a story's articles into another; its id becomes an alias of that one."""
        self.db.execute(
            "UPDATE story_articles SET story_id = ? WHERE story_id = ?", [into, absorbed]
        )
        self.db.execute(
            "UPDATE story_aliases SET story_id = ? WHERE story_id = ?", [into, absorbed]
        )
        self.db.execute(
            "INSERT OR REPLACE INTO story_aliases (alias_id, story_id) VALUES (?, ?)",
            [absorbed, into],
        )
        # What the user kept apart from the absorbed story stays apart from the survivor.
        for other in self._apart_from(absorbed):
            self.db.execute(
                "DELETE FROM stories_apart WHERE story_a = ? AND story_b = ?",
                [min(absorbed, other), max(absorbed, other)],
            )
            if other != into:
                self._keep_apart(into, other)
        self.db.execute("DELETE FROM stories WHERE id = ?", [absorbed])

    def _apart_from(self, story_id: int) -> list[int]:
        rows = self._rows(
            """SELECT story_b AS other FROM stories_apart WHERE story_a = :id
               UNION SELECT story_a FROM stories_apart WHERE story_b = :id""",
            {"id": story_id},
        )
        return [r["other"] for r in rows]

    def _keep_apart(self, a: int, b: int) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO stories_apart (story_a, story_b) VALUES (?, ?)",
            [min(a, b), max(a, b)],
        )

    def stories_apart(self) -> list[tuple[int, int]]:
        """Every pair of stories the user split apart."""
        return [(r["story_a"], r["story_b"]) for r in self._rows("SELECT * FROM stories_apart")]

    def _refresh_story(self, story_id: int, story: StoredStory, now: datetime) -> None:
        self.db.execute(
            f"""UPDATE stories SET
                 title = ?, terms = ?, updated_at = ?,
                 size = (
                   SELECT COUNT(*) FROM story_articles sa JOIN articles a ON a.id = sa.article_id
                   WHERE sa.story_id = stories.id AND a.muted = 0),
                 source_count = ({_SOURCE_COUNT}),
                 seen_at = ({_SEEN_AT}),
                 -- Of every article, muted or not: clustering reads them (which stories are
                 -- still open to articles), and muting must not change where articles go.
                 first_seen = (
                   SELECT MIN(a.published) FROM story_articles sa
                   JOIN articles a ON a.id = sa.article_id WHERE sa.story_id = stories.id),
                 last_seen = (
                   SELECT MAX(a.published) FROM story_articles sa
                   JOIN articles a ON a.id = sa.article_id WHERE sa.story_id = stories.id)
               WHERE id = ?""",
            [story.title, json.dumps(list(story.terms)), ts(now), story_id],
        )

    # -- corrections --

    def resolve_story(self, story_id: int) -> int:
        """The id of the story ``story_id`` is now (itself, or the story it was merged into)."""
        row = self._one(
            """SELECT id FROM stories WHERE id = COALESCE(
                 (SELECT story_id FROM story_aliases WHERE alias_id = :id), :id)""",
            {"id": story_id},
        )
        if row is None:
            raise NotFoundError(f"no story with id {story_id}")
        return int(row["id"])

    def story_articles(self, story_id: int) -> list[int]:
        """The ids of a story's articles; a merged story's id leads to the survivor."""
        rows = self._rows(
            "SELECT article_id FROM story_articles WHERE story_id = ? ORDER BY article_id",
            [self.resolve_story(story_id)],
        )
        return [r["article_id"] for r in rows]

    def mark_read(self, article_ids: Sequence[int], *, read: bool) -> int:
        """Mark articles read or unread (an article is one row however many feeds carry it, so
        its copies go with it); return how many changed."""
        changed = 0
        with self.transaction():
            for chunk in _chunks(list(article_ids), 500):
                marks = ",".join("?" * len(chunk))
                cursor = self.db.execute(
                    f"UPDATE articles SET read = ? WHERE id IN ({marks}) AND read != ?",
                    [int(read), *chunk, int(read)],
                )
                changed += cursor.rowcount
        return changed

    def stories_of(self, article_ids: Sequence[int]) -> dict[int, int | None]:
        """The story each article is in (None when not placed yet); unknown ids are an error."""
        rows = self._rows_in(
            """SELECT a.id, sa.story_id FROM articles a
               LEFT JOIN story_articles sa ON sa.article_id = a.id
               WHERE a.id IN ({marks})""",
            article_ids,
        )
        found: dict[int, int | None] = {r["id"]: r["story_id"] for r in rows}
        missing = [str(i) for i in article_ids if i not in found]
        if missing:
            raise NotFoundError(f"no article with id {', '.join(missing)}")
        return found

    def merge_stories(self, survivor: int, absorbed: Iterable[int]) -> None:
        """The user's merge: the other stories' articles join ``survivor``; ids become aliases."""
        with self.transaction():
            for story_id in absorbed:
                # The user's latest word wins over an earlier split of these two.
                self.db.execute(
                    "DELETE FROM stories_apart WHERE story_a = ? AND story_b = ?",
                    [min(survivor, story_id), max(survivor, story_id)],
                )
                self._fold_story(story_id, into=survivor)

    def move_articles(self, article_ids: Sequence[int], *, to: int | None, now: datetime) -> int:
        """The user's move: put articles in story ``to``, or in a new story when None.

        The stories they came from are kept apart from it from now on, so clustering never
        undoes the move by merging them back; a story left empty becomes an alias of ``to``.
        Returns the story they are in now.
        """
        with self.transaction():
            origins = set(self.stories_of(article_ids).values()) - {None, to}
            target = to if to is not None else self._new_story(article_ids[0], now)
            for chunk in _chunks(list(article_ids), 500):
                marks = ",".join("?" * len(chunk))
                self.db.execute(
                    f"""INSERT INTO story_articles (article_id, story_id, similarity, added_at,
                                                    shared_terms, placed_in, placed_by)
                        SELECT id, ?, NULL, ?, '[]', ?, 'user' FROM articles WHERE id IN ({marks})
                        ON CONFLICT(article_id) DO UPDATE SET
                          story_id = excluded.story_id, similarity = NULL, shared_terms = '[]',
                          placed_in = excluded.placed_in, placed_by = 'user'""",
                    [target, ts(now), target, *chunk],
                )
            for origin in origins:
                assert origin is not None
                left = self._one("SELECT 1 FROM story_articles WHERE story_id = ?", [origin])
                if left is None:
                    self._fold_story(origin, into=target)
                else:
                    self._keep_apart(origin, target)
        return target

    def story_docs(self, story_ids: Iterable[int]) -> list[ClusterDoc]:
        """The articles of these stories as the clusterer sees them, in time order."""
        rows = self._rows_in(
            """SELECT a.id, a.title, a.summary, a.published, a.muted, sa.story_id,
                      COALESCE(f.title, f.feed_title, f.url) AS source
               FROM story_articles sa JOIN articles a ON a.id = sa.article_id
               JOIN feeds f ON f.id = a.feed_id
               WHERE sa.story_id IN ({marks})""",
            story_ids,
        )
        return sorted((_doc(r) for r in rows), key=lambda d: (d.published, d.key))

    def refresh_stories(self, summaries: Iterable[StoredStory], now: datetime) -> None:
        """Write new headlines and terms, and recount each story's figures."""
        with self.transaction():
            for story in summaries:
                self._refresh_story(story.id, story, now)

    def mute_articles(self, terms: str | None, feeds: Sequence[str], *, rules: str) -> list[int]:
        """Bring every article's muted flag in line with the mute rules; return the stories
        whose articles changed, which need their figures and headline worked out again.

        ``terms`` is an FTS5 query that mutes what it matches; an article is muted by
        ``feeds`` (URLs) when every feed that carries it is one of them. ``rules`` names the
        rules: while it stays the same, only articles with a sighting newer than the last call
        are looked at, so a poll costs a few rows, and a change of rules looks at everything.
        """
        with self.transaction():
            current, same, through, last_item = self._muted_up_to_date(rules)
            if current:
                return []
            params: dict[str, Any] = {"through": through}
            scope = "a.id IN (SELECT article_id FROM items WHERE id > :through)" if same else "1"
            muted = []
            if terms:
                muted.append("a.id IN (SELECT rowid FROM articles_fts WHERE articles_fts MATCH :q)")
                params["q"] = terms
            if feeds:
                muted.append(
                    """NOT EXISTS (SELECT 1 FROM items i JOIN feeds f ON f.id = i.feed_id
                                   WHERE i.article_id = a.id
                                     AND f.url NOT IN (SELECT value FROM json_each(:feeds)))"""
                )
                params["feeds"] = json.dumps(list(feeds))
            rule = " OR ".join(f"({m})" for m in muted) or "0"
            flipped = self._rows(
                f"""SELECT a.id, sa.story_id FROM articles a
                    LEFT JOIN story_articles sa ON sa.article_id = a.id
                    WHERE {scope} AND a.muted != ({rule})""",
                params,
            )
            for chunk in _chunks([r["id"] for r in flipped], 500):
                marks = ",".join("?" * len(chunk))
                flip = f"UPDATE articles SET muted = 1 - muted WHERE id IN ({marks})"
                self.db.execute(flip, chunk)
            self._set_meta("mute_rules", rules)
            self._set_meta("muted_through", str(last_item))
        return sorted({r["story_id"] for r in flipped if r["story_id"] is not None})

    def mute_is_current(self, rules: str) -> bool:
        """Whether the muted flags follow these rules and every sighting stored."""
        return self._muted_up_to_date(rules)[0]

    def _muted_up_to_date(self, rules: str) -> tuple[bool, bool, int, int]:
        """Whether the flags are current; whether the rules are the same, and the last item
        looked at and the newest one."""
        row = self._one(
            """SELECT (SELECT COALESCE(MAX(id), 0) FROM items) AS newest,
                      (SELECT value FROM meta WHERE key = 'mute_rules') AS rules,
                      (SELECT value FROM meta WHERE key = 'muted_through') AS through"""
        )
        assert row is not None
        same = (row["rules"] or "") == rules
        through = int(row["through"] or 0)
        # Without rules nothing new is muted (the flag starts at 0): nothing to look at.
        current = same and (through >= row["newest"] or not rules)
        return current, same, through, row["newest"]

    # -- browsing --

    def stories(
        self,
        *,
        since: datetime | None,
        min_size: int,
        limit: int,
        now: datetime | None = None,
        recent: timedelta = DEFAULT_RECENT,
        with_articles: bool = True,
        unread: bool = False,
        feeds: Sequence[str] = (),
        tags: Sequence[str] = (),
    ) -> list[StoryView]:
        """Stories with an article, or a copy of one in another feed, first seen since
        ``since``, best first (see aggregator.ranking). ``min_size`` is the fewest articles or
        sources: a wire article carried by three outlets is one article with three sources.

        ``recent`` is how far back velocity counts articles, and how long a story stays new or
        growing without another article. ``unread`` keeps stories with an article not read;
        ``feeds`` (URLs or titles) and ``tags`` keep stories that one of those feeds carries.
        """
        now = now or datetime.now(UTC)
        params: dict[str, Any] = {"min_size": min_size}
        # Only what ranking needs, for every candidate; the rest for the few shown.
        chosen = """SELECT s.id, s.size, s.source_count, s.first_seen, s.last_seen
                    FROM stories s WHERE (s.size >= :min_size OR s.source_count >= :min_size)"""
        if since is not None:
            chosen += " AND s.seen_at >= :since"
            params["since"] = ts(since)
        if unread:
            chosen += """ AND s.id IN (SELECT sa.story_id FROM story_articles sa
                                         JOIN articles a ON a.id = sa.article_id
                                         WHERE a.read = 0 AND a.muted = 0)"""
        if feeds or tags:
            params["feeds"] = json.dumps(list(feeds))
            params["tags"] = json.dumps(list(tags))
            chosen += """ AND s.id IN (
                SELECT sa.story_id FROM story_articles sa
                JOIN items i ON i.article_id = sa.article_id JOIN feeds f ON f.id = i.feed_id
                JOIN articles a ON a.id = sa.article_id
                WHERE a.muted = 0 AND (f.url IN (SELECT value FROM json_each(:feeds))
                   OR COALESCE(f.title, f.feed_title) IN (SELECT value FROM json_each(:feeds))
                   OR EXISTS (SELECT 1 FROM json_each(f.tags)
                              WHERE value IN (SELECT value FROM json_each(:tags)))))"""
        try:  # tuples straight from sqlite3: tens of thousands of rows on a wide window
            candidates = self.db.conn.execute(chosen, params).fetchall()
        except sqlite3.Error as e:
            raise _storage_error(self.path, e) from e
        velocity = self._recent_counts(since=now - recent)
        figures = [
            StoryFigures(
                id=id,
                size=size,
                sources=sources,
                first_seen=_dt(first),
                last_seen=_dt(last),
                recent=velocity.get(id, 0),
            )
            for id, size, sources, first, last in candidates
        ]
        ranked = rank(figures, now, limit)
        rows = {
            r["id"]: r
            for r in self._rows_in(
                "SELECT * FROM stories WHERE id IN ({marks})", [f.id for f in ranked]
            )
        }
        return [
            self._story_view(rows[f.id], with_articles=with_articles, now=now, recent=recent)
            for f in ranked
        ]

    def _recent_counts(self, *, since: datetime) -> dict[int, int]:
        """Outlets that published an article of each story since ``since``."""
        rows = self._rows(
            """SELECT sa.story_id, COUNT(DISTINCT a.feed_id) AS n FROM articles a
               JOIN story_articles sa ON sa.article_id = a.id
               WHERE a.published >= ? AND a.muted = 0 GROUP BY sa.story_id""",
            [ts(since)],
        )
        return {r["story_id"]: r["n"] for r in rows}

    def story(
        self, story_id: int, *, now: datetime | None = None, recent: timedelta = DEFAULT_RECENT
    ) -> StoryView:
        """One story; the id of a story merged into another leads to the survivor."""
        row = self._one("SELECT * FROM stories WHERE id = ?", [self.resolve_story(story_id)])
        assert row is not None
        return self._story_view(
            row, with_articles=True, now=now or datetime.now(UTC), recent=recent
        )

    def _story_view(
        self, row: dict[str, Any], *, with_articles: bool, now: datetime, recent: timedelta
    ) -> StoryView:
        sources = [
            r["name"]
            for r in self._rows(
                # One name per feed (as source_count counts them), duplicates' feeds included.
                """SELECT COALESCE(f.title, f.feed_title, f.url) AS name FROM story_articles sa
                   JOIN articles a ON a.id = sa.article_id AND a.muted = 0
                   JOIN items i ON i.article_id = sa.article_id JOIN feeds f ON f.id = i.feed_id
                   WHERE sa.story_id = ? GROUP BY f.id ORDER BY name, f.id""",
                [row["id"]],
            )
        ]
        articles: tuple[ArticleView, ...] = ()
        if with_articles:
            articles = tuple(
                self._article_views(
                    "sa.story_id = :story AND a.muted = 0",
                    {"story": row["id"]},
                    order="a.published, a.id",
                )
            )
        first_seen, last_seen = _dt(row["first_seen"]), _dt(row["last_seen"])
        if with_articles:  # the articles say it: no query for it
            unread = sum(not a.read for a in articles)
        else:
            count = self._one(
                """SELECT COUNT(*) AS n FROM story_articles sa
                   JOIN articles a ON a.id = sa.article_id
                   WHERE sa.story_id = ? AND a.read = 0 AND a.muted = 0""",
                [row["id"]],
            )
            unread = count["n"] if count else 0
        return StoryView(
            id=row["id"],
            title=row["title"],
            size=row["size"],
            sources=tuple(sources),
            first_seen=first_seen,
            last_seen=last_seen,
            terms=tuple(json.loads(row["terms"])),
            status=story_status(first_seen, last_seen, now, recent),
            articles=articles,
            unread=unread,
        )

    def article_views(self, article_ids: Sequence[int]) -> list[ArticleView]:
        """The articles with these ids; an unknown id is an error."""
        self.stories_of(article_ids)  # raises NotFoundError for an unknown id
        marks = ",".join(str(int(i)) for i in article_ids) or "NULL"
        return self._article_views(f"a.id IN ({marks})", {}, order="a.id")

    def articles(self, *, since: datetime | None, limit: int) -> list[ArticleView]:
        """Articles first seen since ``since``, newest first; muted ones are left out."""
        where, params = "a.muted = 0", {}
        if since is not None:
            where, params = "a.muted = 0 AND a.first_seen >= :since", {"since": ts(since)}
        return self._article_views(where, params, order="a.published DESC, a.id DESC", limit=limit)

    def search(
        self, query: str, *, limit: int, since: datetime | None = None, muted: bool = True
    ) -> list[ArticleView]:
        """Full-text search over titles and summaries, newest first (news ages fast), each
        with its matches highlighted. Muted articles are found too unless ``muted`` is false:
        a search names what it looks for."""
        where, params = "articles_fts MATCH :q", {"q": _fts_query(query)}
        if not muted:
            where += " AND a.muted = 0"
        if since is not None:
            where, params = f"{where} AND a.first_seen >= :since", {**params, "since": ts(since)}
        return self._article_views(
            where, params, order="a.published DESC, a.id DESC", limit=limit, matching=True
        )

    def _article_views(
        self,
        where: str,
        params: dict[str, Any],
        *,
        order: str,
        limit: int = 0,
        matching: bool = False,
    ) -> list[ArticleView]:
        """``matching``: ``where`` holds an FTS5 MATCH, and each view gets its highlights."""
        found = ""
        if matching:
            found = f""", highlight(articles_fts, 0, '{_MARK}', '{_END}') AS title_match,
                         snippet(articles_fts, 1, '{_MARK}', '{_END}', '…', 24) AS snippet
                      FROM articles_fts JOIN articles a ON a.id = articles_fts.rowid"""
        sql = f"""SELECT a.id, a.title, a.url, a.summary, a.published, a.first_seen,
                         sa.story_id, sa.similarity, sa.shared_terms, sa.placed_in, sa.placed_by,
                         a.read, a.muted, COALESCE(f.title, f.feed_title, f.url) AS feed
                         {found or "FROM articles a"} JOIN feeds f ON f.id = a.feed_id
                  LEFT JOIN story_articles sa ON sa.article_id = a.id
                  WHERE {where} ORDER BY {order}"""
        if limit:
            sql += f" LIMIT {int(limit)}"
        rows = self._rows(sql, params)
        dupes = self._duplicates([r["id"] for r in rows])
        return [
            ArticleView(
                id=r["id"],
                title=r["title"],
                url=r["url"],
                feed=r["feed"],
                published=_dt(r["published"]),
                first_seen=_dt(r["first_seen"]),
                story_id=r["story_id"],
                summary=r["summary"],
                duplicates=tuple(dupes.get(r["id"], ())),
                similarity=r["similarity"],
                shared_terms=tuple(json.loads(r["shared_terms"] or "[]")),
                placed_in=r["placed_in"],
                placed_by=r["placed_by"],
                read=bool(r["read"]),
                muted=bool(r["muted"]),
                title_match=_highlight(r["title_match"]) if matching else None,
                snippet=_highlight(r["snippet"]) if matching else None,
            )
            for r in rows
        ]

    def _duplicates(self, article_ids: list[int]) -> dict[int, list[Duplicate]]:
        """Every sighting of each article other than the one it was stored from."""
        found: dict[int, list[Duplicate]] = {}
        rows = self._rows_in(
            """SELECT i.article_id, i.url, COALESCE(f.title, f.feed_title, f.url) AS feed
               FROM items i JOIN feeds f ON f.id = i.feed_id
               JOIN articles a ON a.id = i.article_id
               WHERE i.article_id IN ({marks})
                 AND NOT (i.feed_id = a.feed_id AND i.url IS a.url)
               ORDER BY i.id""",
            article_ids,
        )
        for r in rows:
            found.setdefault(r["article_id"], []).append(Duplicate(url=r["url"], feed=r["feed"]))
        return found

    def counts(self) -> dict[str, int]:
        row = self._one(
            """SELECT (SELECT COUNT(*) FROM feeds WHERE enabled = 1) AS feeds,
                      (SELECT COUNT(*) FROM articles) AS articles,
                      (SELECT COUNT(*) FROM stories) AS stories"""
        )
        return dict(row or {})


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
        _migrate(db)
    except sqlite3.Error as e:
        raise _storage_error(path, e) from e
    except OSError as e:
        raise StorageError(f"{path}: cannot open the database: {e.strerror or e}") from e
    return Store(db, path)


def _migrate(db: sqlite_utils.Database) -> None:
    """Apply the migrations not yet applied, all in one write transaction.

    What is applied is read inside the transaction, so two processes opening a new database at
    once cannot both apply the same migration: the second waits, then finds nothing to do.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(
            """CREATE TABLE IF NOT EXISTS _migrations (
                 id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"""
        )
        done = {row["id"] for row in db.query("SELECT id FROM _migrations")}
        if len(done) > len(MIGRATIONS):
            raise StorageError(
                "the database was written by a newer aggregator; upgrade aggregator to open it"
            )
        for number, migration in enumerate(MIGRATIONS, start=1):
            if number not in done:
                migration(db)
                db.execute(
                    "INSERT INTO _migrations (id, name, applied_at) VALUES (?, ?, ?)",
                    [number, migration.__name__.lstrip("_"), ts(datetime.now(UTC))],
                )
    except BaseException:
        db.rollback()
        raise
    db.execute("COMMIT")


def _storage_error(path: Path, error: sqlite3.Error) -> StorageError:
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


def _feed_state(r: dict[str, Any]) -> FeedState:
    return FeedState(
        id=r["id"],
        url=r["url"],
        title=r["title"],
        tags=tuple(json.loads(r["tags"] or "[]")),
        effective_url=r["effective_url"],
        etag=r["etag"],
        last_modified=r["last_modified"],
        body_hash=r["body_hash"],
        status=FeedStatus(r["status"]),
        next_due=dt(r["next_due_at"]),
        error_count=r["error_count"],
        last_error=r["last_error"],
        last_success=dt(r["last_success_at"]),
        gone=bool(r["gone"]),
        ttl_minutes=r["ttl_minutes"],
        retry_after=dt(r["retry_after_at"]),
        pace=timedelta(seconds=r["pace_seconds"]) if r["pace_seconds"] is not None else None,
        newest_item=dt(r["newest_item_at"]),
    )


def _doc(r: dict[str, Any]) -> ClusterDoc:
    return ClusterDoc(
        key=r["id"],
        title=r["title"],
        summary=r["summary"],
        source=r["source"],
        published=_dt(r["published"]),
        story=r["story_id"],
        muted=bool(r["muted"]),
    )


# What FTS5 puts around each match; neither can be in stored text (normalize drops controls).
_MARK, _END = "\x02", "\x03"


def _highlight(marked: str | None) -> Highlight:
    """Text that FTS5 marked, as the text and the offsets of its matches."""
    text: list[str] = []
    spans: list[tuple[int, int]] = []
    start = length = 0
    for piece in re.split(f"([{_MARK}{_END}])", marked or ""):
        if piece == _MARK:
            start = length
        elif piece == _END:
            joined = "".join(text)
            if spans and not joined[spans[-1][1] : start].strip():
                start = spans.pop()[0]  # the words of a phrase: one span
            spans.append((start, length))
        else:
            text.append(piece)
            length += len(piece)
    return Highlight("".join(text), tuple(spans))


def _fts_query(query: str) -> str:
    """Quote each word, so user input is searched for, never parsed as FTS5 syntax."""
    words = [w.replace('"', '""') for w in query.split()]
    if not words:
        raise NotFoundError("search needs at least one word")
    return " ".join(f'"{w}"' for w in words)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
