"""Orchestrate the stages: the only module that does I/O across them.

poll:  fetch (async, concurrent) -> parse -> normalize -> dedupe -> store -> cluster
digest: store -> render
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeAlias
from urllib.parse import urlsplit

import httpx

from .cluster import StoryClusterer
from .config import Config, PollingConfig
from .dedupe import plan_ingest
from .errors import (
    AggregatorError,
    FeedError,
    FetchError,
    GoneError,
    NotAFeedError,
    RetryLaterError,
)
from .fetch import FetchLimits, fetch, is_local, make_client
from .models import (
    Digest,
    FeedOutcome,
    FeedState,
    FeedStatus,
    FeedUpdate,
    FeedView,
    FetchResult,
    PollReport,
    StoredStory,
)
from .normalize import html_to_text, normalize_entry
from .parse import parse_feed
from .schedule import next_after_error, next_after_success
from .store import Store

__all__ = [
    "build_digest",
    "check_feed",
    "cluster_pending",
    "feed_report",
    "fetch_document",
    "poll",
]

log = logging.getLogger(__name__)

Progress = Callable[[FeedOutcome], None]
FetchOutcome: TypeAlias = FetchResult | FeedError
# An article older than this before the newest one being placed starts its own story instead
# of making clustering load every story since its date (a feed's archive item, say).
CATCH_UP = timedelta(days=7)


def poll(
    config: Config,
    store: Store,
    *,
    all_feeds: bool = False,
    now: datetime | None = None,
    client: httpx.AsyncClient | None = None,
    progress: Progress | None = None,
    rng: random.Random | None = None,
) -> PollReport:
    """Fetch the feeds that are due, store what is new, and cluster it.

    One broken feed never stops a poll: each feed ends as a FeedOutcome.
    """
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    rng = rng or random.Random()
    store.sync_feeds(config.feeds, now)
    feeds = store.due_feeds(now, ignore_schedule=all_feeds)
    fetched = asyncio.run(_fetch_all(feeds, config.polling, client, now))
    network_down = _network_down(fetched)
    outcomes: list[FeedOutcome] = []
    for feed, result in fetched:
        try:
            outcome = _ingest_one(store, config, feed, result, now, rng, network_down=network_down)
        except FeedError as e:
            outcome = _record_failure(store, config, feed, e, now, rng, network_down=False)
        except AggregatorError:
            raise  # the database or the config: fatal, and the user's to fix
        except Exception as e:  # a bug met on one feed's data: log it whole, go on with the rest
            log.exception("%s: unexpected failure", feed.url)
            error = FeedError(feed.url, f"internal error ({type(e).__name__}: {e})")
            outcome = _record_failure(store, config, feed, error, now, rng, network_down=False)
        log.info("%s: %s %s", feed.url, outcome.status, outcome.message or "")
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    touched = cluster_pending(store, config, now=now)
    return PollReport(
        outcomes=tuple(outcomes),
        new_articles=sum(o.new_articles for o in outcomes),
        stories_touched=touched,
        seconds=time.perf_counter() - started,
    )


def _network_down(fetched: Sequence[tuple[FeedState, FetchOutcome]]) -> bool:
    """Every fetch failed before any server answered, on two hosts or more: the network is down.

    That is not the feeds' fault, so it does not count against them. A single dead host is
    that host's problem, and counts.
    """
    hosts = set()
    for feed, result in fetched:
        if is_local(feed.fetch_url):
            return False
        if not isinstance(result, FetchError) or result.status is not None:
            return False
        hosts.add(_host(feed.fetch_url))
    return len(hosts) >= 2


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def _limits(polling: PollingConfig) -> FetchLimits:
    return FetchLimits(
        timeout=polling.timeout, max_bytes=polling.max_bytes, max_redirects=polling.max_redirects
    )


def _client(polling: PollingConfig) -> httpx.AsyncClient:
    return make_client(
        user_agent=polling.user_agent, concurrency=polling.concurrency, timeout=polling.timeout
    )


async def _fetch_all(
    feeds: Sequence[FeedState],
    polling: PollingConfig,
    client: httpx.AsyncClient | None,
    now: datetime,
) -> list[tuple[FeedState, FetchOutcome]]:
    limits = _limits(polling)
    overall = asyncio.Semaphore(polling.concurrency)
    per_host: defaultdict[str, asyncio.Semaphore] = defaultdict(
        lambda: asyncio.Semaphore(polling.per_host)
    )

    async def one(http: httpx.AsyncClient, feed: FeedState) -> tuple[FeedState, FetchOutcome]:
        # Wait for the host's slot before taking one of the overall slots, so a slow host
        # never holds slots that other hosts could use.
        host_slot = (
            per_host[_host(feed.fetch_url)] if polling.per_host else contextlib.nullcontext()
        )
        async with host_slot, overall:
            try:
                result = await fetch(
                    http,
                    feed.fetch_url,
                    etag=feed.etag,
                    last_modified=feed.last_modified,
                    limits=limits,
                    now=now,
                )
            except FeedError as e:
                return feed, e
            except Exception as e:  # a bug met on one feed: log it whole, never abort the rest
                log.exception("%s: unexpected failure while fetching", feed.url)
                return feed, FetchError(feed.url, f"internal error ({type(e).__name__}: {e})")
            return feed, result

    if client is not None:
        return list(await asyncio.gather(*(one(client, f) for f in feeds)))
    async with _client(polling) as http:
        return list(await asyncio.gather(*(one(http, f) for f in feeds)))


def _ingest_one(
    store: Store,
    config: Config,
    feed: FeedState,
    result: FetchOutcome,
    now: datetime,
    rng: random.Random,
    *,
    network_down: bool,
) -> FeedOutcome:
    if isinstance(result, FeedError):
        return _record_failure(store, config, feed, result, now, rng, network_down=network_down)
    interval = config.polling.interval
    body = result.body or b""
    body_hash = hashlib.sha256(body).hexdigest()
    # A 304, or a body byte for byte what we parsed last time: nothing can be new.
    if result.not_modified or body_hash == feed.body_hash:
        status = FeedStatus.NOT_MODIFIED if result.not_modified else FeedStatus.OK
        update = FeedUpdate(
            status=status,
            fetched_at=now,
            next_due=next_after_success(now, interval, ttl_minutes=feed.ttl_minutes, rng=rng),
            etag=result.etag,
            last_modified=result.last_modified,
            effective_url=result.permanent_redirect,
        )
        store.save_poll(feed.id, None, update)
        return FeedOutcome(feed.url, status, message=None if result.not_modified else "unchanged")
    parsed = parse_feed(feed.url, body, result.headers)
    if parsed.warning:
        log.info("%s: parsed despite a problem: %s", feed.url, parsed.warning)
    feed_link = parsed.link if parsed.link and parsed.link.startswith("http") else None
    articles = [
        a
        for e in parsed.entries
        if (a := normalize_entry(e, feed_url=feed.url, feed_link=feed_link, now=now)) is not None
    ]
    update = FeedUpdate(
        status=FeedStatus.OK,
        fetched_at=now,
        next_due=next_after_success(now, interval, ttl_minutes=parsed.ttl_minutes, rng=rng),
        etag=result.etag,
        last_modified=result.last_modified,
        body_hash=body_hash,
        effective_url=result.permanent_redirect,
        title=html_to_text(parsed.title) or None,
        site_url=parsed.link,
        ttl_minutes=parsed.ttl_minutes,
    )
    # What is known and what is written in one transaction: a run alongside cannot store the
    # same article between our look and our write.
    with store.transaction():
        plan = plan_ingest(
            articles,
            feed_id=feed.id,
            known_items=store.known_items(feed.id, (a.item_key for a in articles)),
            known_links=store.articles_by_canonical(
                a.canonical_url for a in articles if a.canonical_url
            ),
        )
        new_ids = store.save_poll(feed.id, plan, update)
    return FeedOutcome(
        feed.url, FeedStatus.OK, new_articles=len(new_ids), entries=len(parsed.entries)
    )


def _record_failure(
    store: Store,
    config: Config,
    feed: FeedState,
    error: FeedError,
    now: datetime,
    rng: random.Random,
    *,
    network_down: bool,
) -> FeedOutcome:
    interval = config.polling.interval
    if isinstance(error, GoneError):
        status = FeedStatus.GONE
        update = FeedUpdate(
            status=status, fetched_at=now, next_due=now, error=error.message, gone=True
        )
    else:
        status = FeedStatus.NOT_A_FEED if isinstance(error, NotAFeedError) else FeedStatus.ERROR
        errors = feed.error_count + (0 if network_down else 1)
        retry_after = error.retry_after if isinstance(error, RetryLaterError) else None
        update = FeedUpdate(
            status=status,
            fetched_at=now,
            next_due=next_after_error(now, interval, errors, retry_after=retry_after, rng=rng),
            error=error.message,
            retry_after=retry_after,
            counts_as_failure=not network_down,
        )
    store.save_poll(feed.id, None, update)
    return FeedOutcome(feed.url, status, message=error.message)


def check_feed(url: str, polling: PollingConfig) -> tuple[str | None, int]:
    """Fetch and parse ``url`` once (for `feeds add`): its title and entry count, or a FeedError."""

    result = _fetch_once(url, polling)
    parsed = parse_feed(url, result.body or b"", result.headers)
    return html_to_text(parsed.title) or None, len(parsed.entries)


def fetch_document(url: str, polling: PollingConfig) -> bytes:
    """The bytes at ``url`` (a web URL, a file:// URL or a path), fetched once with our limits."""
    return _fetch_once(url, polling).body or b""


def _fetch_once(url: str, polling: PollingConfig) -> FetchResult:
    async def go() -> FetchResult:
        async with _client(polling) as http:
            return await fetch(http, url, limits=_limits(polling))

    result = asyncio.run(go())
    if result.body is None:  # pragma: no cover - no validators were sent
        raise FeedError(url, "the server sent no body")
    return result


# --- clustering -------------------------------------------------------------------------------


def cluster_pending(store: Store, config: Config, *, now: datetime) -> int:
    """Place every article not yet in a story; return how many stories changed.

    Works from what is stored, not from this poll's list, so articles stored by a run that died
    before clustering are placed by the next one. Reading and writing are one transaction, so
    two runs never place the same articles twice.
    """
    with store.transaction():
        pending = store.unclustered()
        if not pending:
            return 0
        window = config.clustering.window
        start = max(pending[0].published, pending[-1].published - CATCH_UP)
        active = store.active(since=start - window)
        clusterer = StoryClusterer(config.clustering)
        vocabulary = clusterer.vocabulary([*pending, *active])
        clusterer.use_frequencies(store.document_frequencies(vocabulary), store.document_count())
        clusterer.load(active)
        placed = [clusterer.add(doc) for doc in pending]
        # Stories merged later in the run take along the articles placed in them earlier.
        resolve = clusterer.resolve
        placements = [(p.article, resolve(p.story), p.similarity) for p in placed]
        new_stories = {
            p.story: p.article for p in placed if p.new_story and resolve(p.story) == p.story
        }
        merged = [(resolve(s), absorbed) for s, absorbed in clusterer.merges if absorbed > 0]
        summaries = [clusterer.summary(key) for key in sorted(clusterer.touched)]
        store.save_clustering(
            placements=placements,
            new_story_keys=new_stories,
            merged=merged,
            stories=[StoredStory(s.story, s.title, s.terms) for s in summaries],
            df_increments=dict(clusterer.df_increments),
            documents=clusterer.documents,
            now=now,
        )
    return len(summaries)


def feed_report(config: Config, store: Store, *, now: datetime | None = None) -> list[FeedView]:
    """Every configured feed with its polling state (the config's feeds are synced first)."""
    store.sync_feeds(config.feeds, now or datetime.now(UTC))
    return store.feed_views()


# --- digest -----------------------------------------------------------------------------------


def build_digest(
    store: Store,
    *,
    since: timedelta | None,
    limit: int,
    min_size: int,
    now: datetime | None = None,
) -> Digest:
    now = now or datetime.now(UTC)
    start = now - since if since is not None else None
    stories = store.stories(since=start, min_size=min_size, limit=limit)
    return Digest(
        generated_at=now,
        since=start,
        stories=tuple(stories),
        failing_feeds=tuple(store.failing_feeds(since=now - timedelta(days=1))),
    )
