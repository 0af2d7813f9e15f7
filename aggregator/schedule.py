"""When to fetch a feed next, and what its state is called. Pure: the clock and the random
source are passed in.

After a success the interval follows how often the feed publishes (half its typical gap between
items, so a new item waits half a gap on average), never less than the feed's ``<ttl>`` or the
server's Cache-Control max-age / Expires, with jitter, clamped to 5 minutes .. 24 hours. After a
failure it backs off exponentially from the configured interval, and never comes back before a
server's Retry-After (capped at a week).
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from .dedupe import duplicate_feeds
from .models import FeedHealth, FeedRecord, FeedState, FeedView

__all__ = [
    "ACTIVITY_WINDOW",
    "MAX_INTERVAL",
    "MAX_RETRY_AFTER",
    "MIN_INTERVAL",
    "due",
    "feed_health",
    "feed_views_of",
    "freshness",
    "http_date",
    "next_after_error",
    "next_after_success",
    "publishing_gap",
]

MIN_INTERVAL = timedelta(minutes=5)
MAX_INTERVAL = timedelta(hours=24)
MAX_RETRY_AFTER = timedelta(days=7)  # a server's word, kept, but not beyond reason
JITTER = 0.1  # +-10 %, so a thousand feeds added together do not stay in lockstep
ACTIVITY_WINDOW = timedelta(days=7)  # how far back a feed's publishing rate is measured


def _clamp(value: timedelta) -> timedelta:
    return max(MIN_INTERVAL, min(MAX_INTERVAL, value))


def publishing_gap(published: Iterable[datetime], now: datetime) -> timedelta | None:
    """The feed's typical time between items, from its items' dates; None when unknown.

    Counts the items dated within the last week and spreads them over the time since the
    oldest of them (a new feed showing ten items from the last day publishes about every
    2.4 hours, not every 17). A feed that had items, but none this week, is dormant: a week.
    Items dated in the future count as now.
    """
    dates = [min(d, now) for d in published]
    if not dates:
        return None
    recent = [d for d in dates if now - d <= ACTIVITY_WINDOW]
    if not recent:
        return ACTIVITY_WINDOW
    span = now - min(recent)
    return max(span, MIN_INTERVAL) / len(recent)


def freshness(headers: Mapping[str, str], now: datetime) -> timedelta | None:
    """How long the server says the response stays fresh: Cache-Control max-age, else Expires.

    ``no-cache``/``no-store`` and unreadable values say nothing. ``headers`` are lower-cased.
    """
    cache_control = headers.get("cache-control", "").lower()
    directives = {}
    for part in cache_control.split(","):
        name, _, value = part.strip().partition("=")
        directives[name.strip()] = value.strip().strip('"')
    if "no-store" in directives or "no-cache" in directives:
        return None
    for name in ("s-maxage", "max-age"):
        value = directives.get(name, "")
        if value.isascii() and value.isdigit():
            return timedelta(seconds=min(int(value), int(MAX_RETRY_AFTER.total_seconds())))
    expires = headers.get("expires")
    if expires:
        when = http_date(expires)
        if when is None:
            return None  # "Expires: 0" and the like: already stale
        # Relative to the server's own clock when it sent one, so a skewed clock does not count.
        base = http_date(headers.get("date")) or now
        if when > base:
            return min(when - base, MAX_RETRY_AFTER)
    return None


def http_date(value: str | None) -> datetime | None:
    """An HTTP date (RFC 9110, and the older forms) as an aware UTC datetime; None if unreadable."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def next_after_success(
    now: datetime,
    interval: timedelta,
    *,
    gap: timedelta | None = None,
    ttl_minutes: int | None = None,
    fresh_for: timedelta | None = None,
    rng: random.Random | None = None,
) -> datetime:
    """Next fetch after a success (or a 304).

    ``interval`` is the configured default, used while the publishing ``gap`` is unknown.
    The feed's ``<ttl>`` and the server's freshness lengthen it, never shorten it.
    """
    rng = rng or random.Random()
    base = gap / 2 if gap is not None else interval
    floor = timedelta(0)
    if ttl_minutes:
        floor = max(floor, timedelta(minutes=ttl_minutes))
    if fresh_for is not None:
        floor = max(floor, fresh_for)
    # The jitter spreads feeds out, but never brings one back before the server said.
    return now + _clamp(max(floor, max(base, floor) * (1 + rng.uniform(-JITTER, JITTER))))


def next_after_error(
    now: datetime,
    interval: timedelta,
    error_count: int,
    *,
    retry_after: datetime | None = None,
    rng: random.Random | None = None,
) -> datetime:
    """Exponential backoff from the interval (bounded), or the server's Retry-After if later.

    ``error_count`` counts the failures in a row, this one included: the first failure
    retries after one interval, the next after two, then four... up to 24 hours.
    """
    rng = rng or random.Random()
    exponent = min(max(error_count - 1, 0), 10)
    backoff = interval * (2**exponent) * (1 + rng.uniform(0, JITTER))
    due = now + _clamp(backoff)
    if retry_after is not None:
        due = max(due, min(retry_after, now + MAX_RETRY_AFTER))
    return due


def feed_health(
    *,
    status: str,
    error_count: int,
    gone: bool,
    retry_after: datetime | None,
    duplicate_of: str | None,
    now: datetime,
) -> FeedHealth:
    """What `feeds list` calls a feed's state.

    new, ok, not modified, error (one failure), backing off (failures in a row, so the
    interval is growing), rate-limited (a server's Retry-After is pending), gone (410),
    duplicate (it moved permanently to a feed that is also in the list).
    """
    if gone:
        return FeedHealth.GONE
    if duplicate_of:
        return FeedHealth.DUPLICATE
    if retry_after is not None and retry_after > now:
        return FeedHealth.RATE_LIMITED
    if error_count >= 2:
        return FeedHealth.BACKING_OFF
    if error_count == 1 or status in ("error", "not a feed"):
        return FeedHealth.ERROR
    return FeedHealth(status)  # new, ok, not modified: the last poll's own word


def due(
    feeds: Sequence[FeedState], now: datetime, *, ignore_schedule: bool = False
) -> list[FeedState]:
    """Of these feeds, those to fetch now.

    Gone feeds, a server's Retry-After and feeds that moved onto another feed of the list
    are always respected; ``ignore_schedule`` (``poll --all``) drops only our own schedule.
    """
    live = [f for f in feeds if not f.gone]
    duplicates = duplicate_feeds(live)
    return [
        f
        for f in live
        if f.id not in duplicates
        and (f.retry_after is None or f.retry_after <= now)
        and (ignore_schedule or f.next_due is None or f.next_due <= now)
    ]


def feed_views_of(feeds: Sequence[FeedRecord], now: datetime) -> list[FeedView]:
    """The feeds as `feeds list` shows them, each with its state as of ``now``."""
    duplicates = duplicate_feeds([f.state for f in feeds if not f.state.gone])
    return [_feed_view(f, duplicates.get(f.state.id), now) for f in feeds]


def _feed_view(feed: FeedRecord, duplicate_of: str | None, now: datetime) -> FeedView:
    state = feed.state
    return FeedView(
        url=state.url,
        effective_url=state.effective_url,
        title=state.title or feed.feed_title,
        tags=state.tags,
        status=feed_health(
            status=str(state.status),
            error_count=state.error_count,
            gone=state.gone,
            retry_after=state.retry_after,
            duplicate_of=duplicate_of,
            now=now,
        ),
        last_success=state.last_success,
        last_error=state.last_error,
        last_error_at=feed.last_error_at,
        error_count=state.error_count,
        # A duplicate is never fetched: the feed it moved to brings its items.
        next_due=None if state.gone or duplicate_of is not None else state.next_due,
        item_count=feed.item_count,
        fetch_count=feed.fetch_count,
        not_modified_count=feed.not_modified_count,
        retry_after=state.retry_after if state.retry_after and state.retry_after > now else None,
        duplicate_of=duplicate_of,
    )
