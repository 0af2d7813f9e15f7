"""Faults a poll meets from outside: kill -9, overlapping runs, a locked or full or read-only
database, a crash while the config is rewritten. Each runs `aggregator` in a real process
(tests/processes.py) against a real server on loopback and a real SQLite file.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pytest

from aggregator.runlock import run_lock

from .conftest import FeedServer, etag_of, rss
from .processes import aggregator_process


def news(prefix: str, count: int, words: int = 8) -> bytes:
    return rss(
        prefix.title(),
        [
            {
                "guid": f"{prefix}-{i}",
                "title": f"{prefix.title()} council votes on measure {i}",
                "link": f"https://{prefix}.example/{i}",
                "description": f"Councillors of {prefix} debated measure {i}. " + "word " * words,
                "pubDate": "Tue, 24 Nov 2026 10:00:00 +0000",
            }
            for i in range(count)
        ],
    )


def write_config(tmp_path: Path, feeds: list[str]) -> Path:
    path = tmp_path / "config.yaml"
    lines = ["database: agg.db", "feeds:", *[f"  - {url}" for url in feeds]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def query(tmp_path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(tmp_path / "agg.db") as db:
        return list(db.execute(sql))


def count(tmp_path: Path, table: str) -> int:
    [(n,)] = query(tmp_path, f"SELECT COUNT(*) FROM {table}")
    return int(n)  # type: ignore[call-overload]


@pytest.fixture
def two_feeds(feed_server: FeedServer, tmp_path: Path) -> Path:
    for name in ("alpha", "beta"):
        body = news(name, 4)
        feed_server.add(f"/{name}.xml", body=body, etag=etag_of(body))
    return write_config(tmp_path, [feed_server.url("/alpha.xml"), feed_server.url("/beta.xml")])


# --- 18. overlapping runs -------------------------------------------------------------------------


def test_a_poll_while_another_run_holds_the_lock_exits_0_and_changes_nothing(
    two_feeds: Path, tmp_path: Path, feed_server: FeedServer
) -> None:
    with run_lock(tmp_path / "agg.db"):
        second = aggregator_process(two_feeds, "poll")
    assert second.returncode == 0
    assert "another aggregator run holds the lock" in second.stderr
    assert f"(pid {os.getpid()}, started " in second.stderr
    assert feed_server.requests == [] and not (tmp_path / "agg.db").exists()
    after = aggregator_process(two_feeds, "poll")
    assert after.returncode == 0, after.stderr
    assert count(tmp_path, "articles") == 8


# --- 19. a write lock held past busy_timeout ------------------------------------------------------


@pytest.mark.slow
def test_a_database_locked_past_the_busy_timeout_is_a_clear_error_and_the_next_run_retries(
    two_feeds: Path, tmp_path: Path
) -> None:
    assert aggregator_process(two_feeds, "feeds", "list").returncode == 0  # creates the database
    holder = sqlite3.connect(tmp_path / "agg.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another program writing, for longer than 5 s
    try:
        locked = aggregator_process(two_feeds, "poll")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert locked.returncode == 3
    assert "another aggregator process holds the database; try again in a moment" in (locked.stderr)
    assert "Traceback" not in locked.stderr
    retried = aggregator_process(two_feeds, "poll")
    assert retried.returncode == 0, retried.stderr
    assert count(tmp_path, "articles") == 8


# --- 20. kill -9 at each step of a poll -----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("step", "kill_in"),
    [
        ("after the fetch, before parsing", "aggregator.workers:read_document"),
        ("mid-insert: an article written, its item not", "aggregator.store:Store._insert_item"),
        ("entries written, validators not yet", "aggregator.store:Store._update_feed"),
    ],
)
def test_kill_9_during_a_poll_leaves_no_partial_rows_and_the_next_run_loses_nothing(
    two_feeds: Path, tmp_path: Path, feed_server: FeedServer, step: str, kill_in: str
) -> None:
    crashed = aggregator_process(two_feeds, "poll", kill_in=kill_in)
    assert crashed.returncode == -signal.SIGKILL, (step, crashed.stderr)
    assert len(feed_server.requests) >= 1
    for table in ("articles", "items", "article_keys", "story_articles"):
        assert count(tmp_path, table) == 0, (step, table)
    assert (
        query(
            tmp_path,
            "SELECT etag, last_modified, body_hash FROM feeds WHERE etag IS NOT NULL "
            "OR last_modified IS NOT NULL OR body_hash IS NOT NULL",
        )
        == []
    )

    requests_before = len(feed_server.requests)
    after = aggregator_process(two_feeds, "poll")
    assert after.returncode == 0, (step, after.stderr)
    fetched_again = feed_server.requests[requests_before:]
    assert {r.path for r in fetched_again} == {"/alpha.xml", "/beta.xml"}
    assert all("if-none-match" not in r.headers for r in fetched_again)  # no validators kept
    assert count(tmp_path, "articles") == 8
    assert count(tmp_path, "story_articles") == 8  # and every one of them placed in a story


@pytest.mark.slow
def test_kill_9_after_storing_before_clustering_is_caught_up_by_the_next_run(
    two_feeds: Path, tmp_path: Path, feed_server: FeedServer
) -> None:
    crashed = aggregator_process(two_feeds, "poll", kill_in="aggregator.stories:cluster_pending")
    assert crashed.returncode == -signal.SIGKILL
    assert count(tmp_path, "articles") == 8 and count(tmp_path, "story_articles") == 0
    after = aggregator_process(two_feeds, "poll", "--all")
    assert after.returncode == 0, after.stderr
    assert all(r.headers.get("if-none-match") for r in feed_server.requests[2:])
    assert count(tmp_path, "articles") == 8 and count(tmp_path, "story_articles") == 8


# --- 21. a full disk, a read-only database ------------------------------------------------------


@pytest.mark.slow
def test_a_full_disk_exits_non_zero_with_a_clear_message_and_rolls_back(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.add("/small.xml", body=news("small", 2))
    config = write_config(tmp_path, [feed_server.url("/small.xml")])
    assert aggregator_process(config, "poll").returncode == 0
    before = {table: count(tmp_path, table) for table in ("articles", "items")}
    big = news("big", 400, words=200)
    feed_server.add("/big.xml", body=big)
    config = write_config(tmp_path, [feed_server.url("/small.xml"), feed_server.url("/big.xml")])
    largest = max(p.stat().st_size for p in tmp_path.glob("agg.db*"))
    full = aggregator_process(config, "poll", "--all", max_file_size=largest + 64 * 1024)
    assert full.returncode == 3, full.stderr
    assert "agg.db: the database could not be written: the disk is full, or failing" in (
        full.stderr
    )
    assert "Traceback" not in full.stderr
    assert {table: count(tmp_path, table) for table in ("articles", "items")} == before
    again = aggregator_process(config, "poll", "--all")
    assert again.returncode == 0, again.stderr
    assert count(tmp_path, "articles") == before["articles"] + 400


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only files regardless")
def test_a_read_only_database_exits_non_zero_with_a_clear_message(
    two_feeds: Path, tmp_path: Path
) -> None:
    assert aggregator_process(two_feeds, "feeds", "list").returncode == 0
    for path in tmp_path.glob("agg.db*"):
        path.chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        result = aggregator_process(two_feeds, "poll")
    finally:
        tmp_path.chmod(0o755)
    assert result.returncode == 3
    assert "read-only" in result.stderr and "Traceback" not in result.stderr


# --- 22. rewriting the config --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kill_in", ["os:replace", "os:fsync"])
def test_a_crash_while_feeds_add_rewrites_the_config_leaves_the_old_file(
    tmp_path: Path, kill_in: str
) -> None:
    config = write_config(tmp_path, ["https://a.example/feed.xml"])
    before = config.read_text(encoding="utf-8")
    crashed = aggregator_process(
        config, "feeds", "add", "--no-check", "https://b.example/feed.xml", kill_in=kill_in
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert config.read_text(encoding="utf-8") == before
    added = aggregator_process(config, "feeds", "add", "--no-check", "https://b.example/feed.xml")
    assert added.returncode == 0, added.stderr
    assert "https://b.example/feed.xml" in config.read_text(encoding="utf-8")
    # The crash may leave its half-written copy behind: hidden, and never read.
    assert all(p.name.startswith(".config.yaml.") for p in tmp_path.glob("*.tmp"))
