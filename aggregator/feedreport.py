"""What `feeds list` shows: every configured feed with its polling state and health."""

from __future__ import annotations

from datetime import UTC, datetime

from .config import Config
from .models import FeedView
from .store import Store

__all__ = ["feed_report"]


def feed_report(config: Config, store: Store, *, now: datetime | None = None) -> list[FeedView]:
    """Every configured feed with its polling state (the config's feeds are synced first)."""
    now = now or datetime.now(UTC)
    store.sync_feeds(config.feeds, now)
    return store.feed_views(now)
