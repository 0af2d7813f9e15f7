"""Retention: pruning on a real database file, saved articles, seen records of pruned items,
the migration of an older database, a prune killed -9 half-way, and `db prune` / `db stats`."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from aggregator.cli import cli
from aggregator.config import load_config
from aggregator.dedupe import SeenRecord, left_feed, plan_ingest
from aggregator.errors import ConfigError, NotFoundError
from aggregator.models import FeedConfig
from aggregator.pipeline import poll
from aggregator.retention import database_stats, next_batch, prune, prune_if_due
from aggregator.store import MIGRATIONS, Store, open_store

from .conftest import ROOT, FeedServer, opened, rss
from .stored import article, cluster, feed_id, save

DAY = timedelta(days=1)
KEEP = timedelta(days=90)
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=120)
RECENT = NOW - timedelta(days=2)
A, B = "https://a.example/rss", "https://b.example/rss"


def table(store: Store, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    return [tuple(r) for r in store.db.execute(sql, params).fetchall()]


def assert_consistent(store: Store) -> None:
    """Nothing refers to a row that is gone, and the search index matches the articles."""
    articles = "(SELECT id FROM articles)"
    known = "(SELECT id FROM stories UNION SELECT alias_id FROM story_aliases)"
    dangling = {
        "items": f"SELECT COUNT(*) FROM items WHERE article_id NOT IN {articles}",
        "keys": f"SELECT COUNT(*) FROM article_keys WHERE article_id NOT IN {articles}",
        "placed": """SELECT COUNT(*) FROM story_articles
                     WHERE article_id NOT IN (SELECT id FROM articles)
                        OR story_id NOT IN (SELECT id FROM stories)""",
        "empty stories": """SELECT COUNT(*) FROM stories
                            WHERE id NOT IN (SELECT story_id FROM story_articles)""",
        "aliases": """SELECT COUNT(*) FROM story_aliases
                      WHERE story_id NOT IN (SELECT id FROM stories)""",
        "apart": f"""SELECT COUNT(*) FROM stories_apart
                     WHERE story_a NOT IN {known} OR story_b NOT IN {known}""",
        "digest": f"SELECT COUNT(*) FROM digest_stories WHERE story_id NOT IN {known}",
    }
    for what, sql in dangling.items():
        assert table(store, sql) == [(0,)], what
    assert table(store, "SELECT COUNT(*) FROM articles_fts") == table(
        store, "SELECT COUNT(*) FROM articles"
    )
    store.db.execute("INSERT INTO articles_fts (articles_fts) VALUES ('integrity-check')")
    assert table(store, "PRAGMA foreign_key_check") == []


def build(tmp_path: Path) -> tuple[Store, dict[str, int], dict[str, int]]:
    """Two feeds; old and recent articles in stories, one saved, one merged, one split off,
    digest state on several. Returns the store, article ids and story ids by name."""
    store = open_store(tmp_path / "store.db")
    store.sync_feeds([FeedConfig(A), FeedConfig(B)], OLD)
    fa, fb = feed_id(store, A), feed_id(store, B)
    old = {
        name: article(
            f"Old {name} headline about the harbour strike",
            first_seen=OLD,
            published=OLD,
            url=f"https://a.example/{name}",
        )
        for name in ("a1", "a2", "a3", "a4", "a5", "a7", "a9")
    }
    new = {
        name: article(
            f"New {name} headline about the harbour strike",
            first_seen=RECENT,
            published=RECENT,
            url=f"https://a.example/{name}",
        )
        for name in ("a6", "a8")
    }
    ids = dict(zip(old, save(store, fa, list(old.values())), strict=True))
    ids |= dict(zip(new, save(store, fa, list(new.values())), strict=True))
    # Feed B carried a1 too: a sighting of it.
    save(
        store,
        fb,
        copies=[(article("Old a1 copy", first_seen=OLD, url="https://b.example/a1"), ids["a1"])],
    )
    s1, s2, s3, s4, s5 = cluster(
        store,
        [ids["a1"], ids["a2"]],  # all old: goes
        [ids["a3"], ids["a4"]],  # a3 is saved: stays, with its headline
        [ids["a5"], ids["a6"]],  # one old, one recent: stays, smaller
        [ids["a7"]],  # old, merged into s1: its alias goes with s1
        [ids["a8"], ids["a9"]],
        now=OLD,
    )
    store.merge_stories(s1, [s4])
    # a9 split off from s5 into a story of its own, kept apart from s5; s6 is all old.
    s6 = store.move_articles([ids["a9"]], to=None, now=OLD)
    store.mark_saved([ids["a3"]], saved=True, now=OLD)
    store.record_digest("me@example.org", [(s1, 2), (s2, 1), (s3, 1), (s4, 1), (s6, 1)], OLD)
    stories = {"s1": s1, "s2": s2, "s3": s3, "s4": s4, "s5": s5, "s6": s6}
    return store, ids, stories


def test_prune_removes_old_articles_keeps_saved_ones_and_stories_follow(tmp_path: Path) -> None:
    store, ids, stories = build(tmp_path)
    title_s2 = store.story_record(stories["s2"]).title
    report = prune(store, KEEP, NOW)

    left = {r[0] for r in table(store, "SELECT id FROM articles")}
    assert left == {ids["a3"], ids["a6"], ids["a8"]}  # the saved one and the recent ones
    assert report.articles == 6
    remaining = {r[0] for r in table(store, "SELECT id FROM stories")}
    # s1 (and its alias s4) and s6 lost every article; s2 keeps its saved one, s3 and s5 a
    # recent one.
    assert remaining == {stories["s2"], stories["s3"], stories["s5"]}
    assert report.stories == 2
    kept = store.story_record(stories["s2"])
    assert (kept.title, kept.size) == (title_s2, 1)  # a saved article keeps headline and id
    assert store.story_record(stories["s3"]).first_seen == RECENT  # figures recounted
    for gone in ("s1", "s4", "s6"):
        with pytest.raises(NotFoundError):
            store.resolve_story(stories[gone])
    assert table(store, "SELECT story_a, story_b FROM stories_apart") == []  # s5/s6 pair went
    assert {r[0] for r in table(store, "SELECT story_id FROM digest_stories")} == {
        stories["s2"],
        stories["s3"],
    }
    # The search index forgot them: only the saved old article is found.
    assert [a.id for a in store.search("harbour strike Old", limit=0)] == [ids["a3"]]
    # Items still in their feeds are remembered, per feed: a1 in both A and B.
    seen = table(store, "SELECT feed_id, COUNT(*) FROM feed_seen GROUP BY feed_id ORDER BY 1")
    assert seen == [(feed_id(store, A), 6), (feed_id(store, B), 1)]
    assert report.seen_records == 7
    assert_consistent(store)
    # An id a pruned story had is never handed out again.
    (new_id,) = cluster(store, [ids["a8"]], now=NOW)
    assert new_id > max(stories.values())
    # Nothing left to prune: a second prune removes nothing.
    assert prune(store, KEEP, NOW).articles == 0


def test_unsaving_lets_the_next_prune_take_it(tmp_path: Path) -> None:
    store, ids, stories = build(tmp_path)
    prune(store, KEEP, NOW)
    assert store.mark_saved([ids["a3"]], saved=False, now=NOW) == 1
    assert prune(store, KEEP, NOW).articles == 1
    with pytest.raises(NotFoundError):
        store.resolve_story(stories["s2"])
    assert_consistent(store)


def test_dry_run_counts_what_a_prune_removes_and_changes_nothing(tmp_path: Path) -> None:
    store, _, _ = build(tmp_path)
    before = list(store.db.conn.iterdump())
    preview = prune(store, KEEP, NOW, dry_run=True)
    assert list(store.db.conn.iterdump()) == before
    done = prune(store, KEEP, NOW)
    assert (preview.articles, preview.stories) == (done.articles, done.stories) == (6, 2)


def test_batches_are_sized_to_hold_the_lock_briefly(tmp_path: Path) -> None:
    # Pure: a slow batch makes the next smaller, a fast one larger, never more than double.
    assert next_batch(500, 1.0) == 125
    assert next_batch(500, 0.01) == 1000
    assert next_batch(500, 0.0) == 1000
    assert next_batch(40, 10.0) >= 20


def test_a_big_prune_goes_in_many_short_transactions(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store.db")
    store.sync_feeds([FeedConfig(A)], OLD)
    fa = feed_id(store, A)
    olds = [
        article(f"Item {n} of the archive on the harbour", first_seen=OLD, published=OLD)
        for n in range(3000)
    ]
    ids = save(store, fa, olds)
    cluster(store, *[ids[i : i + 3] for i in range(0, len(ids), 3)], now=OLD)
    size = store.space_figures().file_bytes
    report = prune(store, KEEP, NOW)
    assert report.articles == 3000 and report.stories == 1000
    assert report.batches > 1
    assert report.longest_lock < 1.0
    assert report.freed_bytes > 0
    assert store.space_figures().file_bytes < size
    assert_consistent(store)


def test_prune_runs_once_a_day_and_never_with_keep_all(tmp_path: Path) -> None:
    store, _, _ = build(tmp_path)
    assert prune_if_due(store, None, NOW) is None
    assert prune_if_due(store, KEEP, NOW) is not None
    assert prune_if_due(store, KEEP, NOW + timedelta(hours=23)) is None
    assert prune_if_due(store, KEEP, NOW + DAY) is not None


# --- seen records: no resurrection -------------------------------------------------------


def test_plan_ingest_treats_a_pruned_item_as_seen_by_key_link_or_text() -> None:
    pruned = [
        SeenRecord("guid:g1", "https://a.example/1", "h1", OLD),
        SeenRecord("guid:g2", "https://a.example/2", "h2", OLD),
        SeenRecord("guid:g3", None, "h3", OLD),
    ]
    items = [
        article("One", guid="g1", url="https://a.example/1", content_hash="h1", published=OLD),
        article("Two, new guid", guid="g2b", url="https://a.example/2", published=OLD),
        article("Three, new guid", guid="g3b", content_hash="h3", published=OLD),
        article("Four", guid="g4", url="https://a.example/4", published=NOW),
    ]
    plan = plan_ingest(items, feed_id=1, known_items=set(), known_links={}, pruned=pruned)
    assert [a.guid for a in plan.new] == ["g4"]
    assert plan.seen == 3
    # The feed no longer carries g2 (its link) nor g3 (its text): their records can go.
    assert [r.item_key for r in left_feed(pruned, items[:1])] == ["guid:g2", "guid:g3"]
    assert left_feed(pruned, []) == []  # an empty document says nothing
    # The same text on another date is another item ("Weather for Monday"): it keeps no record.
    daily = [SeenRecord("guid:w1", None, "weather", OLD)]
    tomorrow = article("Weather", guid="w2", content_hash="weather", published=OLD + DAY)
    assert left_feed(daily, [tomorrow]) == daily
    assert (
        left_feed(daily, [article("Weather", guid="w1b", content_hash="weather", published=OLD)])
        == []
    )


def item(n: int) -> dict[str, str]:
    return {
        "guid": f"evergreen-{n}",
        "link": f"https://blog.example/posts/{n}",
        "title": f"Evergreen post number {n} on the harbour history",
        "description": f"A long read, part {n}, that the blog keeps in its feed for months.",
        "pubDate": "Mon, 01 Jun 2026 10:00:00 GMT",
    }


def test_an_item_still_in_its_feed_past_keep_is_not_stored_again(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    url = feed_server.add("/blog.xml", body=rss("Blog", [item(1), item(2)]))
    config, store = opened(write_config([url]))
    start = datetime(2026, 6, 2, 8, 0, tzinfo=UTC)
    assert poll(config, store, now=start).new_articles == 2
    # 91 days on, the feed still carries both: they are pruned, and remembered.
    later = start + timedelta(days=91)
    report = poll(config, store, now=later, all_feeds=True)
    assert report.new_articles == 0
    assert report.pruned is not None and report.pruned.articles == 2
    assert table(store, "SELECT COUNT(*) FROM articles") == [(0,)]
    assert table(store, "SELECT item_key FROM feed_seen ORDER BY 1") == [
        ("guid:evergreen-1",),
        ("guid:evergreen-2",),
    ]
    # A new item arrives, post 1 stays, post 2 leaves the feed: 3 is new, 1 is not stored
    # again, and the record of 2 goes.
    feed_server.add("/blog.xml", body=rss("Blog", [item(3), item(1)]))
    report = poll(config, store, now=later + timedelta(hours=2), all_feeds=True)
    assert report.new_articles == 1
    titles = [r[0] for r in table(store, "SELECT title FROM articles")]
    assert titles == ["Evergreen post number 3 on the harbour history"]
    assert table(store, "SELECT item_key FROM feed_seen") == [("guid:evergreen-1",)]
    # Post 1 leaves too: its record goes.
    feed_server.add("/blog.xml", body=rss("Blog", [item(3)]))
    assert poll(config, store, now=later + timedelta(hours=4), all_feeds=True).new_articles == 0
    assert table(store, "SELECT COUNT(*) FROM feed_seen") == [(0,)]


# --- the migration from the previous release ---------------------------------------------


def previous_release_database(path: Path) -> None:
    """A database as the release before retention made it: its migrations only, no
    auto_vacuum, with an old and a recent article in a story each."""
    upto = next(i for i, m in enumerate(MIGRATIONS) if m.__name__ == "_m010_retention")
    conn = sqlite3.connect(path, isolation_level=None)
    db = sqlite_utils.Database(conn)
    db.enable_wal()
    db.execute(
        """CREATE TABLE _migrations (
             id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"""
    )
    for number, migration in enumerate(MIGRATIONS[:upto], start=1):
        migration(db)
        db.execute("INSERT INTO _migrations VALUES (?, ?, ?)", [number, migration.__name__, "x"])
    db.execute("INSERT INTO feeds (id, url, added_at) VALUES (1, ?, ?)", [A, OLD.isoformat()])
    for n, seen in ((1, OLD), (2, RECENT)):
        when = seen.isoformat()
        db.execute(
            """INSERT INTO articles (id, feed_id, guid, title, summary, published, first_seen,
                                     content_hash) VALUES (?, 1, ?, ?, ?, ?, ?, ?)""",
            [n, f"g{n}", f"Headline {n} of the old release", "x" * 20_000, when, when, f"h{n}"],
        )
        db.execute(
            "INSERT INTO items (feed_id, article_id, item_key, first_seen) VALUES (1, ?, ?, ?)",
            [n, f"guid:g{n}", when],
        )
        db.execute(
            """INSERT INTO stories (id, title, first_seen, last_seen, created_at, updated_at,
                                    size, seen_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?)""",
            [n, f"Story {n}", when, when, when, when, when],
        )
        db.execute(
            "INSERT INTO story_articles (article_id, story_id, added_at) VALUES (?, ?, ?)",
            [n, n, when],
        )
    conn.close()


def test_a_database_of_the_previous_release_is_migrated_and_then_converted(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    previous_release_database(path)
    store = open_store(path)
    assert store.space_figures().auto_vacuum is False  # not yet: the first prune does it
    assert store.story_record(2).articles[0].saved is False
    report = prune(store, KEEP, NOW)
    assert report.articles == 1 and report.stories == 1
    assert table(store, "PRAGMA auto_vacuum") == [(2,)]  # INCREMENTAL now
    assert store.space_figures().auto_vacuum is True
    assert [a.title for a in store.story_record(2).articles] == ["Headline 2 of the old release"]
    assert_consistent(store)
    store.close()
    reopened = open_store(path)  # and it stays so
    assert table(reopened, "PRAGMA auto_vacuum") == [(2,)]
    assert reopened.space_figures().auto_vacuum is True


def test_a_new_database_is_incremental_from_the_start(tmp_path: Path) -> None:
    store = open_store(tmp_path / "new.db")
    assert table(store, "PRAGMA auto_vacuum") == [(2,)]
    assert store.space_figures().auto_vacuum is True


# --- kill -9 half-way ----------------------------------------------------------------------

CRASH_IN_THIRD_BATCH = """
import os, signal, sys
import aggregator.retention as retention
import aggregator.store.retention as store_retention
retention.FIRST_BATCH = 50
original = store_retention.RetentionStore._drop_empty_stories
calls = [0]
def crashing(self, story_ids):
    calls[0] += 1
    removed = original(self, story_ids)
    if calls[0] == 3:  # inside the third batch's transaction, before its commit
        os.kill(os.getpid(), signal.SIGKILL)
    return removed
store_retention.RetentionStore._drop_empty_stories = crashing
from cli import cli
cli(sys.argv[1:])
"""


def test_kill_9_in_the_middle_of_a_prune_loses_nothing_and_the_next_prune_finishes(
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    store = open_store(tmp_path / "agg.db")
    store.sync_feeds([FeedConfig(A)], now - timedelta(days=200))
    fa = feed_id(store, A)
    old = [
        article(f"Archive item {n} about the harbour", first_seen=now - timedelta(days=100 + n % 5))
        for n in range(600)
    ]
    recent = [article(f"Fresh item {n} about the harbour", first_seen=now) for n in range(50)]
    old_ids, recent_ids = save(store, fa, old), save(store, fa, recent)
    cluster(store, *[old_ids[i : i + 2] for i in range(0, 600, 2)], now=now)
    cluster(store, *[[a] for a in recent_ids], now=now)
    saved = old_ids[::50]
    store.mark_saved(saved, saved=True, now=now)
    store.close()
    config = tmp_path / "config.yaml"
    config.write_text(f"database: agg.db\nfeeds:\n  - {A}\n", encoding="utf-8")

    crashed = subprocess.run(
        [sys.executable, "-c", CRASH_IN_THIRD_BATCH, "--config", str(config), "db", "prune"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")},
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    store = open_store(tmp_path / "agg.db")
    left = {r[0] for r in table(store, "SELECT id FROM articles")}
    assert set(saved) | set(recent_ids) <= left  # nothing that should stay is lost
    assert 0 < len(set(old_ids) - left) < 600 - len(saved)  # two batches went, not the third
    assert_consistent(store)
    store.close()

    done = CliRunner().invoke(cli, ["--config", str(config), "db", "prune"])
    assert done.exit_code == 0, done.output
    assert done.output.startswith("removed ")
    store = open_store(tmp_path / "agg.db")
    assert {r[0] for r in table(store, "SELECT id FROM articles")} == set(saved) | set(recent_ids)
    assert_consistent(store)


# --- the commands --------------------------------------------------------------------------


def cli_config(tmp_path: Path, extra: str = "") -> Path:
    store, _, _ = build(tmp_path)
    store.close()
    path = tmp_path / "config.yaml"
    path.write_text(f"database:\n  path: store.db\n{extra}feeds: [{A}, {B}]\n", encoding="utf-8")
    return path


def test_db_prune_dry_run_changes_nothing_and_says_what_it_would_remove(tmp_path: Path) -> None:
    config = cli_config(tmp_path)
    db = tmp_path / "store.db"
    dump = list(sqlite3.connect(db).iterdump())
    result = CliRunner().invoke(cli, ["--config", str(config), "db", "prune", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("would remove 6 articles first seen before ")
    assert "and 2 stories left without articles (dry run: nothing changed)" in result.output
    assert list(sqlite3.connect(db).iterdump()) == dump
    result = CliRunner().invoke(cli, ["--config", str(config), "db", "prune", "--json"])
    report = json.loads(result.output)
    assert report["articles"] == 6 and report["dry_run"] is False
    assert report["seconds"] >= report["longest_lock_seconds"] > 0
    assert len(list(sqlite3.connect(db).execute("SELECT id FROM articles"))) == 3


def test_keep_all_turns_pruning_off(tmp_path: Path) -> None:
    config = cli_config(tmp_path, extra="  keep: all\n")
    result = CliRunner().invoke(cli, ["--config", str(config), "db", "prune"])
    assert result.output == "database.keep is all: nothing is pruned\n"
    stats = CliRunner().invoke(cli, ["--config", str(config), "db", "stats"])
    assert "keep            all (database.keep: nothing is pruned)" in stats.output
    assert "articles        9 (1 saved)" in stats.output


def test_db_stats_reports_size_counts_oldest_and_the_next_prune(tmp_path: Path) -> None:
    config = cli_config(tmp_path)
    result = CliRunner().invoke(cli, ["--config", str(config), "db", "stats", "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["articles"] == 9 and stats["saved"] == 1 and stats["stories"] == 5
    assert stats["file_bytes"] > 0
    assert stats["oldest_article"] == OLD.isoformat().replace("+00:00", "Z")
    assert stats["next_prune"]["articles"] == 6 and stats["next_prune"]["stories"] == 2
    text = CliRunner().invoke(cli, ["--config", str(config), "db", "stats"]).output
    assert "next prune      6 articles and 2 stories (first seen before " in text


def test_save_unsave_and_articles_saved(tmp_path: Path) -> None:
    config = cli_config(tmp_path)
    run = CliRunner()
    base = ["--config", str(config)]
    listed = json.loads(run.invoke(cli, [*base, "articles", "--saved", "--json"]).output)
    assert [a["saved"] for a in listed] == [True]
    result = run.invoke(cli, [*base, "save", "--article", "1", "2"])
    assert result.output == "2 articles saved\n"
    listed = json.loads(run.invoke(cli, [*base, "articles", "--saved", "--json"]).output)
    assert sorted(a["id"] for a in listed) == sorted([1, 2, listed[0]["id"]]) and len(listed) == 3
    assert run.invoke(cli, [*base, "unsave", "--article", "1"]).output == "1 article unsaved\n"
    missing = run.invoke(cli, [*base, "save", "--article", "999"])
    assert missing.exit_code == 1 and "no article with id 999" in missing.output
    # A story: every article it holds.
    stories = json.loads(run.invoke(cli, [*base, "articles", "--since", "all", "--json"]).output)
    story = next(a["story_id"] for a in stories if a["id"] == 2)
    assert "saved" in run.invoke(cli, [*base, "save", str(story)]).output
    text = run.invoke(cli, [*base, "articles", "--saved"]).output
    assert "(saved)" in text
    assert "(saved)" in run.invoke(cli, [*base, "story", str(story)]).output


def test_database_keep_in_the_config(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("database: agg.db\n", encoding="utf-8")
    assert load_config(path, environ={}).keep == KEEP  # the default
    path.write_text("database:\n  path: agg.db\n  keep: 30d\n", encoding="utf-8")
    config = load_config(path, environ={})
    assert (config.keep, config.database) == (timedelta(days=30), tmp_path / "agg.db")
    assert load_config(path, environ={"AGGREGATOR_DATABASE_KEEP": "all"}).keep is None
    for bad, message in (
        ("keep: 6h", "database.keep: '6h' is less than a day"),
        ("keep: forever", "database.keep: expected a duration"),
        ("kept: 30d", "database.kept: unknown key (did you mean 'keep'?)"),
    ):
        path.write_text(f"database:\n  path: agg.db\n  {bad}\n", encoding="utf-8")
        with pytest.raises(
            ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")
        ):
            load_config(path, environ={})


def test_database_stats_without_keep_has_no_next_prune(tmp_path: Path) -> None:
    store, _, _ = build(tmp_path)
    stats = database_stats(store, None, NOW)
    assert stats.next_prune is None and stats.space.articles == 9
