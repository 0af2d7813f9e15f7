"""aggregator/store/ingest.py on a real database file: what a poll reads and stores."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from aggregator.errors import StorageError
from aggregator.models import FeedStatus

from .stored import HOUR, NOW, article, cluster, feed_id, new_store, ok, save

A, B = "https://a.example/feed", "https://b.example/feed"


def test_save_poll_stores_articles_their_sightings_and_headline_keys(tmp_path: Path) -> None:
    store = new_store(tmp_path, A)
    a = feed_id(store, A)
    ids = save(store, a, [article("One"), article("Two")], keys=[(11, 12), (13,)])
    assert len(ids) == 2 and ids[0] < ids[1]
    assert store.known_items(a, ["guid:One", "guid:Two", "guid:Three"]) == {"guid:One", "guid:Two"}
    near = store.near_candidates([11, 13, 99])
    assert {key: [c.article_id for c in found] for key, found in near.items()} == {
        11: [ids[0]],
        13: [ids[1]],
    }
    assert store.feeds()[0].status == FeedStatus.OK
    assert store.feed_records()[0].item_count == 2


def test_known_items_are_per_feed_and_read_past_one_chunk(tmp_path: Path) -> None:
    store = new_store(tmp_path, A, B)
    a, b = feed_id(store, A), feed_id(store, B)
    save(store, a, [article(f"Item {n}") for n in range(1200)])
    keys = [f"guid:Item {n}" for n in range(1200)]
    assert store.known_items(a, [*keys, *keys]) == set(keys)  # repeats are asked once
    assert store.known_items(b, keys) == set()


def test_articles_by_canonical_url_lead_to_the_stored_article(tmp_path: Path) -> None:
    store = new_store(tmp_path, A)
    a = feed_id(store, A)
    (one,) = save(store, a, [article("One", url="https://news.example/one", guid="g1")])
    found = store.articles_by_canonical(["https://news.example/one", "https://news.example/x"])
    assert list(found) == ["https://news.example/one"]
    link = found["https://news.example/one"]
    assert (link.article_id, link.feed_id, link.guid, link.content_hash) == (
        one,
        a,
        "g1",
        "hash of One",
    )


def test_known_texts_are_those_this_feed_carried_with_their_dates(tmp_path: Path) -> None:
    store = new_store(tmp_path, A, B)
    a, b = feed_id(store, A), feed_id(store, B)
    save(store, a, [article("One", content_hash="h1"), article("Two", content_hash="h2")])
    save(store, b, [article("Three", content_hash="h3", published=NOW - HOUR)])
    assert store.known_texts(a, ["h1", "h3"]) == {"h1": {NOW}}
    assert store.known_texts(b, ["h1", "h3"]) == {"h3": {NOW - HOUR}}


def test_near_candidates_leave_out_articles_published_before_since(tmp_path: Path) -> None:
    store = new_store(tmp_path, A)
    a = feed_id(store, A)
    old, new = save(
        store,
        a,
        [article("Old", published=NOW - 48 * HOUR), article("New")],
        keys=[(7,), (7,)],
    )
    assert [c.article_id for c in store.near_candidates([7])[7]] == [old, new]
    recent = store.near_candidates([7], since=NOW - HOUR)
    assert [(c.article_id, c.title, c.published) for c in recent[7]] == [(new, "New", NOW)]


def test_recent_publications_leave_out_items_without_a_date_of_their_own(
    tmp_path: Path,
) -> None:
    store = new_store(tmp_path, A)
    a = feed_id(store, A)
    dated = article("Dated", published=NOW - 2 * HOUR, first_seen=NOW)
    undated = article("Undated", published=NOW, first_seen=NOW)
    old = article("Old", published=NOW - 30 * HOUR, first_seen=NOW)
    save(store, a, [dated, undated, old])
    assert store.recent_publications(a, NOW - 24 * HOUR) == {"guid:Dated": NOW - 2 * HOUR}


def test_a_copy_in_another_feed_adds_a_source_to_its_story(tmp_path: Path) -> None:
    store = new_store(tmp_path, A, B)
    a, b = feed_id(store, A), feed_id(store, B)
    (original,) = save(store, a, [article("Wire story")])
    (story,) = cluster(store, [original])
    assert store.story_records([story])[0].sources == (A,)
    copy = article("Wire story", guid="b-1", first_seen=NOW + HOUR)
    assert save(store, b, copies=[(copy, original)]) == []  # no new article
    (record,) = store.story_records([story])
    assert (record.size, record.sources) == (1, (A, B))
    assert store.known_items(b, ["guid:b-1"]) == {"guid:b-1"}
    assert store.story_figures(since=NOW + HOUR, min_size=2, recent_since=NOW)[0].id == story


def test_validators_are_kept_only_from_a_success(tmp_path: Path) -> None:
    store = new_store(tmp_path, A)
    a = feed_id(store, A)
    save(store, a, update=replace(ok(), etag='"v1"', last_modified="Mon", body_hash="b1"))
    failed = replace(ok(NOW + HOUR), status=FeedStatus.ERROR, error="500", etag='"v2"')
    save(store, a, update=failed)
    (feed,) = store.feeds()
    assert (feed.etag, feed.last_modified, feed.body_hash) == ('"v1"', "Mon", "b1")
    assert (feed.status, feed.error_count, feed.last_error) == (FeedStatus.ERROR, 1, "500")
    save(store, a, update=ok(NOW + 2 * HOUR))
    (feed,) = store.feeds()
    assert (feed.error_count, feed.last_success, feed.next_due) == (
        0,
        NOW + 2 * HOUR,
        NOW + 3 * HOUR,
    )


def test_a_failed_poll_stores_neither_articles_nor_state(tmp_path: Path) -> None:
    store = new_store(tmp_path, A)
    a = feed_id(store, A)
    with pytest.raises(StorageError):
        # Two articles under one canonical URL: the second breaks the unique index.
        save(
            store,
            a,
            [article("One", url="https://x.example/1"), article("Two", url="https://x.example/1")],
        )
    assert store.counts()["articles"] == 0
    assert store.feeds()[0].status == FeedStatus.NEW
