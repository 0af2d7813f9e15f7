"""The feeds the config lists, and what is stored of each: its polling state and counters."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from ..models import FeedConfig, FeedRecord, FeedState, FeedStatus
from .base import FEED_NAME, StoreBase, dt, ts

__all__ = ["FeedStore"]


class FeedStore(StoreBase):
    """The feeds table: kept in line with the config, read for polling and `feeds list`."""

    def sync_feeds(self, feeds: Iterable[FeedConfig], now: datetime) -> None:
        """Make the feeds table match the config: add new feeds, disable removed ones."""
        feeds = list(feeds)
        with self.transaction():
            wanted = {f.url for f in feeds}
            for feed in feeds:
                self.db.execute(
                    """INSERT INTO feeds (url, title, tags, added_at, enabled)
                       VALUES (?, ?, ?, ?, 1)
                       ON CONFLICT(url) DO UPDATE SET
                         title = excluded.title, tags = excluded.tags, enabled = 1,
                         -- a gone feed removed and added again gets another chance
                         gone = CASE WHEN feeds.enabled = 0 THEN 0 ELSE feeds.gone END""",
                    [feed.url, feed.title, json.dumps(list(feed.tags)), ts(now)],
                )
            for row in self._rows("SELECT id, url FROM feeds WHERE enabled = 1"):
                if row["url"] not in wanted:
                    self.db.execute("UPDATE feeds SET enabled = 0 WHERE id = ?", [row["id"]])

    def feeds(self, *, enabled_only: bool = True) -> list[FeedState]:
        return [_feed_state(r) for r in self._feed_rows(enabled_only=enabled_only)]

    def feed_records(self) -> list[FeedRecord]:
        """Every enabled feed with its counters, for `feeds list` (schedule.feed_views_of)."""
        return [
            FeedRecord(
                state=_feed_state(r),
                feed_title=r["feed_title"],
                last_error_at=dt(r["last_error_at"]),
                item_count=r["item_count"],
                fetch_count=r["fetch_count"],
                not_modified_count=r["not_modified_count"],
            )
            for r in self._feed_rows(enabled_only=True)
        ]

    def feed_names(self) -> tuple[set[str], set[str]]:
        """What ``--feed`` and ``--tag`` may name: each feed's URL and name, and every tag."""
        rows = self._rows(f"SELECT f.url, {FEED_NAME} AS name, f.tags FROM feeds f")
        names = {r["url"] for r in rows} | {r["name"] for r in rows}
        return names, {tag for r in rows for tag in json.loads(r["tags"] or "[]")}

    def _feed_rows(self, *, enabled_only: bool) -> list[dict[str, Any]]:
        where = "WHERE enabled = 1" if enabled_only else ""
        return self._rows(f"SELECT * FROM feeds {where} ORDER BY id")

    def failing_feeds(self, *, since: datetime) -> list[tuple[str, str]]:
        """Feeds with no success since ``since`` that have failed: (name, last error)."""
        rows = self._rows(
            f"""SELECT {FEED_NAME} AS name, f.last_error FROM feeds f
                WHERE f.enabled = 1 AND f.error_count > 0 AND f.last_error IS NOT NULL
                  AND COALESCE(f.last_success_at, f.added_at) < ?
                ORDER BY name""",
            [ts(since)],
        )
        return [(r["name"], r["last_error"]) for r in rows]


def _feed_state(r: dict[str, Any]) -> FeedState:
    return FeedState(
        id=r["id"],
        url=r["url"],
        title=r["title"],
        tags=tuple(json.loads(r["tags"] or "[]")),
        effective_url=r["effective_url"],
        etag=r["etag"],
        last_modified=r["last_modified"],
        body_hash=r["body_hash"],
        status=FeedStatus(r["status"]),
        next_due=dt(r["next_due_at"]),
        error_count=r["error_count"],
        last_error=r["last_error"],
        last_success=dt(r["last_success_at"]),
        gone=bool(r["gone"]),
        ttl_minutes=r["ttl_minutes"],
        retry_after=dt(r["retry_after_at"]),
        pace=timedelta(seconds=r["pace_seconds"]) if r["pace_seconds"] is not None else None,
        newest_item=dt(r["newest_item_at"]),
    )
