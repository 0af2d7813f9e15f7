"""When to fetch a feed next. Pure: the clock and the random source are passed in."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

__all__ = ["MAX_INTERVAL", "MIN_INTERVAL", "next_after_error", "next_after_success"]

MIN_INTERVAL = timedelta(minutes=5)
MAX_INTERVAL = timedelta(hours=24)
MAX_RETRY_AFTER = timedelta(days=7)  # a server's word, kept, but not beyond reason
JITTER = 0.1  # +-10 %, so a thousand feeds added together do not stay in lockstep


def _clamp(value: timedelta) -> timedelta:
    return max(MIN_INTERVAL, min(MAX_INTERVAL, value))


def next_after_success(
    now: datetime,
    interval: timedelta,
    *,
    ttl_minutes: int | None = None,
    rng: random.Random | None = None,
) -> datetime:
    """Next fetch after a success: the interval, or the feed's longer <ttl>, with jitter."""
    rng = rng or random.Random()
    base = interval
    if ttl_minutes:
        base = max(base, timedelta(minutes=ttl_minutes))
    return now + _clamp(base * (1 + rng.uniform(-JITTER, JITTER)))


def next_after_error(
    now: datetime,
    interval: timedelta,
    error_count: int,
    *,
    retry_after: datetime | None = None,
    rng: random.Random | None = None,
) -> datetime:
    """Exponential backoff from the interval (bounded), or the server's Retry-After if later.

    ``error_count`` counts the failures in a row, this one included.
    """
    rng = rng or random.Random()
    exponent = min(max(error_count - 1, 0), 10)
    backoff = interval * (2**exponent) * (1 + rng.uniform(0, JITTER))
    due = now + _clamp(backoff)
    if retry_after is not None:
        due = max(due, min(retry_after, now + MAX_RETRY_AFTER))
    return due
