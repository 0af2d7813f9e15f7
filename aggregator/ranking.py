"""Which stories matter now: each story's status, and the order stories are listed in.

Pure: the store hands in each story's figures and the time, nothing here reads the database.
``story_view`` gives a story the store read its status (aggregator.listing does both).

A story ranks high when many outlets carry it (source diversity), when it is still gathering
articles (velocity) and when its latest article is recent (recency):

    score = (2 × ln(1 + sources) + ln(1 + outlets that published in the last ``recent``))
            × ½^(hours since the latest article / 12)

Logarithms, because the tenth outlet adds less news than the second. Velocity counts outlets,
not articles, and diversity counts double: twelve outlets agreeing that something happened is
the signal a reader wants, while one outlet posting ten live updates is not. Recency halves a
story's score every 12 hours, so yesterday's big story gives way to today's, but not to a
single fresh blog post.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime, timedelta

from .models import StoryFigures, StoryRecord, StoryStatus, StoryView

__all__ = [
    "RECENCY_HALF_LIFE",
    "rank",
    "score",
    "story_status",
    "story_view",
]

RECENCY_HALF_LIFE = timedelta(hours=12)
DIVERSITY_WEIGHT = 2.0


def story_status(
    first_seen: datetime, last_seen: datetime, now: datetime, recent: timedelta
) -> StoryStatus:
    """``new`` when the story began within ``recent``; ``growing`` when it is older but took an
    article within ``recent``; otherwise ``quiet``."""
    if last_seen < now - recent:
        return StoryStatus.QUIET
    return StoryStatus.NEW if first_seen >= now - recent else StoryStatus.GROWING


def score(story: StoryFigures, now: datetime) -> float:
    age = max((now - story.last_seen) / RECENCY_HALF_LIFE, 0.0)
    strength = DIVERSITY_WEIGHT * math.log1p(story.sources) + math.log1p(story.recent)
    return float(strength * 0.5**age)


def rank(stories: Sequence[StoryFigures], now: datetime, limit: int = 0) -> list[StoryFigures]:
    """Best first, the first ``limit`` only (0: all); ties go to the larger, then the more
    recent, then the newer story."""

    def order(s: StoryFigures) -> tuple[float, int, float, int]:
        return (-score(s, now), -s.size, -s.last_seen.timestamp(), -s.id)

    if limit and limit < len(stories):
        return heapq.nsmallest(limit, stories, key=order)  # the same order as sorted's
    return sorted(stories, key=order)


def story_view(story: StoryRecord, now: datetime, recent: timedelta) -> StoryView:
    """The stored story as browsing and digests show it, with its status as of ``now``."""
    shown = {f.name: getattr(story, f.name) for f in fields(story)}
    return StoryView(**shown, status=story_status(story.first_seen, story.last_seen, now, recent))
