"""Decide which normalised articles are new, which were seen before, which are copies.

Pure: it takes what the store already knows and returns an IngestPlan; it does no I/O.

Within a feed an item is identified by its guid, then its canonical link, then its content hash
(``Article.item_key``). Across feeds the same canonical URL is the same article.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, replace

from .models import Article, FeedState

__all__ = ["IngestPlan", "StoredLink", "duplicate_feeds", "plan_ingest", "shared_links"]


@dataclass(frozen=True)
class StoredLink:
    """A stored article that a canonical URL already leads to."""

    article_id: int
    feed_id: int  # the feed it was first stored from
    guid: str | None
    content_hash: str


@dataclass(frozen=True)
class IngestPlan:
    """What to store from one fetch of one feed."""

    new: tuple[Article, ...]
    duplicates: tuple[tuple[Article, int], ...]  # (the copy, id of the stored article it copies)
    seen: int  # items already stored from this feed


def shared_links(articles: Sequence[Article]) -> set[str]:
    """Canonical links that several distinct items of one feed share.

    Some feeds point every item at their home page; such a link says nothing about identity.
    """
    keys_by_link: dict[str, set[str]] = {}
    for a in articles:
        if a.canonical_url:
            keys_by_link.setdefault(a.canonical_url, set()).add(a.guid or a.content_hash)
    return {link for link, keys in keys_by_link.items() if len(keys) > 1}


def plan_ingest(
    articles: Sequence[Article],
    *,
    feed_id: int,
    known_items: Set[str],
    known_links: Mapping[str, StoredLink],
) -> IngestPlan:
    """Split one fetch's articles into new ones, copies of stored ones, and ones seen before.

    ``known_items`` are item keys feed ``feed_id`` already stored; ``known_links`` maps the
    canonical URLs of stored articles (from any feed) to them.
    """
    ambiguous = shared_links(articles)
    new: list[Article] = []
    duplicates: list[tuple[Article, int]] = []
    seen = 0
    batch_keys: set[str] = set()
    batch_links: Counter[str] = Counter()
    for article in articles:
        if article.canonical_url in ambiguous:
            # The link is not an identity here: keep it for display, not for matching.
            article = replace(article, canonical_url=None)
        key = article.item_key
        if key in known_items or key in batch_keys:
            seen += 1
            continue
        batch_keys.add(key)
        link = article.canonical_url
        stored = known_links.get(link) if link else None
        if stored is not None and _reused_link(stored, article, feed_id):
            # This feed gave the same link to a different item before (other guid, other
            # text): the link is its home page or the like, not this item's identity.
            article = replace(article, canonical_url=None)
            link = None
        elif stored is not None:
            duplicates.append((article, stored.article_id))
            continue
        if link and batch_links[link]:
            seen += 1  # the same page twice in one fetch, under two guids
            continue
        if link:
            batch_links[link] += 1
        new.append(article)
    return IngestPlan(new=tuple(new), duplicates=tuple(duplicates), seen=seen)


def _reused_link(stored: StoredLink, article: Article, feed_id: int) -> bool:
    # Same guid is caught earlier; same text under a new guid is guid churn, the same item.
    return (
        stored.feed_id == feed_id
        and stored.guid is not None
        and article.guid is not None
        and stored.guid != article.guid
        and stored.content_hash != article.content_hash
    )


def duplicate_feeds(feeds: Sequence[FeedState]) -> dict[int, str]:
    """Feeds that moved permanently onto another feed of the list: feed id -> that feed's URL.

    A feed is a duplicate when its new URL is another feed's configured URL, or when two feeds
    moved to the same URL (the later added is the duplicate). A duplicate is not fetched: the
    other feed brings the same items.
    """
    by_url = {f.url: f for f in feeds}
    first_at: dict[str, FeedState] = {}
    for feed in sorted(feeds, key=lambda f: f.id):
        first_at.setdefault(feed.fetch_url, feed)
    found: dict[int, str] = {}
    # Latest first, and never onto a feed already found to be a duplicate: feeds that point at
    # each other, in a pair or a ring, keep one of them fetched (for a pair, the first added).
    for feed in sorted(feeds, key=lambda f: f.id, reverse=True):
        if not feed.effective_url or feed.effective_url == feed.url:
            continue
        other = by_url.get(feed.effective_url) or first_at.get(feed.fetch_url)
        if other is not None and other.id != feed.id and other.id not in found:
            found[feed.id] = other.url
    return found
