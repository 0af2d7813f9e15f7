"""What a poll reads to plan its ingest, and the one transaction that stores a feed's poll."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from ..models import Article, FeedStatus, FeedUpdate
from .base import StoreBase, as_dt, ts
from .schema import SEEN_AT, SOURCE_COUNT

if TYPE_CHECKING:  # dedupe is loaded by a poll, not by every command that opens the store
    from ..dedupe import IngestPlan, NearCandidate, StoredLink

__all__ = ["IngestStore"]


class IngestStore(StoreBase):
    """Articles, their sightings in feeds and their headline keys, stored with the feed's state."""

    def recent_publications(self, feed_id: int, since: datetime) -> dict[str, datetime]:
        """When the dated items this feed carried since ``since`` were published, by item key.

        Items without a date of their own (dated when first seen) say nothing of the pace.
        """
        rows = self._rows(
            """SELECT i.item_key, a.published FROM items i JOIN articles a ON a.id = i.article_id
               WHERE i.feed_id = ? AND a.published >= ? AND a.published <> a.first_seen""",
            [feed_id, ts(since)],
        )
        return {r["item_key"]: as_dt(r["published"]) for r in rows}

    def known_items(self, feed_id: int, keys: Iterable[str]) -> set[str]:
        rows = self._rows_in(
            "SELECT item_key FROM items WHERE feed_id = ? AND item_key IN ({marks})",
            keys,
            first=[feed_id],
        )
        return {r["item_key"] for r in rows}

    def articles_by_canonical(self, urls: Iterable[str]) -> dict[str, StoredLink]:
        from ..dedupe import StoredLink

        rows = self._rows_in(
            """SELECT id, feed_id, guid, content_hash, canonical_url FROM articles
               WHERE canonical_url IN ({marks})""",
            urls,
        )
        return {
            r["canonical_url"]: StoredLink(r["id"], r["feed_id"], r["guid"], r["content_hash"])
            for r in rows
        }

    def known_texts(self, feed_id: int, hashes: Iterable[str]) -> dict[str, set[datetime]]:
        """Of these content hashes, those of articles this feed carried, with their dates."""
        found: dict[str, set[datetime]] = {}
        rows = self._rows_in(
            """SELECT a.content_hash, a.published FROM articles a
               JOIN items i ON i.article_id = a.id
               WHERE a.content_hash IN ({marks}) AND i.feed_id = ?""",
            hashes,
            last=[feed_id],
        )
        for r in rows:
            found.setdefault(r["content_hash"], set()).add(as_dt(r["published"]))
        return found

    def near_candidates(
        self, keys: Iterable[int], *, since: datetime | None = None
    ) -> dict[int, list[NearCandidate]]:
        """The stored articles with each headline fingerprint, published ``since`` if given."""
        from ..dedupe import NearCandidate

        found: dict[int, list[NearCandidate]] = {}
        rows = self._rows_in(
            """SELECT k.key, a.id, a.feed_id, a.title, a.summary, a.published
               FROM article_keys k JOIN articles a ON a.id = k.article_id
               WHERE k.key IN ({marks}) AND a.published >= ?""",
            keys,
            last=[ts(since) if since else ""],
        )
        for r in rows:
            found.setdefault(r["key"], []).append(
                NearCandidate(
                    article_id=r["id"],
                    feed_id=r["feed_id"],
                    title=r["title"],
                    summary=r["summary"],
                    published=as_dt(r["published"]),
                )
            )
        return found

    def save_poll(self, feed_id: int, plan: IngestPlan | None, update: FeedUpdate) -> list[int]:
        """Store a feed's new articles and its fetch state together; return the new article ids.

        Validators (ETag, Last-Modified, body hash) are written in the same transaction as the
        entries, so a crash can never save them without the articles they describe.
        """
        new_ids: list[int] = []
        with self.transaction():
            if plan is not None:
                for article in plan.new:
                    new_ids.append(self._insert_article(feed_id, article))
                self.db.conn.executemany(
                    "INSERT OR IGNORE INTO article_keys (key, article_id) VALUES (?, ?)",
                    [
                        (key, article_id)
                        for article_id, keys in zip(new_ids, plan.new_keys, strict=False)
                        for key in keys
                    ],
                )
                for article, original_id in plan.duplicates:
                    self._insert_item(feed_id, original_id, article)
                # A copy seen in another feed adds an outlet to its article's story.
                self._recount_sources([original for _, original in plan.duplicates])
            self._update_feed(feed_id, update, entries=len(new_ids))
        return new_ids

    def _recount_sources(self, article_ids: list[int]) -> None:
        self._execute_in(
            f"""UPDATE stories SET source_count = ({SOURCE_COUNT}), seen_at = ({SEEN_AT})
                WHERE id IN (
                  SELECT story_id FROM story_articles WHERE article_id IN ({{marks}}))""",
            article_ids,
        )

    def _insert_article(self, feed_id: int, article: Article) -> int:
        cursor = self.db.execute(
            """INSERT INTO articles (feed_id, guid, url, canonical_url, title, summary, published,
                                     first_seen, content_hash)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                feed_id,
                article.guid,
                article.url,
                article.canonical_url,
                article.title,
                article.summary,
                ts(article.published),
                ts(article.first_seen),
                article.content_hash,
            ],
        )
        article_id = int(cursor.lastrowid or 0)
        self._insert_item(feed_id, article_id, article)
        return article_id

    def _insert_item(self, feed_id: int, article_id: int, article: Article) -> None:
        self.db.execute(
            """INSERT OR IGNORE INTO items (feed_id, article_id, item_key, url, first_seen)
               VALUES (?, ?, ?, ?, ?)""",
            [feed_id, article_id, article.item_key, article.url, ts(article.first_seen)],
        )

    def _update_feed(self, feed_id: int, u: FeedUpdate, *, entries: int) -> None:
        ok = u.status in (FeedStatus.OK, FeedStatus.NOT_MODIFIED)
        self.db.execute(
            """UPDATE feeds SET
                 status = :status,
                 last_fetched_at = :fetched,
                 next_due_at = :next_due,
                 retry_after_at = :retry_after,
                 fetch_count = fetch_count + 1,
                 not_modified_count = not_modified_count + :nm,
                 item_count = item_count + :entries,
                 gone = MAX(gone, :gone),
                 last_success_at = CASE WHEN :ok THEN :fetched ELSE last_success_at END,
                 error_count = CASE WHEN :ok THEN 0 ELSE error_count + :counts END,
                 last_error = CASE WHEN :ok THEN last_error ELSE :error END,
                 last_error_at = CASE WHEN :ok THEN last_error_at ELSE :fetched END,
                 etag = CASE WHEN :ok AND :etag IS NOT NULL THEN :etag ELSE etag END,
                 last_modified = CASE WHEN :ok AND :lm IS NOT NULL THEN :lm ELSE last_modified END,
                 body_hash = COALESCE(:body_hash, body_hash),
                 effective_url = COALESCE(:effective_url, effective_url),
                 feed_title = COALESCE(:title, feed_title),
                 site_url = COALESCE(:site_url, site_url),
                 ttl_minutes = CASE WHEN :body_hash IS NOT NULL THEN :ttl ELSE ttl_minutes END,
                 pace_seconds = CASE WHEN :body_hash IS NOT NULL THEN :pace ELSE pace_seconds END,
                 newest_item_at = COALESCE(:newest, newest_item_at)
               WHERE id = :id""",
            {
                "id": feed_id,
                "status": str(u.status),
                "fetched": ts(u.fetched_at),
                "next_due": ts(u.next_due),
                "retry_after": ts(u.retry_after) if u.retry_after else None,
                "nm": int(u.status == FeedStatus.NOT_MODIFIED),
                "entries": entries,
                "gone": int(u.gone),
                "ok": int(ok),
                "counts": int(u.counts_as_failure),
                "error": u.error,
                "etag": u.etag,
                "lm": u.last_modified,
                "body_hash": u.body_hash,
                "effective_url": u.effective_url,
                "title": u.title,
                "site_url": u.site_url,
                "ttl": u.ttl_minutes,
                "pace": u.pace.total_seconds() if u.pace is not None else None,
                "newest": ts(u.newest_item) if u.newest_item else None,
            },
        )
