"""Orchestrate the stages: the only module that does I/O across them.

poll:  fetch (async, concurrent) -> parse + normalize (worker processes) -> dedupe -> store
       -> cluster
(digests: see aggregator.delivery)

A poll is a pipeline, not a sequence of phases: each feed is parsed as soon as its body
arrives and stored as soon as it is parsed, while other feeds are still on the wire. Only the
failures wait for the end, to learn whether the whole network was down.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import aiohttp

from .cluster import prepare
from .config import Config, DedupeConfig, PollingConfig
from .dedupe import headline_keys, left_feed, plan_ingest
from .errors import (
    AggregatorError,
    FeedError,
    FetchError,
    GoneError,
    NotAFeedError,
    RetryLaterError,
)
from .fetch import fetch, fetch_limits, fetch_session, is_local
from .listing import due_feeds
from .models import (
    Document,
    FeedOutcome,
    FeedState,
    FeedStatus,
    FeedUpdate,
    FetchResult,
    PollReport,
)
from .retention import prune_if_due
from .schedule import (
    ACTIVITY_WINDOW,
    MAX_RETRY_AFTER,
    freshness,
    next_after_error,
    next_after_success,
    publishing_gap,
)
from .store import Store
from .stories import cluster_database, cluster_pending
from .workers import ParserPool, default_workers

__all__ = ["HttpSession", "poll", "store_document"]

log = logging.getLogger(__name__)

Progress = Callable[[FeedOutcome], None]
# Makes the poll's HTTP session. Called inside the poll's event loop, which an aiohttp session
# must be made in: so a poll takes a maker rather than a session.
HttpSession = Callable[[], aiohttp.ClientSession]
# How long the store's writer lets parsed feeds gather before it commits them together.
BATCH_WAIT = 0.02


def poll(
    config: Config,
    store: Store,
    *,
    all_feeds: bool = False,
    now: datetime | None = None,
    progress: Progress | None = None,
    rng: random.Random | None = None,
    on_start: Callable[[int], None] | None = None,
    http: HttpSession | None = None,
) -> PollReport:
    """Fetch the feeds that are due, store what is new, and cluster it.

    One broken feed never stops a poll: each feed ends as a FeedOutcome. ``on_start`` hears
    how many feeds will be fetched, ``progress`` each feed's outcome as it comes. ``http``
    makes the HTTP session (by default one with the config's user agent and concurrency): the
    seam where a test swaps the network.
    """
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    store.sync_feeds(config.feeds, now)
    feeds = due_feeds(store, now, ignore_schedule=all_feeds)
    if on_start is not None:
        on_start(len(feeds))
    warmer = _Warmer()
    try:
        with ParserPool(default_workers(config.polling.parse_workers, len(feeds))) as parser:
            session = http or (lambda: fetch_session(config.polling))
            poller = _Poller(
                store, config, parser, now, rng or random.Random(), progress, warmer, session
            )
            outcomes = asyncio.run(poller.run(feeds))
            log.info(
                "fetched and stored %d feeds in %.2f s", len(feeds), time.perf_counter() - started
            )
            if parser.in_processes:  # scikit-learn is already loaded there
                touched = parser.call(cluster_database, config, now)
            else:
                touched = cluster_pending(store, config, now=now)
        log.info("clustered; the poll took %.2f s", time.perf_counter() - started)
    finally:
        warmer.join()
    # After clustering, so that what this poll stored is placed before any story is pruned.
    pruned = prune_if_due(store, config.keep, now)
    return PollReport(
        outcomes=tuple(outcomes),
        new_articles=sum(o.new_articles for o in outcomes),
        stories_touched=touched,
        seconds=time.perf_counter() - started,
        pruned=pruned,
    )


class _Warmer:
    """Loads scikit-learn in a thread once a poll knows there is something to cluster, so the
    import overlaps with waiting on the network instead of adding to the poll's time."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="prepare-clustering")
            self._thread.start()

    @staticmethod
    def _run() -> None:
        with contextlib.suppress(Exception):  # clustering itself will report the problem
            prepare()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class _Ready:
    """A fetched feed on its way to the store: its document, an error, or None if unchanged."""

    feed: FeedState
    result: FetchResult
    body_hash: str | None  # SHA-256 of the body; None for a 304
    document: Document | FeedError | None


class _Poller:
    """One poll's feeds: fetch each, parse it in a worker, store it, and record the failures."""

    def __init__(
        self,
        store: Store,
        config: Config,
        parser: ParserPool,
        now: datetime,
        rng: random.Random,
        progress: Progress | None,
        warmer: _Warmer,
        http: HttpSession,
    ) -> None:
        self.store = store
        self.http = http
        self.polling = config.polling
        self.dedupe = config.dedupe
        self.parser = parser
        self.now = now
        self.rng = rng
        self.progress = progress
        self.warmer = warmer
        # Every configured feed by the URLs it answers to, to spot a move onto another feed.
        self.known = {u: f for f in store.feeds() for u in {f.url, f.fetch_url}}

    async def run(self, feeds: Sequence[FeedState]) -> list[FeedOutcome]:
        outcomes: dict[int, FeedOutcome] = {}
        failures: list[tuple[FeedState, FeedError]] = []
        ready: asyncio.Queue[_Ready | None] = asyncio.Queue(self.polling.concurrency)
        overall = asyncio.Semaphore(self.polling.concurrency)
        per_host: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(self.polling.per_host)
        )

        async def one(http: aiohttp.ClientSession, feed: FeedState) -> None:
            # The host's slot before an overall one, so a slow host never holds slots that
            # other hosts could use. The overall slot is kept until the parsed document is
            # queued for the store, and the queue holds `concurrency` documents at most: bodies
            # and documents in memory then number at most twice `concurrency`, however many
            # feeds send big ones and however far parsing or storing falls behind.
            host = _server(feed.fetch_url)
            host_slot = per_host[host] if self.polling.per_host else contextlib.nullcontext()
            async with contextlib.AsyncExitStack() as held:
                async with host_slot:
                    await held.enter_async_context(overall)
                    result = await self._fetch(http, feed)
                if isinstance(result, FeedError):
                    failures.append((feed, result))  # recorded at the end: was the network down?
                    return
                # A 304, or a body byte for byte what we parsed last time, is not parsed again.
                body_hash = None if result.not_modified else _digest(result.body or b"")
                unchanged = body_hash is None or body_hash == feed.body_hash
                document = None if unchanged else await self._read(feed, result)
                # A full queue (the store is behind) holds the slot too, and with it the fetching.
                await ready.put(_Ready(feed, result, body_hash, document))

        try:
            # One group: when the store fails (a full disk, a locked database), the fetchers
            # waiting on the full queue are cancelled and the error ends the poll.
            async with asyncio.TaskGroup() as group:
                group.create_task(self._write(ready, outcomes))
                async with self.http() as http:
                    await asyncio.gather(*(one(http, f) for f in feeds))
                await ready.put(None)
        except BaseExceptionGroup as errors:
            raise errors.exceptions[0] from None
        network_down = not outcomes and _network_down(failures)
        with self.store.transaction():
            for feed, error in failures:
                outcomes[feed.id] = self._record_failure(feed, error, network_down=network_down)
                self._report(outcomes[feed.id])
        return [outcomes[f.id] for f in feeds]

    async def _write(
        self, ready: asyncio.Queue[_Ready | None], outcomes: dict[int, FeedOutcome]
    ) -> None:
        """Store what the fetchers and parsers hand over, all that is waiting in one transaction.

        One commit per batch rather than per feed: with a thousand feeds the commits were a
        quarter of the poll's CPU. Each feed still has its own savepoint inside the batch, so a
        bug on one feed's data undoes only that feed.
        """
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(1, thread_name_prefix="store") as database:
            finished = False
            while not finished:
                batch = [await ready.get()]
                await asyncio.sleep(BATCH_WAIT)  # let a few more arrive: fewer, larger commits
                while not ready.empty():
                    batch.append(ready.get_nowait())
                finished = None in batch
                items = [item for item in batch if item is not None]
                stored = await loop.run_in_executor(database, self._store_batch, items)
                for item, outcome in zip(items, stored, strict=True):
                    outcomes[item.feed.id] = outcome
                    self._report(outcome)

    def _store_batch(self, items: list[_Ready]) -> list[FeedOutcome]:
        """In the store's thread: SQLite works without the GIL, so fetching goes on meanwhile."""
        with self.store.transaction():
            return [self._store_safely(item) for item in items]

    def _report(self, outcome: FeedOutcome) -> None:
        log.info("%s: %s %s", outcome.url, outcome.status, outcome.message or "")
        if self.progress is not None:
            self.progress(outcome)

    async def _fetch(self, http: aiohttp.ClientSession, feed: FeedState) -> FetchResult | FeedError:
        try:
            return await fetch(
                http,
                feed.fetch_url,
                etag=feed.etag,
                last_modified=feed.last_modified,
                limits=fetch_limits(self.polling),
                now=self.now,
            )
        except FeedError as e:
            return e
        except Exception as e:  # a bug met on one feed: log it whole, never abort the rest
            log.exception("%s: unexpected failure while fetching", feed.url)
            return FetchError(feed.url, f"internal error ({type(e).__name__}: {e})")

    async def _read(self, feed: FeedState, result: FetchResult) -> Document | FeedError:
        """Parse the body in a worker; a failure comes back as the feed's error."""
        try:
            document = await self.parser.read(
                feed.url, result.body or b"", result.headers, self.now
            )
        except FeedError as e:
            return e
        except Exception as e:  # a bug met on one feed's data: log it whole, go on with the rest
            log.exception("%s: unexpected failure while parsing", feed.url)
            return FeedError(feed.url, f"internal error ({type(e).__name__}: {e})")
        if document.warning:
            log.info("%s: parsed despite a problem: %s", feed.url, document.warning)
        if document.articles and not self.parser.in_processes:
            self.warmer.start()
        return document

    def _store_safely(self, item: _Ready) -> FeedOutcome:
        feed = item.feed
        try:
            with self.store.transaction():  # a savepoint within the batch
                if isinstance(item.document, FeedError):
                    return self._record_failure(feed, item.document, network_down=False)
                if item.document is None or item.body_hash is None:  # a 304, or the same bytes
                    return self._store_unchanged(feed, item.result)
                return self._store_document(feed, item.result, item.body_hash, item.document)
        except AggregatorError:
            raise  # the database or the config: fatal, and the user's to fix
        except Exception as e:  # a bug met on one feed's data: log it whole, go on with the rest
            log.exception("%s: unexpected failure", feed.url)
            error = FeedError(feed.url, f"internal error ({type(e).__name__}: {e})")
            return self._record_failure(feed, error, network_down=False)

    def _store_unchanged(self, feed: FeedState, result: FetchResult) -> FeedOutcome:
        """A 304, or a body byte for byte what we parsed last time: nothing can be new, and the
        feed's pace is what it was, slowed by how long it has been quiet."""
        now = self.now
        gap = feed.pace
        if gap is not None and feed.newest_item is not None:
            gap = max(gap, now - feed.newest_item)
        status = FeedStatus.NOT_MODIFIED if result.not_modified else FeedStatus.OK
        update = FeedUpdate(
            status=status,
            fetched_at=now,
            next_due=_next_due(
                self.polling, now, self.rng, gap, feed.ttl_minutes, freshness(result.headers, now)
            ),
            etag=result.etag,
            last_modified=result.last_modified,
            effective_url=result.permanent_redirect,
        )
        self.store.save_poll(feed.id, None, update)
        return FeedOutcome(
            feed.url,
            status,
            message=None if result.not_modified else "unchanged",
            notice=self._moved(feed, result.permanent_redirect),
        )

    def _store_document(
        self, feed: FeedState, result: FetchResult, body_hash: str, document: Document
    ) -> FeedOutcome:
        outcome = store_document(
            self.store,
            feed,
            result,
            document,
            body_hash=body_hash,
            polling=self.polling,
            dedupe=self.dedupe,
            now=self.now,
            rng=self.rng,
        )
        return replace(outcome, notice=self._moved(feed, result.permanent_redirect))

    def _moved(self, feed: FeedState, target: str | None) -> str | None:
        """A notice the first time a feed answers with a permanent redirect to a new place."""
        if target is None or target == feed.effective_url:
            return None
        other = self.known.get(target)
        if other is not None and other.id != feed.id:
            return (
                f"moved permanently to {target}, which is also the feed {other.url}: "
                "it is fetched once from now on; remove one of the two from the config"
            )
        return f"moved permanently to {target}; fetched from there from now on"

    def _record_failure(
        self, feed: FeedState, error: FeedError, *, network_down: bool
    ) -> FeedOutcome:
        now, interval = self.now, self.polling.interval
        if isinstance(error, GoneError):
            status = FeedStatus.GONE
            update = FeedUpdate(
                status=status, fetched_at=now, next_due=now, error=error.message, gone=True
            )
        else:
            status = FeedStatus.NOT_A_FEED if isinstance(error, NotAFeedError) else FeedStatus.ERROR
            errors = feed.error_count + (0 if network_down else 1)
            retry_after = error.retry_after if isinstance(error, RetryLaterError) else None
            if retry_after is not None:  # kept as long as the schedule keeps it, a week at most
                retry_after = min(retry_after, now + MAX_RETRY_AFTER)
            update = FeedUpdate(
                status=status,
                fetched_at=now,
                next_due=next_after_error(
                    now, interval, errors, retry_after=retry_after, rng=self.rng
                ),
                error=error.message,
                retry_after=retry_after,
                counts_as_failure=not network_down,
            )
        self.store.save_poll(feed.id, None, update)
        return FeedOutcome(feed.url, status, message=error.message)


def store_document(
    store: Store,
    feed: FeedState,
    result: FetchResult,
    document: Document,
    *,
    body_hash: str,
    polling: PollingConfig,
    dedupe: DedupeConfig,
    now: datetime,
    rng: random.Random,
) -> FeedOutcome:
    """Dedupe a parsed document against the store and save it with the feed's new state.

    Call it inside a transaction: what is known and what is written are then one step, so a
    run alongside cannot store the same article between our look and our write.
    """
    articles = document.articles
    known = store.known_items(feed.id, (a.item_key for a in articles))
    # Items whose articles were pruned while the feed still carries them: not news again.
    seen = store.seen_records(feed.id)
    gone = left_feed(seen, articles)
    if gone:
        store.forget_seen(feed.id, [r.item_key for r in gone])
    seen_keys = {r.item_key for r in seen}
    fresh = [a for a in articles if a.item_key not in known and a.item_key not in seen_keys]
    # Fingerprints are stored even with near-duplicates off, so turning them on finds these.
    headline = {a.content_hash: headline_keys(a.title, a.summary) for a in fresh}
    wanted = headline.values() if dedupe.near_duplicates else ()
    plan = plan_ingest(
        articles,
        feed_id=feed.id,
        known_items=known,
        known_links=store.articles_by_canonical(
            a.canonical_url for a in articles if a.canonical_url
        ),
        known_texts=store.known_texts(feed.id, (a.content_hash for a in fresh)),
        headline=headline,
        near=store.near_candidates(
            (k for keys in wanted for k in keys),
            since=min((a.published for a in fresh), default=now) - dedupe.window,
        ),
        window=dedupe.window,
        pruned=seen,
    )
    published = store.recent_publications(feed.id, now - ACTIVITY_WINDOW)
    # Items dated only by when we first saw them say nothing of the feed's pace.
    published.update({a.item_key: a.published for a in articles if a.has_own_date})
    gap = publishing_gap(published.values(), now)
    fresh_for = freshness(result.headers, now)
    update = FeedUpdate(
        status=FeedStatus.OK,
        fetched_at=now,
        next_due=_next_due(polling, now, rng, gap, document.ttl_minutes, fresh_for),
        etag=result.etag,
        last_modified=result.last_modified,
        body_hash=body_hash,
        effective_url=result.permanent_redirect,
        title=document.title,
        site_url=document.link,
        ttl_minutes=document.ttl_minutes,
        pace=gap,
        newest_item=max(published.values(), default=None),
    )
    if plan.churned > len(articles) // 2:
        log.info("%s: %d items came back under new guids", feed.url, plan.churned)
    new_ids = store.save_poll(feed.id, plan, update)
    return FeedOutcome(feed.url, FeedStatus.OK, new_articles=len(new_ids), entries=document.entries)


def _next_due(
    polling: PollingConfig,
    now: datetime,
    rng: random.Random,
    gap: timedelta | None,
    ttl_minutes: int | None,
    fresh_for: timedelta | None,
) -> datetime:
    return next_after_success(
        now,
        polling.interval,
        gap=gap if polling.adaptive else None,
        ttl_minutes=ttl_minutes,
        fresh_for=fresh_for,
        rng=rng,
    )


def _network_down(failures: Sequence[tuple[FeedState, FeedError]]) -> bool:
    """Every fetch failed before any server answered, on two hosts or more: the network is down.

    That is not the feeds' fault, so it does not count against them. A single dead host is
    that host's problem, and counts.
    """
    hosts = set()
    for feed, error in failures:
        if is_local(feed.fetch_url):
            return False
        if not isinstance(error, FetchError) or error.status is not None:
            return False
        hosts.add(_host(feed.fetch_url))
    return len(hosts) >= 2


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _server(url: str) -> str:
    """Host and port: what `per_host` counts. Two ports are two servers, if on one machine."""
    try:
        parts = urlsplit(url)
        return f"{parts.hostname or ''}:{parts.port or _DEFAULT_PORTS.get(parts.scheme)}"
    except ValueError:
        return ""


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""
