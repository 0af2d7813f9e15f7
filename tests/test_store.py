"""The store on real SQLite files: migrations, WAL, FTS5, clear errors."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.dedupe import plan_ingest
from aggregator.errors import StorageError
from aggregator.listing import get_story
from aggregator.models import Article, FeedConfig, FeedStatus, StoryPlacement
from aggregator.store import MIGRATIONS, FeedUpdate, StoredStory, open_store

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def article(n: int, title: str, url: str | None = None) -> Article:
    return Article(
        feed_url="https://a.example/feed",
        guid=f"g{n}",
        url=url,
        canonical_url=url,
        title=title,
        summary=f"summary of {title}",
        published=NOW,
        first_seen=NOW,
        content_hash=f"h{n}",
    )


def test_new_database_is_migrated_in_wal_mode(tmp_path: Path) -> None:
    store = open_store(tmp_path / "sub" / "a.db")
    rows = list(store.db.query("SELECT id, name FROM _migrations ORDER BY id"))
    assert [r["id"] for r in rows] == list(range(1, len(MIGRATIONS) + 1))
    assert rows[0]["name"] == "m001_initial"
    assert store.db.journal_mode == "wal"
    store.close()
    again = open_store(tmp_path / "sub" / "a.db")  # reopening applies nothing twice
    assert again.db.execute("SELECT COUNT(*) FROM _migrations").fetchone()[0] == len(MIGRATIONS)


def test_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    open_store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO _migrations VALUES (999, 'future', '2030-01-01')")
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match="newer aggregator"):
        open_store(path)


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match="not an aggregator database"):
        open_store(path)


def test_full_text_search_follows_inserts(tmp_path: Path) -> None:
    store = open_store(tmp_path / "a.db")
    store.sync_feeds([FeedConfig("https://a.example/feed", "A")], NOW)
    feed = store.feeds()[0]
    plan = plan_ingest(
        [article(1, "Quillon launches the Aero phone"), article(2, "Rates rise in Norvania")],
        feed_id=feed.id,
        known_items=set(),
        known_links={},
    )
    update = FeedUpdate(status=FeedStatus.OK, fetched_at=NOW, next_due=NOW)
    assert len(store.save_poll(feed.id, plan, update)) == 2
    assert [a.title for a in store.search("aero phone", limit=10)] == [
        "Quillon launches the Aero phone"
    ]
    assert store.search("norvania", limit=10)[0].title == "Rates rise in Norvania"
    assert store.search("missing", limit=10) == []


def test_a_failed_transaction_leaves_nothing_behind(tmp_path: Path) -> None:
    store = open_store(tmp_path / "a.db")
    store.sync_feeds([FeedConfig("https://a.example/feed")], NOW)
    feed = store.feeds()[0]
    plan = plan_ingest([article(1, "One")], feed_id=feed.id, known_items=set(), known_links={})
    bad = FeedUpdate(status=FeedStatus.OK, fetched_at=NOW, next_due=NOW, etag="x")
    store.db.execute(
        "CREATE TRIGGER boom BEFORE UPDATE ON feeds BEGIN SELECT RAISE(ABORT, 'boom'); END"
    )
    with pytest.raises(StorageError, match="boom"):
        store.save_poll(feed.id, plan, bad)
    assert store.counts()["articles"] == 0  # the articles rolled back with the validators
    assert store.feeds()[0].etag is None


def test_removed_feeds_are_disabled_not_deleted(tmp_path: Path) -> None:
    store = open_store(tmp_path / "a.db")
    store.sync_feeds(
        [FeedConfig("https://a.example/feed"), FeedConfig("https://b.example/feed")], NOW
    )
    store.sync_feeds([FeedConfig("https://b.example/feed")], NOW)
    assert [f.url for f in store.feeds()] == ["https://b.example/feed"]
    assert len(store.feeds(enabled_only=False)) == 2


def test_read_only_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    store = open_store(path)
    store.close()
    uri = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    import sqlite_utils

    from aggregator.store import Store

    ro = Store(sqlite_utils.Database(uri), path)
    with pytest.raises(StorageError, match=r"read-only|readonly"):
        ro.sync_feeds([FeedConfig("https://a.example/feed")], NOW)


def test_a_merged_story_keeps_working_as_an_alias(tmp_path: Path) -> None:
    store = open_store(tmp_path / "a.db")
    store.sync_feeds([FeedConfig("https://a.example/feed", "A")], NOW)
    feed = store.feeds()[0]
    plan = plan_ingest(
        [article(1, "Varnek Deslin ceasefire"), article(2, "Velmora aid corridor")],
        feed_id=feed.id,
        known_items=set(),
        known_links={},
    )
    first, second = store.save_poll(
        feed.id, plan, FeedUpdate(status=FeedStatus.OK, fetched_at=NOW, next_due=NOW)
    )
    ids = store.save_clustering(
        placements=[
            StoryPlacement(first, -first, -first, None),
            StoryPlacement(second, -second, -second, None),
        ],
        new_story_keys={-first: first, -second: second},
        stories=[StoredStory(-first, "Truce", ("varnek",)), StoredStory(-second, "Aid", ("aid",))],
        df_increments={"varnek": 1},
        documents=2,
        now=NOW,
    )
    older, newer = ids[-first], ids[-second]
    store.save_clustering(
        placements=[],
        new_story_keys={},
        merged=[(older, newer)],
        stories=[StoredStory(older, "Truce and aid", ("varnek", "aid"))],
        df_increments={},
        documents=2,
        now=NOW,
    )
    merged = get_story(store, older)
    assert merged.size == 2 and merged.title == "Truce and aid"
    assert get_story(store, newer) == merged  # the absorbed id leads to the survivor
    assert store.counts()["stories"] == 1
    assert store.document_frequencies(["varnek"]) == {"varnek": 1}


def test_a_migration_that_fails_leaves_the_database_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The migrations run in one transaction: a failure half-way (a crash, a full disk) leaves
    no half-made schema behind, and the next open applies them all."""
    from aggregator.store import schema

    def broken(db: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(schema, "MIGRATIONS", (*MIGRATIONS[:5], broken))
    path = tmp_path / "a.db"
    with pytest.raises(StorageError, match="disk I/O error"):
        open_store(path)
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert "feeds" not in tables and "articles" not in tables
    monkeypatch.undo()
    store = open_store(path)
    assert store.db.execute("SELECT COUNT(*) FROM _migrations").fetchone()[0] == len(MIGRATIONS)
    store.close()


def test_articles_stored_before_migration_5_get_headline_fingerprints(tmp_path: Path) -> None:
    from aggregator.dedupe import headline_keys

    path = tmp_path / "a.db"
    store = open_store(path)
    store.sync_feeds([FeedConfig("https://a.example/feed")], NOW)
    (feed,) = store.feeds()
    title = "Quillon recalls 40,000 Aero 7 phones over battery fault"
    plan = plan_ingest([article(1, title)], feed_id=feed.id, known_items=set(), known_links={})
    store.save_poll(feed.id, plan, FeedUpdate(status=FeedStatus.OK, fetched_at=NOW, next_due=NOW))
    assert store.db.execute("SELECT COUNT(*) FROM article_keys").fetchone()[0] == 0  # no plan keys
    store.db.execute("DROP TABLE article_keys")
    store.db.execute("DROP INDEX articles_content_hash")
    store.db.execute("DELETE FROM _migrations WHERE id = 5")
    store.db.conn.commit()
    store.close()
    again = open_store(path)
    keys = {r[0] for r in again.db.execute("SELECT key FROM article_keys")}
    assert keys == set(headline_keys(title, f"summary of {title}"))
