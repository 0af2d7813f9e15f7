"""Typed, frozen values that the stages hand to each other.

fetch -> FetchResult -> parse -> ParsedFeed -> normalize -> Article -> dedupe/store
-> cluster -> views.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "Article",
    "ArticleView",
    "Digest",
    "Duplicate",
    "FeedConfig",
    "FeedOutcome",
    "FeedState",
    "FeedStatus",
    "FetchResult",
    "ParsedEntry",
    "ParsedFeed",
    "PollReport",
    "StoryView",
]


@dataclass(frozen=True)
class FeedConfig:
    """A feed as the user configured it."""

    url: str
    title: str | None = None
    tags: tuple[str, ...] = ()


class FeedStatus(StrEnum):
    """What the last poll of a feed came to."""

    NEW = "new"  # never polled
    OK = "ok"
    NOT_MODIFIED = "not modified"
    ERROR = "error"
    NOT_A_FEED = "not a feed"
    GONE = "gone"


@dataclass(frozen=True)
class FeedState:
    """A feed as the store knows it, with what conditional GET and scheduling need."""

    id: int
    url: str
    title: str | None
    tags: tuple[str, ...]
    effective_url: str | None
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    status: FeedStatus
    next_due: datetime | None
    error_count: int
    last_error: str | None
    last_success: datetime | None
    gone: bool

    @property
    def fetch_url(self) -> str:
        """Where to fetch: the URL after permanent redirects, else the configured one."""
        return self.effective_url or self.url


@dataclass(frozen=True)
class FetchResult:
    """What the fetch stage got. ``body`` is None on 304 Not Modified."""

    url: str
    final_url: str
    status: int
    body: bytes | None
    headers: dict[str, str]
    etag: str | None
    last_modified: str | None
    permanent_redirect: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass(frozen=True)
class ParsedEntry:
    """One item as the feed gave it, before normalisation (HTML still in place)."""

    guid: str | None
    link: str | None
    title: str | None
    summary: str | None
    published: datetime | None
    author: str | None = None


@dataclass(frozen=True)
class ParsedFeed:
    """A feed document: its metadata and entries."""

    title: str | None
    link: str | None
    entries: tuple[ParsedEntry, ...]
    ttl_minutes: int | None = None
    warning: str | None = None  # feedparser's bozo message when it recovered from bad input


@dataclass(frozen=True)
class Article:
    """A normalised item: plain text, UTC time, canonical URL and identity."""

    feed_url: str
    guid: str | None
    url: str | None
    canonical_url: str | None
    title: str
    summary: str
    published: datetime
    first_seen: datetime
    content_hash: str

    @property
    def item_key(self) -> str:
        """Identity within one feed: the guid, then the canonical link, then the content hash."""
        if self.guid:
            return f"guid:{self.guid}"
        if self.canonical_url:
            return f"link:{self.canonical_url}"
        return f"hash:{self.content_hash}"


@dataclass(frozen=True)
class FeedOutcome:
    """The result of polling one feed. A failed feed is an outcome, never an exception."""

    url: str
    status: FeedStatus
    new_articles: int = 0
    entries: int = 0
    message: str | None = None

    @property
    def failed(self) -> bool:
        return self.status in (FeedStatus.ERROR, FeedStatus.NOT_A_FEED, FeedStatus.GONE)


@dataclass(frozen=True)
class PollReport:
    """One poll: an outcome per feed, and what clustering made of the new articles."""

    outcomes: tuple[FeedOutcome, ...]
    new_articles: int
    stories_touched: int
    seconds: float

    def count(self, status: FeedStatus) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> tuple[FeedOutcome, ...]:
        return tuple(o for o in self.outcomes if o.failed)

    def summary(self) -> str:
        n = len(self.outcomes)
        ok = self.count(FeedStatus.OK)
        nm = self.count(FeedStatus.NOT_MODIFIED)
        bad = len(self.failed)
        return (
            f"{n:,} feed{'s' if n != 1 else ''}: {ok:,} ok, {nm:,} not modified, {bad:,} failed; "
            f"{self.new_articles:,} new article{'s' if self.new_articles != 1 else ''} "
            f"in {self.seconds:.1f} s"
        )


@dataclass(frozen=True)
class Digest:
    """What a digest shows: ranked stories, and the feeds that keep failing."""

    generated_at: datetime
    since: datetime | None
    stories: tuple[StoryView, ...]
    failing_feeds: tuple[tuple[str, str], ...]  # (feed, last error), failing for over a day


@dataclass(frozen=True)
class Duplicate:
    """Another place the same article was seen."""

    url: str | None
    feed: str


@dataclass(frozen=True)
class ArticleView:
    """An article as browsing and digests show it."""

    id: int
    title: str
    url: str | None
    feed: str
    published: datetime
    first_seen: datetime
    story_id: int | None
    summary: str = ""
    duplicates: tuple[Duplicate, ...] = ()
    similarity: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "url": self.url,
            "feed": self.feed,
            "published": _iso(self.published),
            "story_id": self.story_id,
            "duplicates": [{"url": d.url, "feed": d.feed} for d in self.duplicates],
        }


@dataclass(frozen=True)
class StoryView:
    """A story as browsing and digests show it."""

    id: int
    title: str
    size: int
    sources: tuple[str, ...]
    first_seen: datetime
    last_seen: datetime
    terms: tuple[str, ...]
    articles: tuple[ArticleView, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "size": self.size,
            "sources": len(self.sources),
            "source_names": list(self.sources),
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
            "terms": list(self.terms),
            "articles": [a.to_json() for a in self.articles],
        }


def _iso(value: datetime) -> str:
    """ISO 8601 in UTC with a Z, the one time format of the JSON interface."""
    return value.isoformat().replace("+00:00", "Z")
