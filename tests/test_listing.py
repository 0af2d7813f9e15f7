"""The decisions moved out of the store: pure tests of ranking.story_view and schedule's
feed_views_of and due, then aggregator.listing on a real database, and a guard that the store
package imports no decision (it may import the types the pure modules take)."""

from __future__ import annotations

import ast
from dataclasses import fields, replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import aggregator.store
from aggregator.listing import (
    due_feeds,
    feed_views,
    get_story,
    ranked_stories,
    stories_for_links,
)
from aggregator.models import (
    FeedHealth,
    FeedRecord,
    FeedState,
    FeedStatus,
    StoryRecord,
    StoryView,
)
from aggregator.ranking import story_view
from aggregator.render import story_links
from aggregator.schedule import due, feed_views_of

from .stored import HOUR, NOW, article, cluster, feed_id, new_store, save

SIX = timedelta(hours=6)


def record(first: datetime, last: datetime) -> StoryRecord:
    return StoryRecord(
        id=7,
        title="Harbour strike",
        size=3,
        sources=("Alpha", "Beta"),
        first_seen=first,
        last_seen=last,
        terms=("harbour",),
        unread=2,
    )


@pytest.mark.parametrize(
    ("first", "last", "status"),
    [
        (NOW - 2 * HOUR, NOW - HOUR, "new"),
        (NOW - 20 * HOUR, NOW - HOUR, "growing"),
        (NOW - 20 * HOUR, NOW - 7 * HOUR, "quiet"),
    ],
)
def test_story_view_is_the_record_with_its_status(
    first: datetime, last: datetime, status: str
) -> None:
    view = story_view(record(first, last), NOW, SIX)
    assert view.status == status
    assert (view.id, view.title, view.size, view.sources, view.terms, view.unread) == (
        7,
        "Harbour strike",
        3,
        ("Alpha", "Beta"),
        ("harbour",),
        2,
    )
    assert (view.first_seen, view.last_seen, view.articles) == (first, last, ())


def test_a_story_record_is_a_story_view_without_its_status() -> None:
    """A view is its record plus a status, so story_view can copy the record field by field."""
    shown = [f.name for f in fields(StoryView) if f.name != "status"]
    assert [f.name for f in fields(StoryRecord)] == shown


def feed(id: int, **changes: object) -> FeedState:
    state = FeedState(
        id=id,
        url=f"https://{id}.example/feed",
        title=None,
        tags=(),
        effective_url=None,
        etag=None,
        last_modified=None,
        body_hash=None,
        status=FeedStatus.OK,
        next_due=NOW - HOUR,
        error_count=0,
        last_error=None,
        last_success=NOW - 2 * HOUR,
        gone=False,
    )
    return replace(state, **changes)  # type: ignore[arg-type]


def counted(state: FeedState, **changes: object) -> FeedRecord:
    found = FeedRecord(state, "Own title", None, item_count=5, fetch_count=4, not_modified_count=1)
    return replace(found, **changes)  # type: ignore[arg-type]


def test_feed_views_name_each_feeds_health() -> None:
    moved = feed(3, effective_url="https://1.example/feed")  # onto feed 1: a duplicate
    feeds = [
        counted(feed(1, title="Given")),
        counted(feed(2, error_count=2, status=FeedStatus.ERROR)),
        counted(moved),
        counted(feed(4, gone=True, status=FeedStatus.GONE)),
        counted(feed(5, retry_after=NOW + HOUR)),
        counted(feed(6, retry_after=NOW - HOUR, status=FeedStatus.NOT_MODIFIED)),
    ]
    views = feed_views_of(feeds, NOW)
    assert [v.status for v in views] == [
        "ok",
        "backing off",
        "duplicate",
        "gone",
        "rate-limited",
        "not modified",
    ]
    assert all(type(v.status) is FeedHealth for v in views)  # never the FeedStatus enum
    assert [v.title for v in views[:2]] == ["Given", "Own title"]
    assert views[2].duplicate_of == "https://1.example/feed"
    # Neither a duplicate nor a gone feed is fetched again; a passed Retry-After is not shown.
    assert [v.next_due for v in views] == [NOW - HOUR, NOW - HOUR, None, None, *[NOW - HOUR] * 2]
    assert [v.retry_after for v in views[4:]] == [NOW + HOUR, None]
    assert (views[0].item_count, views[0].not_modified_ratio) == (5, 0.25)


def test_due_feeds_respect_gone_duplicates_and_retry_after_even_with_all() -> None:
    feeds = [
        feed(1),
        feed(2, next_due=NOW + HOUR),  # not yet
        feed(3, effective_url="https://1.example/feed"),  # a duplicate of feed 1
        feed(4, gone=True),
        feed(5, retry_after=NOW + HOUR),
        feed(6, next_due=None),  # never fetched
    ]
    assert [f.id for f in due(feeds, NOW)] == [1, 6]
    assert [f.id for f in due(feeds, NOW, ignore_schedule=True)] == [1, 2, 6]


def test_a_gone_feed_is_not_the_one_a_moved_feed_duplicates() -> None:
    feeds = [feed(1, gone=True), feed(2, effective_url="https://1.example/feed")]
    assert [f.id for f in due(feeds, NOW)] == [2]
    assert [v.status for v in feed_views_of([counted(f) for f in feeds], NOW)] == ["gone", "ok"]


def test_listing_reads_the_store_then_ranks_and_judges(tmp_path: Path) -> None:
    a, b = "https://a.example/feed", "https://b.example/feed"
    store = new_store(tmp_path, a, b)
    old = save(store, feed_id(store, a), [article("Old news", published=NOW - 30 * HOUR)])
    fresh = save(
        store,
        feed_id(store, b),
        [article("Fresh one", published=NOW - HOUR), article("Fresh two", published=NOW)],
    )
    quiet, busy = cluster(store, old, fresh)
    ranked = ranked_stories(store, since=None, min_size=1, limit=0, now=NOW, recent=SIX)
    assert [(s.id, s.status) for s in ranked] == [(busy, "new"), (quiet, "quiet")]
    assert [s.id for s in ranked_stories(store, since=None, min_size=1, limit=1, now=NOW)] == [busy]
    assert ranked_stories(store, since=None, min_size=2, limit=0, now=NOW, recent=SIX) == [
        ranked[0]
    ]
    story = get_story(store, quiet, now=NOW, recent=SIX)
    assert [a.title for a in story.articles] == ["Old news"] and story.status == "quiet"
    assert [v.url for v in feed_views(store, NOW)] == [a, b]
    assert due_feeds(store, NOW) == []  # each was fetched at NOW, due an hour later
    assert [f.url for f in due_feeds(store, NOW + HOUR)] == [a, b]


def test_a_digest_reads_each_outlets_first_web_link_and_picks_the_links_of_the_whole_story(
    tmp_path: Path,
) -> None:
    """stories_for_links reads only each outlet's first article with a web link; the links a
    digest picks from it are those it would pick from every article of the story."""
    feeds = [f"https://{n}.example/feed" for n in "abc"]
    store = new_store(tmp_path, *feeds)
    ids: list[int] = []
    for n, (feed, url) in enumerate(
        [
            (0, None),  # no link: the outlet's next article gives it
            (0, "javascript:alert(1)"),
            (1, "https://b.example/1"),
            (0, "HTTPS://a.example/2"),
            (1, "https://b.example/2"),
            (2, "http://c.example/1"),
            (2, "https://c.example/2"),
        ]
    ):
        ids += save(
            store,
            feed_id(store, feeds[feed]),
            [article(f"Harbour strike {n}", url=url, published=NOW - (10 - n) * HOUR)],
        )
    (story,) = cluster(store, ids)
    whole = get_story(store, story, now=NOW)
    (light,) = stories_for_links(store, [story], now=NOW)
    assert [a.url for a in light.articles] == [
        "https://b.example/1",
        "HTTPS://a.example/2",
        "http://c.example/1",
    ]
    for limit in range(1, 5):
        assert story_links(light, limit) == story_links(whole, limit)
    assert (light.size, light.sources, light.unread, light.status) == (
        whole.size,
        whole.sources,
        whole.unread,
        whole.status,
    )


DECISIONS = {"rank", "story_status", "story_view", "feed_health", "duplicate_feeds", "due"}


def test_the_store_package_imports_no_decision_at_module_level() -> None:
    for module in Path(aggregator.store.__file__).parent.glob("*.py"):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = {alias.name for alias in node.names}
                assert not names & DECISIONS, (module.name, names & DECISIONS)
                assert node.module != "listing", module.name
