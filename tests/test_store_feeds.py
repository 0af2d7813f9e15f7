"""aggregator/store/feeds.py on a real database file: the feeds table against the config."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from aggregator.models import FeedConfig, FeedStatus

from .stored import HOUR, NOW, feed_id, new_store, ok, save

A, B, C = "https://a.example/feed", "https://b.example/feed", "https://c.example/feed"


def test_sync_adds_feeds_with_their_title_and_tags_in_config_order(tmp_path: Path) -> None:
    store = new_store(tmp_path, FeedConfig(A, "Alpha", ("world",)), FeedConfig(B))
    feeds = store.feeds()
    assert [(f.url, f.title, f.tags) for f in feeds] == [(A, "Alpha", ("world",)), (B, None, ())]
    assert all(f.status == FeedStatus.NEW and f.next_due is None for f in feeds)


def test_sync_updates_title_and_tags_and_keeps_the_feeds_state(tmp_path: Path) -> None:
    store = new_store(tmp_path, FeedConfig(A, "Alpha"))
    save(store, feed_id(store, A), update=replace(ok(), etag='"v1"'))
    store.sync_feeds([FeedConfig(A, "Renamed", ("tech",))], NOW + HOUR)
    (feed,) = store.feeds()
    assert (feed.title, feed.tags, feed.etag, feed.status) == (
        "Renamed",
        ("tech",),
        '"v1"',
        FeedStatus.OK,
    )


def test_a_gone_feed_removed_and_added_again_gets_another_chance(tmp_path: Path) -> None:
    store = new_store(tmp_path, A, B)
    gone = replace(ok(), status=FeedStatus.GONE, gone=True, error="410 Gone")
    save(store, feed_id(store, A), update=gone)
    store.sync_feeds([FeedConfig(A), FeedConfig(B)], NOW)  # still listed: still gone
    assert [f.gone for f in store.feeds()] == [True, False]
    store.sync_feeds([FeedConfig(B)], NOW)
    assert [f.url for f in store.feeds()] == [B]
    store.sync_feeds([FeedConfig(A), FeedConfig(B)], NOW)
    assert [(f.url, f.gone) for f in store.feeds()] == [(A, False), (B, False)]


def test_feed_records_carry_the_counters_and_the_feeds_own_title(tmp_path: Path) -> None:
    store = new_store(tmp_path, A, B)
    a = feed_id(store, A)
    save(store, a, update=replace(ok(), title="Alpha's own title"))
    save(store, a, update=replace(ok(NOW + HOUR), status=FeedStatus.NOT_MODIFIED))
    failed = replace(ok(NOW + 2 * HOUR), status=FeedStatus.ERROR, error="timed out")
    save(store, a, update=failed)
    store.sync_feeds([FeedConfig(A)], NOW)  # B leaves the config: no record
    (record,) = store.feed_records()
    assert record.state.url == A and record.state.title is None
    assert record.feed_title == "Alpha's own title"
    assert (record.fetch_count, record.not_modified_count, record.item_count) == (3, 1, 0)
    assert record.last_error_at == NOW + 2 * HOUR
    assert (record.state.error_count, record.state.last_error) == (1, "timed out")
    assert record.state.last_success == NOW + HOUR


def test_failing_feeds_are_named_as_shown_and_sorted(tmp_path: Path) -> None:
    store = new_store(tmp_path, FeedConfig(A, "Zulu"), B, C)
    for url in (A, B):
        failed = replace(ok(), status=FeedStatus.ERROR, error=f"{url} broke")
        save(store, feed_id(store, url), update=replace(failed, title="B's own"))
    save(store, feed_id(store, C))  # succeeds: not failing
    since = NOW + HOUR  # neither has succeeded since it was added, before this
    assert store.failing_feeds(since=since) == [("B's own", f"{B} broke"), ("Zulu", f"{A} broke")]
    # A feed added after the cutoff has not been failing that long.
    assert store.failing_feeds(since=NOW - HOUR) == []
