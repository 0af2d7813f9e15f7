"""Stories and feeds as the commands list them: read from the store, then ranked and judged.

The feeds' side (schedule, and dedupe with it) is imported by the functions that need it, so
`aggregator stories` does not load it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from .config import ClusteringConfig, Config
from .models import FeedState, FeedView, StoryView
from .ranking import rank, story_view
from .store import Store

__all__ = [
    "DEFAULT_RECENT",
    "due_feeds",
    "feed_report",
    "feed_views",
    "get_story",
    "ranked_stories",
    "stories_for_links",
    "unknown_filters",
]

# A story is "quiet" once no article came within this long (clustering.quiet_after).
DEFAULT_RECENT = ClusteringConfig().quiet_after


def ranked_stories(
    store: Store,
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
    ``since``, best first (see aggregator.ranking); the first ``limit`` (0: all). ``min_size``
    is the fewest articles or sources: a wire article carried by three outlets is one article
    with three sources.

    ``recent`` is how far back velocity counts articles, and how long a story stays new or
    growing without another article. ``unread`` keeps stories with an article not read;
    ``feeds`` (URLs or titles) and ``tags`` keep stories that one of those feeds carries.
    """
    now = now or datetime.now(UTC)
    figures = store.story_figures(
        since=since,
        min_size=min_size,
        recent_since=now - recent,
        unread=unread,
        feeds=feeds,
        tags=tags,
    )
    # Only the few ranked highest are read whole.
    chosen = [f.id for f in rank(figures, now, limit)]
    return [
        story_view(story, now, recent)
        for story in store.story_records(chosen, with_articles=with_articles)
    ]


def stories_for_links(
    store: Store, story_ids: Sequence[int], *, now: datetime, recent: timedelta = DEFAULT_RECENT
) -> list[StoryView]:
    """These stories, each with only its outlets' first articles with a web link: what a
    digest shows of a story (its links), read in the same time for a story of any size."""
    return [
        story_view(story, now, recent)
        for story in store.story_records(story_ids, with_articles="outlets")
    ]


def get_story(
    store: Store, story_id: int, *, now: datetime | None = None, recent: timedelta = DEFAULT_RECENT
) -> StoryView:
    """One story with its articles; the id of a story merged into another leads to the
    survivor."""
    return story_view(store.story_record(story_id), now or datetime.now(UTC), recent)


def feed_views(store: Store, now: datetime) -> list[FeedView]:
    """Every enabled feed with its polling state, for `feeds list`."""
    from .schedule import feed_views_of  # here: `stories` needs none of the feeds' schedule

    return feed_views_of(store.feed_records(), now)


def feed_report(config: Config, store: Store, *, now: datetime | None = None) -> list[FeedView]:
    """Every configured feed with its polling state (the config's feeds are synced first)."""
    now = now or datetime.now(UTC)
    if not store.read_only:  # a database the user may only read shows the feeds it knows
        store.sync_feeds(config.feeds, now)
    return feed_views(store, now)


def unknown_filters(
    store: Store, *, feeds: Sequence[str] = (), tags: Sequence[str] = ()
) -> list[str]:
    """What is wrong with ``--feed`` (URLs or titles) and ``--tag`` values that no feed has:
    a typo would otherwise look like a quiet day."""
    names, known_tags = store.feed_names()
    notes = [
        f"--feed {feed}: no such feed (`feeds list` shows their titles)"
        for feed in feeds
        if feed not in names
    ]
    listed = ", ".join(sorted(known_tags)) or "none"
    notes += [
        f"--tag {tag}: no feed has this tag (tags: {listed})"
        for tag in tags
        if tag not in known_tags
    ]
    return notes


def due_feeds(store: Store, now: datetime, *, ignore_schedule: bool = False) -> list[FeedState]:
    """The feeds to fetch now (see schedule.due)."""
    from .schedule import due

    return due(store.feeds(), now, ignore_schedule=ignore_schedule)
