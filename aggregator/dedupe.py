"""Decide which normalised articles are new, which were seen before, which are copies.

Pure: it takes what the store already knows and returns an IngestPlan; it does no I/O.

Within a feed an item is identified by its guid, then its canonical link, then its content hash
(``Article.item_key``). Across feeds the same canonical URL is the same article, and so is a
near-duplicate: the same headline give or take a wire slug ("UPDATE 1-"), an outlet's name
after it (" - Reuters") and one changed word, published within a few days of the original.

Headlines are too short for MinHash or SimHash: eight words make eight shingles, and an
estimate of their similarity from a few dozen hashes cannot tell one changed word from three.
So the match is exact, and still an index look-up. A copy keeps the original's words in their
order: each headline is filed under its words once the slug and the outlet's name are off.
A headline alone cannot tell an editor's one-word change from another outlet's own headline on
the same event ("Colorado reports $2 million in pot taxes", "Colorado collects ..."), and dedup
must never swallow a distinct article. So a headline one word longer or shorter is a copy only
when both items carry a summary and the summaries mostly agree: for that, a headline of six
words or more is also filed under its first three and its last three words (one edit leaves
one of the two untouched). Every candidate found is checked word by word.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from .models import Article, FeedState

__all__ = [
    "IngestPlan",
    "NearCandidate",
    "SeenRecord",
    "StoredLink",
    "duplicate_feeds",
    "headline_keys",
    "headline_words",
    "is_near_duplicate",
    "left_feed",
    "plan_ingest",
    "shared_links",
]

# A wire desk's slug before a headline, one or more: "UPDATE 2-", "EXCLUSIVE-", "BREAKING: ".
_SLUG = re.compile(
    r"^\s*(?:(?:update|wrapup|refile|corrected|correction|rpt|repeat|exclusive|breaking|urgent|"
    r"analysis|factbox|insight|timeline|live|video|watch|photos?)(?:\s*\d+)?\s*[-:\u2013\u2014|]+\s*)+",
    re.IGNORECASE,
)
# An outlet's name after a headline: " - Reuters", " | The Guardian", " \u2014 AP".
_TRAILER = re.compile(
    r"\s+[-|\u2013\u2014\u2022\u00b7]\s+((?:(?!\s[-|\u2013\u2014\u2022\u00b7]\s).){1,60})$"
)
_TRAILER_WORDS = 5
_WORD = re.compile(r"\w+")
# Headlines shorter than this are matched only whole; shorter than EXACT_WORDS, never.
EXACT_WORDS = 5
EDITED_WORDS = 6
_ENDS = 3  # words at each end that file a headline
CROWDED = 50  # stored articles sharing a fingerprint beyond which it says nothing
# Summaries shorter than this say too little to compare. Between longer ones, the share of
# words in common that a copy needs: some, under the same headline; most, under an edited one.
_SUMMARY_WORDS = 12
_SAME_HEADLINE_OVERLAP = 0.3
_EDITED_HEADLINE_OVERLAP = 0.5


@dataclass(frozen=True)
class StoredLink:
    """A stored article that a canonical URL already leads to."""

    article_id: int
    feed_id: int  # the feed it was first stored from
    guid: str | None
    content_hash: str


@dataclass(frozen=True)
class SeenRecord:
    """An item a feed carried whose article was pruned (database.keep): it is not news again."""

    item_key: str
    canonical_url: str | None
    content_hash: str
    published: datetime


@dataclass(frozen=True)
class NearCandidate:
    """A stored article that shares a headline fingerprint with an incoming one."""

    article_id: int
    feed_id: int
    title: str
    summary: str
    published: datetime


@dataclass(frozen=True)
class IngestPlan:
    """What to store from one fetch of one feed."""

    new: tuple[Article, ...]
    duplicates: tuple[tuple[Article, int], ...]  # (the copy, id of the stored article it copies)
    seen: int  # items already stored from this feed
    churned: int = 0  # of those, items that came back under a new guid
    # The headline fingerprints of each new article, to store with it (empty when unused).
    new_keys: tuple[tuple[int, ...], ...] = ()


@functools.lru_cache(maxsize=8192)
def headline_words(title: str) -> tuple[str, ...]:
    """The words of a headline that identify it, in order: no wire slug, no outlet's name."""
    text = _SLUG.sub("", title)
    # Twice: a republisher may add its name after a headline that already ends in one.
    for _ in range(2):
        trailer = _TRAILER.search(text)
        if trailer is None or len(trailer.group(1).split()) > _TRAILER_WORDS:
            break
        text = text[: trailer.start()]
    return tuple(_WORD.findall(text.casefold()))


def headline_keys(title: str, summary: str = "") -> tuple[int, ...]:
    """The fingerprints an item is filed under (see the module doc)."""
    words = headline_words(title)
    if len(words) < EXACT_WORDS:
        return ()
    whole = _fingerprint(("=", *words))
    if len(words) < EDITED_WORDS or len(_summary_words(summary)) < _SUMMARY_WORDS:
        return (whole,)
    return (whole, _fingerprint(("<", *words[:_ENDS])), _fingerprint((">", *words[-_ENDS:])))


def _fingerprint(words: Sequence[str]) -> int:
    # Two CRC-32s make 64 bits: collisions only cost a check, every candidate is verified.
    data = "\x1f".join(words).encode()
    value = zlib.crc32(data) << 32 | zlib.crc32(data, 0x9E3779B9)
    return value - (1 << 64) if value >= 1 << 63 else value  # SQLite integers are signed


def is_near_duplicate(article: Article, candidate: NearCandidate, window: timedelta) -> bool:
    """Whether ``candidate`` is the same article as ``article`` under another URL."""
    if abs(article.published - candidate.published) > window:
        return False
    mine, theirs = headline_words(article.title), headline_words(candidate.title)
    if mine == theirs:
        return len(mine) >= EXACT_WORDS and _summaries_overlap(
            article.summary, candidate.summary, _SAME_HEADLINE_OVERLAP, unknown=True
        )
    short, long = sorted((mine, theirs), key=len)
    return (
        len(long) >= EDITED_WORDS
        and _one_word_more(long, short)
        and _summaries_overlap(
            article.summary, candidate.summary, _EDITED_HEADLINE_OVERLAP, unknown=False
        )
    )


def _one_word_more(long: tuple[str, ...], short: tuple[str, ...]) -> bool:
    """Whether ``long`` is ``short`` with one word added somewhere."""
    if len(long) != len(short) + 1:
        return False
    i = 0
    while i < len(short) and long[i] == short[i]:
        i += 1
    return long[i + 1 :] == short[i:]


def _summary_words(summary: str) -> list[str]:
    return _WORD.findall(summary.casefold())[:60]


def _summaries_overlap(a: str, b: str, share: float, *, unknown: bool) -> bool:
    """Whether two summaries share ``share`` of their words; ``unknown`` when one is too short."""
    words_a, words_b = set(_summary_words(a)), set(_summary_words(b))
    if len(words_a) < _SUMMARY_WORDS or len(words_b) < _SUMMARY_WORDS:
        return unknown
    return len(words_a & words_b) / len(words_a | words_b) >= share


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
    known_texts: Mapping[str, Set[datetime]] | None = None,
    headline: Mapping[str, tuple[int, ...]] | None = None,
    near: Mapping[int, Sequence[NearCandidate]] | None = None,
    window: timedelta = timedelta(days=3),
    pruned: Sequence[SeenRecord] = (),
) -> IngestPlan:
    """Split one fetch's articles into new ones, copies of stored ones, and ones seen before.

    ``known_items`` are item keys feed ``feed_id`` already stored; ``known_links`` maps the
    canonical URLs of stored articles (from any feed) to them. ``known_texts`` maps the content
    hashes of articles this feed stored to their publication times: an item with a new guid but
    a known text and date is the same item under a regenerated guid (guid churn), not news.
    ``headline`` maps content hashes to their fingerprints (``headline_keys``), which are stored
    with the new articles, and ``near`` fingerprints to the stored articles that have them;
    without ``near`` only links match across feeds. ``pruned`` are this feed's items whose
    articles were pruned: matched by key, link or text as stored items are, they are seen.
    """
    ambiguous = shared_links(articles)
    headline = headline or {}
    near = near or {}
    texts: dict[str, set[datetime]] = {h: set(d) for h, d in (known_texts or {}).items()}
    for record in pruned:
        texts.setdefault(record.content_hash, set()).add(record.published)
    pruned_keys = {record.item_key for record in pruned}
    pruned_links = {record.canonical_url for record in pruned if record.canonical_url}
    churned = 0
    new: list[Article] = []
    new_keys: list[tuple[int, ...]] = []
    duplicates: list[tuple[Article, int]] = []
    seen = 0
    batch_keys: set[str] = set()
    batch_links: Counter[str] = Counter()
    for article in articles:
        if article.canonical_url in ambiguous:
            # The link is not an identity here: keep it for display, not for matching.
            article = replace(article, canonical_url=None)
        key = article.item_key
        if key in known_items or key in batch_keys or key in pruned_keys:
            seen += 1
            continue
        if article.canonical_url in pruned_links:
            seen += 1  # a pruned item under another guid: the feed's own link says it
            continue
        batch_keys.add(key)
        dates = texts.get(article.content_hash)
        if dates is not None and (not article.has_own_date or article.published in dates):
            seen += 1
            churned += 1
            continue
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
        keys = headline.get(article.content_hash, ())
        original = _original(article, keys, near, feed_id, window)
        if original is not None:
            duplicates.append((article, original))
            continue
        if link:
            batch_links[link] += 1
        new.append(article)
        new_keys.append(keys)
    return IngestPlan(
        new=tuple(new),
        duplicates=tuple(duplicates),
        seen=seen,
        churned=churned,
        new_keys=tuple(new_keys) if headline else (),
    )


def left_feed(records: Sequence[SeenRecord], articles: Sequence[Article]) -> list[SeenRecord]:
    """The records of pruned items that the feed no longer carries: none of its items has
    their key or link, or their text and date (the same text on another date is another item,
    a daily "Weather" post say). A document with no items says nothing: a feed emptied by
    mistake for a moment must not make its whole archive news again."""
    if not articles:
        return []
    keys = {a.item_key for a in articles}
    links = {a.canonical_url for a in articles if a.canonical_url}
    texts = {(a.content_hash, a.published) for a in articles}
    return [
        r
        for r in records
        if r.item_key not in keys
        and r.canonical_url not in links
        and (r.content_hash, r.published) not in texts
    ]


def _original(
    article: Article,
    keys: Sequence[int],
    near: Mapping[int, Sequence[NearCandidate]],
    feed_id: int,
    window: timedelta,
) -> int | None:
    """The stored article of another feed that ``article`` copies, the earliest if several.

    A fingerprint that more than CROWDED stored articles share is boilerplate (a series'
    "... of a very long feed", a template's fixed words), not a sign of a copy: it is passed
    over, so one feed of templated headlines cannot make every item compare with every other.
    """
    found = {
        c.article_id: c
        for key in keys
        if len(candidates := near.get(key, ())) <= CROWDED
        for c in candidates
        if c.feed_id != feed_id and is_near_duplicate(article, c, window)
    }
    if not found:
        return None
    return min(found.values(), key=lambda c: (c.published, c.article_id)).article_id


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
