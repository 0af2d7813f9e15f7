"""Typed, frozen values that the stages hand to each other.

fetch -> FetchResult -> parse -> ParsedFeed -> normalize -> Article -> dedupe/store
-> cluster -> views.

Over 600 lines on purpose: every value that crosses from one stage to another is here, in one
place, rather than beside the stage that makes it (which would have the stages import each
other for their types). It is declarations only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple, overload

__all__ = [
    "Article",
    "ArticleView",
    "ClusterDoc",
    "Delivery",
    "DeliveryOutcome",
    "Digest",
    "DigestEntry",
    "Document",
    "Duplicate",
    "FeedConfig",
    "FeedHealth",
    "FeedOutcome",
    "FeedRecord",
    "FeedState",
    "FeedStatus",
    "FeedUpdate",
    "FeedView",
    "FetchResult",
    "Highlight",
    "ParsedEntry",
    "ParsedFeed",
    "PollReport",
    "PruneReport",
    "QueuedMail",
    "RunReport",
    "StoredStory",
    "StoryFigures",
    "StoryPlacement",
    "StoryRecord",
    "StoryStatus",
    "StoryView",
    "SummarySentence",
    "SummarySource",
    "iso",
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


class FeedHealth(StrEnum):
    """What `feeds list` calls a feed's state (see aggregator.schedule.feed_health)."""

    NEW = "new"  # never polled
    OK = "ok"
    NOT_MODIFIED = "not modified"
    ERROR = "error"  # the last poll failed, the first failure in a row
    BACKING_OFF = "backing off"  # failures in a row: the interval grows
    RATE_LIMITED = "rate-limited"  # a server's Retry-After is pending
    GONE = "gone"  # 410
    DUPLICATE = "duplicate"  # it moved permanently to a feed that is also in the list


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
    ttl_minutes: int | None = None
    retry_after: datetime | None = None  # a server's Retry-After, which even `poll --all` keeps
    pace: timedelta | None = None  # typical time between its items, when its items are dated
    newest_item: datetime | None = None  # its newest dated item

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
    def has_own_date(self) -> bool:
        """False when the feed gave no usable date and the article is dated when first seen."""
        return self.published != self.first_seen

    @property
    def item_key(self) -> str:
        """Identity within one feed: the guid, then the canonical link, then the content hash."""
        if self.guid:
            return f"guid:{self.guid}"
        if self.canonical_url:
            return f"link:{self.canonical_url}"
        return f"hash:{self.content_hash}"


@dataclass(frozen=True)
class Document:
    """A fetched feed document, parsed and normalised: what a parser worker sends back."""

    title: str | None  # plain text
    link: str | None  # the site's address, as the feed gave it
    ttl_minutes: int | None
    warning: str | None  # what feedparser recovered from, if anything
    entries: int  # items in the document
    articles: tuple[Article, ...]  # the items that normalised into articles


@dataclass(frozen=True)
class FeedOutcome:
    """The result of polling one feed. A failed feed is an outcome, never an exception."""

    url: str
    status: FeedStatus
    new_articles: int = 0
    entries: int = 0
    message: str | None = None
    notice: str | None = None  # something the user should hear of once (the feed moved...)

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
    pruned: PruneReport | None = None  # the day's prune (database.keep), when this poll ran it

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
class PruneReport:
    """What a prune removed (or, as a dry run, would remove) and how it held the database."""

    cutoff: datetime  # articles first seen before this went, saved ones apart
    articles: int
    stories: int
    seen_records: int = 0  # items still in their feeds, remembered so they are not stored again
    batches: int = 0
    longest_lock: float = 0.0  # seconds: the longest that one write transaction held the lock
    seconds: float = 0.0  # the whole prune, batches, recount, merge and vacuum
    freed_bytes: int = 0  # given back to the file system by the incremental vacuum
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "cutoff": iso(self.cutoff),
            "articles": self.articles,
            "stories": self.stories,
            "seen_records": self.seen_records,
            "batches": self.batches,
            "longest_lock_seconds": round(self.longest_lock, 4),
            "seconds": round(self.seconds, 4),
            "freed_bytes": self.freed_bytes,
            "dry_run": self.dry_run,
        }


@dataclass(frozen=True)
class RunReport:
    """One `run`: its poll, what the feeds' schedule and the digest's say, and the alert."""

    poll: PollReport
    feeds: int  # feeds that can be polled (not gone)
    next_feed: datetime | None  # when the next one is due
    digest_due: bool  # a digest was owed this run (always, without digest.at)
    next_digest: datetime | None  # the next digest time; None without digest.at
    deliveries: tuple[Delivery, ...] = ()
    alert: str | None = None  # one line for cron: feeds are failing

    @property
    def polled_nothing(self) -> bool:
        return not self.poll.outcomes


@dataclass(frozen=True)
class DigestEntry:
    """A story in a digest, and what its reader saw of it before."""

    story: StoryView
    # The sources it had in the recipient's last digest that showed it; None when it is new
    # to them.
    earlier_sources: int | None = None

    @property
    def grown(self) -> bool:
        """Shown to the reader before, and it has gained sources since."""
        return self.added_sources > 0

    @property
    def added_sources(self) -> int:
        """Outlets since the recipient's last digest (0 for a story new to them)."""
        if self.earlier_sources is None:
            return 0
        return max(0, len(self.story.sources) - self.earlier_sources)


@dataclass(frozen=True)
class QueuedMail:
    """A digest in the outbox: stored whole before it is sent, so a retry is the same message."""

    id: int
    recipient: str  # the bare address
    message_id: str
    message: bytes  # the whole message, CRLF line endings, as handed to SMTP
    stories: int
    created_at: datetime
    attempts: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class Digest:
    """What a digest shows: ranked stories, and the feeds that keep failing."""

    generated_at: datetime
    since: datetime | None  # the start of the window its stories were chosen from
    entries: tuple[DigestEntry, ...]
    failing_feeds: tuple[tuple[str, str], ...]  # (feed, last error), failing for over a day
    recipient: str | None = None  # whose digest (an address, or None for the printed one)
    # The stories past ``digest.limit``: one line each ("N more stories"), shown all the same.
    more: tuple[DigestEntry, ...] = ()

    @property
    def stories(self) -> tuple[StoryView, ...]:
        return tuple(entry.story for entry in self.entries)

    @property
    def shown(self) -> tuple[DigestEntry, ...]:
        """Every story the digest shows, in full or in its compact list."""
        return self.entries + self.more


class DeliveryOutcome(StrEnum):
    """How one recipient's digest went in a run (``Delivery.outcome``)."""

    SENT = "sent"
    RESENT = "resent"  # a digest from the outbox that an earlier run could not send
    NOTHING_NEW = "nothing new"
    FAILED = "failed"  # it stays in the outbox
    PREVIEW = "preview"  # a dry run
    PRINTED = "printed"


@dataclass(frozen=True)
class Delivery:
    """What happened to one recipient's digest in a run."""

    recipient: str
    outcome: DeliveryOutcome
    stories: int = 0
    message_id: str | None = None
    subject: str | None = None
    error: str | None = None
    digest: Digest | None = None  # for previews and printed digests


@dataclass(frozen=True)
class FeedUpdate:
    """What a poll learned about a feed, stored with its articles in one transaction."""

    status: FeedStatus
    fetched_at: datetime
    next_due: datetime
    error: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    effective_url: str | None = None
    title: str | None = None  # the feed's own title
    site_url: str | None = None
    ttl_minutes: int | None = None
    retry_after: datetime | None = None
    gone: bool = False
    counts_as_failure: bool = True  # False when the whole network was down, not this feed
    pace: timedelta | None = None  # with body_hash: the feed's publishing pace, None if unknown
    newest_item: datetime | None = None


@dataclass(frozen=True)
class FeedRecord:
    """A feed as the store reads it for `feeds list`: its state and its counters."""

    state: FeedState
    feed_title: str | None  # the feed's own title
    last_error_at: datetime | None
    item_count: int
    fetch_count: int
    not_modified_count: int


@dataclass(frozen=True)
class FeedView:
    """A feed and its polling state, as `feeds list` shows it."""

    url: str
    effective_url: str | None
    title: str | None
    tags: tuple[str, ...]
    status: FeedHealth
    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    error_count: int
    next_due: datetime | None
    item_count: int
    fetch_count: int
    not_modified_count: int
    retry_after: datetime | None = None  # pending Retry-After of a rate-limited feed
    duplicate_of: str | None = None  # the feed of the list this one moved to

    @property
    def not_modified_ratio(self) -> float | None:
        return round(self.not_modified_count / self.fetch_count, 3) if self.fetch_count else None

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "effective_url": self.effective_url,
            "title": self.title,
            "tags": list(self.tags),
            "status": self.status,
            "last_success": iso(self.last_success),
            "last_error": self.last_error,
            "last_error_at": iso(self.last_error_at),
            "error_count": self.error_count,
            "next_due": iso(self.next_due),
            "retry_after": iso(self.retry_after),
            "duplicate_of": self.duplicate_of,
            "item_count": self.item_count,
            "fetch_count": self.fetch_count,
            "not_modified_ratio": self.not_modified_ratio,
        }


@dataclass(frozen=True)
class ClusterDoc:
    """An article as the clusterer sees it."""

    key: int
    title: str
    summary: str
    source: str
    published: datetime
    story: int | None = None  # the story it already belongs to, when loading
    muted: bool = False  # by the config's mute rules: never a story's headline while others are not


@dataclass(frozen=True)
class StoryPlacement:
    """An article's place as clustering stores it.

    ``story`` is where it ends up and ``placed_in`` the story it first joined or began (they
    differ when that story was merged); either is a stored story id, or the negative key of a
    story this run began.
    """

    article: int
    story: int
    placed_in: int
    similarity: float | None
    shared_terms: tuple[str, ...] = ()
    # What made the similarity: the cosine with the story, and the hours the story had been
    # quiet, whose cost (clustering.quiet_cost) the cosine paid. None for a story's first.
    cosine: float | None = None
    quiet_hours: float | None = None

    @property
    def new_story(self) -> bool:
        """Whether the article began its story (nothing it joined had a similarity)."""
        return self.similarity is None


@dataclass(frozen=True)
class StoredStory:
    """What clustering says of a story: its headline and key terms."""

    id: int
    title: str
    terms: tuple[str, ...]


@dataclass(frozen=True)
class Duplicate:
    """Another place the same article was seen."""

    url: str | None
    feed: str


@dataclass(frozen=True)
class Highlight:
    """Text with the places a search matched: ``(start, end)`` character offsets."""

    text: str
    spans: tuple[tuple[int, int], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "spans": [list(span) for span in self.spans]}


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
    # How it came into its story (see ``story --why``): the similarity that placed it (None for
    # the article that began a story, or one the user moved), the terms it shared with the story
    # then, the story it first joined (another one when that story was merged into this one),
    # and whether the clusterer or the user put it there.
    similarity: float | None = None
    shared_terms: tuple[str, ...] = ()
    cosine: float | None = None  # the similarity before the quiet cost (None before migration 11)
    quiet_hours: float | None = None  # how long the story had been quiet then
    placed_in: int | None = None
    placed_by: str | None = None
    read: bool = False
    muted: bool = False  # matches a mute rule: only `search` shows it
    saved: bool = False  # never pruned (database.keep)
    # With a search: the headline with its matches, and the part of the summary that matched.
    title_match: Highlight | None = None
    snippet: Highlight | None = None

    def to_json(self, *, why: bool = False) -> dict[str, Any]:
        found: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "url": self.url,
            "feed": self.feed,
            "published": iso(self.published),
            "story_id": self.story_id,
            "read": self.read,
            "muted": self.muted,
            "saved": self.saved,
            "duplicates": [{"url": d.url, "feed": d.feed} for d in self.duplicates],
        }
        if self.title_match is not None and self.snippet is not None:
            found["match"] = {
                "title": self.title_match.to_json(),
                "snippet": self.snippet.to_json(),
            }
        if why:
            found["why"] = {
                "similarity": self.similarity,
                "cosine": self.cosine,
                "quiet_hours": self.quiet_hours,
                "shared_terms": list(self.shared_terms),
                "placed_in": self.placed_in,
                "placed_by": self.placed_by,
            }
        return found


class StoryStatus(StrEnum):
    """Where a story is in its life (see aggregator.ranking.story_status)."""

    NEW = "new"  # began within clustering.quiet_after
    GROWING = "growing"  # older, but took an article within clustering.quiet_after
    QUIET = "quiet"  # no article for longer than that


class StoryFigures(NamedTuple):
    """What ranking needs to know of a story (a tuple: `stories` makes tens of thousands)."""

    id: int
    size: int
    sources: int
    first_seen: datetime
    last_seen: datetime
    recent: int  # outlets that published an article of it within the last ``recent``


@dataclass(frozen=True)
class SummarySource:
    """An article of a story as its summary is chosen from: whose, and what it says."""

    article_id: int
    feed: str  # the outlet's name
    title: str
    summary: str
    published: datetime


@dataclass(frozen=True)
class SummarySentence:
    """One sentence of a story's summary: a sentence of an article's own summary, verbatim."""

    text: str
    feed: str  # the outlet it is attributed to
    article_id: int

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "feed": self.feed, "article_id": self.article_id}


@dataclass(frozen=True)
class StoryRecord:
    """A story as the store reads it: all that a StoryView shows but its status."""

    id: int
    title: str
    size: int
    sources: tuple[str, ...]
    first_seen: datetime
    last_seen: datetime
    terms: tuple[str, ...]
    articles: tuple[ArticleView, ...] = ()
    unread: int = 0  # articles not marked read
    summary: tuple[SummarySentence, ...] = ()  # chosen when the story last changed


@dataclass(frozen=True)
class StoryView(StoryRecord):
    """A story as browsing and digests show it: the stored story with its status as of now."""

    status: StoryStatus = field(kw_only=True)

    def to_json(self, *, why: bool = False) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "size": self.size,
            "sources": len(self.sources),
            "source_names": list(self.sources),
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "terms": list(self.terms),
            "summary": [sentence.to_json() for sentence in self.summary],
            "status": self.status,
            "unread": self.unread,
            "articles": [a.to_json(why=why) for a in self.articles],
        }


@overload
def iso(value: datetime) -> str: ...
@overload
def iso(value: None) -> None: ...
def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, the one time format of the JSON interface."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None
