"""The database's schema: numbered migrations, applied in order and recorded in _migrations."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..errors import StorageError
from .base import ts

if TYPE_CHECKING:
    import sqlite_utils

__all__ = ["INCREMENTAL", "MIGRATIONS", "SEEN_AT", "SOURCE_COUNT", "STORY_FIGURES", "migrate"]

INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL

# Distinct feeds that carry a story's articles, copies included: its number of sources.
# A story's figures count only articles not muted (see Store.mute_articles).
# seen_at: when a sighting of one of its articles (the first, or a copy) was last stored.
SEEN_AT = """SELECT MAX(i.first_seen) FROM story_articles sa
             JOIN articles a ON a.id = sa.article_id AND a.muted = 0
             JOIN items i ON i.article_id = sa.article_id WHERE sa.story_id = stories.id"""
SOURCE_COUNT = """SELECT COUNT(DISTINCT i.feed_id) FROM story_articles sa
                  JOIN articles a ON a.id = sa.article_id AND a.muted = 0
                  JOIN items i ON i.article_id = sa.article_id WHERE sa.story_id = stories.id"""
# A story's figures worked out again from its articles, for an UPDATE of stories: after
# clustering or a correction changed it, or pruning took some of its articles.
STORY_FIGURES = f"""
    size = (
      SELECT COUNT(*) FROM story_articles sa JOIN articles a ON a.id = sa.article_id
      WHERE sa.story_id = stories.id AND a.muted = 0),
    source_count = ({SOURCE_COUNT}),
    seen_at = ({SEEN_AT}),
    -- Of every article, muted or not: clustering reads them (which stories are still open to
    -- articles), and muting must not change where articles go.
    first_seen = (
      SELECT MIN(a.published) FROM story_articles sa
      JOIN articles a ON a.id = sa.article_id WHERE sa.story_id = stories.id),
    last_seen = (
      SELECT MAX(a.published) FROM story_articles sa
      JOIN articles a ON a.id = sa.article_id WHERE sa.story_id = stories.id)"""


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
    from ..dedupe import headline_keys  # here: a database that is up to date needs no dedupe

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
    db.execute(f"UPDATE stories SET seen_at = ({SEEN_AT})")
    # Covering what ranking reads, so a wide window reads the index alone.
    db.execute(
        """CREATE INDEX stories_seen_at
           ON stories(seen_at, size, source_count, first_seen, last_seen)"""
    )


def _m009_story_summaries(db: sqlite_utils.Database) -> None:
    # Each story's summary, chosen when the story changes (aggregator.summary) and kept, so no
    # listing or digest works it out again: a JSON list of {text, feed, article_id}. Stories
    # from before get theirs when they next change.
    db.execute("ALTER TABLE stories ADD COLUMN summary TEXT NOT NULL DEFAULT '[]'")


def _m010_retention(db: sqlite_utils.Database) -> None:
    # Saved articles are never pruned (database.keep); when the user saved it.
    db.execute("ALTER TABLE articles ADD COLUMN saved_at TEXT")
    # What a feed carried whose article was pruned while the feed still had the item: its
    # identities as dedupe matches them (item key, canonical link, content hash and date), so
    # the next poll does not store it again. Dropped once the feed no longer carries it.
    db.execute(
        """CREATE TABLE feed_seen (
             feed_id INTEGER NOT NULL REFERENCES feeds(id),
             item_key TEXT NOT NULL,
             canonical_url TEXT,
             content_hash TEXT NOT NULL,
             published TEXT NOT NULL,
             pruned_at TEXT NOT NULL,
             PRIMARY KEY (feed_id, item_key)
           ) WITHOUT ROWID"""
    )
    # Pruning deletes an article's headline keys by article.
    db.execute("CREATE INDEX article_keys_article ON article_keys(article_id)")
    # Space comes back after pruning: the database file shrinks by incremental vacuums. A new
    # database is made so (open_store); an older one is rebuilt once by the first prune's
    # VACUUM, which this flag asks for (a VACUUM cannot run inside this transaction).
    if db.execute("PRAGMA auto_vacuum").fetchone()[0] != INCREMENTAL:
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('convert_auto_vacuum', '1')")


def _m011_placement_time(db: sqlite_utils.Database) -> None:
    # What placed an article (story --why), besides its similarity: the cosine with the story
    # and the hours the story had been quiet, whose cost the cosine paid.
    db.execute("ALTER TABLE story_articles ADD COLUMN cosine REAL")
    db.execute("ALTER TABLE story_articles ADD COLUMN quiet_hours REAL")


MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (
    _m001_initial,
    _m002_feed_pace,
    _m003_story_corrections,
    _m004_terms_per_story,
    _m005_headline_keys,
    _m006_digests,
    _m007_mute,
    _m008_story_seen_at,
    _m009_story_summaries,
    _m010_retention,
    _m011_placement_time,
)


def migrate(db: sqlite_utils.Database) -> None:
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
