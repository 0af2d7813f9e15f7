"""Builders for the store's own tests: a real database file, feeds, articles and stories."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.dedupe import IngestPlan
from aggregator.models import (
    Article,
    FeedConfig,
    FeedStatus,
    FeedUpdate,
    StoredStory,
    StoryPlacement,
)
from aggregator.store import Store, open_store

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def new_store(tmp_path: Path, *feeds: str | FeedConfig) -> Store:
    """A fresh database file with these feeds (URLs, or configs with a title and tags)."""
    store = open_store(tmp_path / "store.db")
    store.sync_feeds([f if isinstance(f, FeedConfig) else FeedConfig(f) for f in feeds], NOW)
    return store


def feed_id(store: Store, url: str) -> int:
    return next(f.id for f in store.feeds(enabled_only=False) if f.url == url)


def article(
    title: str,
    *,
    guid: str | None = None,
    url: str | None = None,
    summary: str | None = None,
    published: datetime = NOW,
    first_seen: datetime | None = None,
    content_hash: str | None = None,
) -> Article:
    return Article(
        feed_url="unused",
        guid=guid if guid is not None else title,
        url=url,
        canonical_url=url,
        title=title,
        summary=summary if summary is not None else f"About {title}",
        published=published,
        first_seen=first_seen or published,
        content_hash=content_hash or f"hash of {title}",
    )


def ok(at: datetime = NOW) -> FeedUpdate:
    """A successful fetch at ``at``, due again an hour later."""
    return FeedUpdate(status=FeedStatus.OK, fetched_at=at, next_due=at + HOUR)


def save(
    store: Store,
    feed: int,
    new: Sequence[Article] = (),
    *,
    copies: Sequence[tuple[Article, int]] = (),
    keys: Sequence[tuple[int, ...]] = (),
    update: FeedUpdate | None = None,
) -> list[int]:
    """One poll of ``feed`` that stores ``new`` and sightings of stored articles."""
    plan = IngestPlan(new=tuple(new), duplicates=tuple(copies), seen=0, new_keys=tuple(keys))
    return store.save_poll(feed, plan, update or ok())


def cluster(store: Store, *groups: Sequence[int], now: datetime = NOW) -> list[int]:
    """Put each group of articles in a new story headed by its first; return the story ids."""
    placements, founders, summaries = [], {}, []
    for n, group in enumerate(groups, start=1):
        founders[-n] = group[0]
        placements += [StoryPlacement(a, -n, -n, None if a == group[0] else 0.5) for a in group]
        summaries.append(StoredStory(-n, f"Story {n}", (f"term{n}",)))
    ids = store.save_clustering(
        placements=placements,
        new_story_keys=founders,
        stories=summaries,
        df_increments={},
        documents=sum(len(g) for g in groups),
        now=now,
    )
    return [ids[-n] for n in range(1, len(groups) + 1)]
