"""aggregator/store/views.py on a real database file: what browsing reads, without decisions."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from aggregator.errors import NotFoundError
from aggregator.models import FeedConfig
from aggregator.store import Store

from .stored import HOUR, NOW, article, cluster, feed_id, new_store, save

A, B = "https://a.example/feed", "https://b.example/feed"


class World(NamedTuple):
    store: Store
    big: list[int]  # article ids
    small: int
    big_story: int
    small_story: int


def world(tmp_path: Path) -> World:
    """Feed A (tagged world) has a three-article story; feed B a one-article story and a copy
    of A's first article."""
    store = new_store(tmp_path, FeedConfig(A, "Alpha", ("world",)), FeedConfig(B, "Beta"))
    a, b = feed_id(store, A), feed_id(store, B)
    big = save(
        store,
        a,
        [
            article("Harbour strike begins", published=NOW - 30 * HOUR, url="https://a/1"),
            article("Harbour strike spreads", published=NOW - 2 * HOUR),
            article("Harbour strike talks", published=NOW - HOUR),
        ],
    )
    (small,) = save(store, b, [article("Rates rise in Norvania", published=NOW - 3 * HOUR)])
    copy = article("Harbour strike begins", guid="b-copy", url="https://b/1", first_seen=NOW)
    save(store, b, copies=[(copy, big[0])])
    big_story, small_story = cluster(store, big, [small])
    return World(store, big, small, big_story, small_story)


def test_story_figures_are_what_ranking_needs(tmp_path: Path) -> None:
    w = world(tmp_path)
    store = w.store
    figures = {
        f.id: f for f in store.story_figures(since=None, min_size=1, recent_since=NOW - 6 * HOUR)
    }
    assert set(figures) == {w.big_story, w.small_story}
    assert figures[w.big_story][1:] == (3, 2, NOW - 30 * HOUR, NOW - HOUR, 1)
    assert figures[w.small_story][1:] == (1, 1, NOW - 3 * HOUR, NOW - 3 * HOUR, 1)
    # Velocity counts outlets that published within the window, not articles.
    wide = store.story_figures(since=None, min_size=1, recent_since=NOW - 48 * HOUR)
    assert {f.id: f.recent for f in wide} == {w.big_story: 1, w.small_story: 1}


def test_story_figures_filter_by_size_window_read_feed_and_tag(tmp_path: Path) -> None:
    w = world(tmp_path)
    store = w.store

    def ids(**filters: object) -> set[int]:
        found = store.story_figures(recent_since=NOW, **filters)  # type: ignore[arg-type]
        return {f.id for f in found}

    assert ids(since=None, min_size=2) == {w.big_story}  # three articles, or two sources
    assert ids(since=NOW - HOUR, min_size=1) == {w.big_story}  # seen when the copy came
    assert ids(since=None, min_size=1, tags=["world"]) == {w.big_story}
    assert ids(since=None, min_size=1, feeds=["Beta"]) == {w.big_story, w.small_story}
    assert ids(since=None, min_size=1, feeds=[A]) == {w.big_story}
    store.mark_read([w.small], read=True)
    assert ids(since=None, min_size=1, unread=True) == {w.big_story}


def test_story_records_come_in_the_order_asked_with_or_without_articles(tmp_path: Path) -> None:
    w = world(tmp_path)
    store = w.store
    store.mark_read(w.big[:1], read=True)
    light, heavy = store.story_records([w.small_story, w.big_story], with_articles=False)
    assert (light.id, heavy.id) == (w.small_story, w.big_story)
    assert heavy.articles == () and heavy.unread == 2  # counted without reading the articles
    assert heavy.sources == ("Alpha", "Beta")  # the copy's feed is a source
    (whole,) = store.story_records([w.big_story])
    assert [a.id for a in whole.articles] == w.big and whole.unread == 2
    assert whole.articles[0].duplicates[0].feed == "Beta"


def test_a_story_record_follows_a_merge(tmp_path: Path) -> None:
    w = world(tmp_path)
    store = w.store
    store.merge_stories(w.big_story, [w.small_story])
    record = store.story_record(w.small_story)
    assert record.id == w.big_story and len(record.articles) == 4
    with pytest.raises(NotFoundError):
        store.story_record(12345)


def test_article_views_by_id_in_id_order_and_unknown_ids_refused(tmp_path: Path) -> None:
    w = world(tmp_path)
    store = w.store
    views = store.article_views([w.small, w.big[0]])
    assert [v.id for v in views] == sorted([w.small, w.big[0]])
    assert {v.id: v.feed for v in views} == {w.big[0]: "Alpha", w.small: "Beta"}
    assert store.article_views([]) == []
    with pytest.raises(NotFoundError, match="no article with id 777"):
        store.article_views([w.small, 777])


def test_articles_newest_first_since_a_time_and_never_muted(tmp_path: Path) -> None:
    w = world(tmp_path)
    store = w.store
    assert [a.id for a in store.articles(since=None, limit=2)] == [w.big[2], w.big[1]]
    store.mute_articles('"talks"', [], rules="talks")
    assert [a.id for a in store.articles(since=None, limit=0)] == [w.big[1], w.small, w.big[0]]
    assert store.articles(since=NOW + HOUR, limit=0) == []


def test_search_highlights_matches_and_takes_words_as_words(tmp_path: Path) -> None:
    w = world(tmp_path)
    store = w.store
    (found,) = store.search("strike talks", limit=10)
    assert found.id == w.big[2]
    assert found.title_match is not None
    text, spans = found.title_match.text, found.title_match.spans
    assert [text[s:e] for s, e in spans] == ["strike talks"]  # a phrase is one span
    assert store.search('rates" OR "harbour', limit=10) == []  # no FTS5 syntax gets through
    with pytest.raises(NotFoundError, match="at least one word"):
        store.search("   ", limit=10)
    store.mute_articles('"rates"', [], rules="rates")
    assert [a.muted for a in store.search("rates", limit=10)] == [True]
    assert store.search("rates", limit=10, muted=False) == []


def test_counts(tmp_path: Path) -> None:
    store = world(tmp_path).store
    store.sync_feeds([FeedConfig(A)], NOW)
    assert store.counts() == {"feeds": 1, "articles": 4, "stories": 2}
